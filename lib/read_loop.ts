/**
 * A server's read loop: read, feed the framing decoder, hand the complete
 * messages on, repeat, until the session ends for one of a few reasons,
 * each reported as a value (never thrown), so one client's trouble ends
 * only that client's session.
 *
 * @example
 * ```ts ignore
 * import { readLoop } from "./read_loop.ts";
 * import { LineDecoder } from "./line_decoder.ts";
 * import { writeAll } from "./io.ts";
 *
 * const end = await readLoop(conn, {
 *   decoder: new LineDecoder({ keepEnds: true }),
 *   onMessages: async (lines) => {
 *     for (const line of lines) await writeAll(conn, line);
 *   },
 * });
 * console.log(end.kind); // "eof", "reset", "framing", "idle", "evicted" or "closed"
 * ```
 *
 * @module
 */

import { cooperate } from "./coop.ts";
import { type Decoder, FramingError } from "./decoder.ts";
import { isDisconnect, readFailure } from "./errors.ts";
import { idleTimer } from "./idle_timer.ts";
import {
  closeQuietly,
  FIRST_READ_BUFFER_SIZE,
  firstReadBuffer,
  grownBuffer,
} from "./io.ts";
import type { PendingHolder, PendingLimit } from "./pending_limit.ts";

/** Why a read loop ended. */
export type ReadLoopEnd =
  /** The peer closed its side cleanly (FIN). */
  | { kind: "eof" }
  /** The peer vanished: reset, broken pipe. */
  | { kind: "reset"; error: Error }
  /** The peer broke the framing (a message over the bound, a cut frame). */
  | { kind: "framing"; error: FramingError }
  /** No complete message for the idle timeout; the loop closed the connection. */
  | { kind: "idle" }
  /** It held the most in unfinished messages when the server-wide limit was passed. */
  | { kind: "evicted"; held: number }
  /** The connection was closed on our side (e.g. by a shutdown). */
  | { kind: "closed" };

/** Options of {@linkcode readLoop}. */
export interface ReadLoopOptions {
  /** Splits the byte stream into messages. */
  decoder: Decoder;
  /**
   * Receives the messages completed by each read, in order. They may be
   * views into the read buffer: use them before returning. The loop awaits
   * it before reading again (backpressure).
   */
  onMessages: (messages: Uint8Array[]) => void | Promise<void>;
  /**
   * Close the connection after this many ms without a complete message (0:
   * never). Bytes of an unfinished message do not count, so a client that
   * trickles a line that never ends is idle too.
   */
  idleTimeoutMs?: number;
  /** Called when the idle timeout fires, before the loop closes the connection. */
  onIdle?: () => void | Promise<void>;
  /** The server-wide bound on bytes held in unfinished messages. */
  pending?: PendingLimit;
  /** Called when `pending` cuts this connection off, before the loop closes it. */
  onEvicted?: (held: number) => void | Promise<void>;
  /**
   * Whether a write to the connection failed (its outbox lost it). A reset
   * whose error a write took reads as a clean end of stream; with this, an
   * unfinished message at that end is dropped, as at any reset.
   */
  lost?: () => boolean;
}

/**
 * Runs the loop until the session ends; see {@linkcode ReadLoopEnd}.
 * Errors other than those of the peer going away are rethrown.
 *
 * @example
 * ```ts ignore
 * import { readLoop } from "./read_loop.ts";
 * import { LineDecoder } from "./line_decoder.ts";
 * const end = await readLoop(conn, { decoder: new LineDecoder(), onMessages: () => {} });
 * ```
 */
export async function readLoop(
  conn: Deno.Conn,
  options: ReadLoopOptions,
): Promise<ReadLoopEnd> {
  const { decoder, onMessages, pending } = options;
  using idle = idleTimer(conn, {
    ms: options.idleTimeoutMs ?? 0,
    onIdle: options.onIdle,
  });
  const holder = pending ? evictable(conn, options) : undefined;
  let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
  try {
    for (;;) {
      // A large unfinished message is read straight into its own memory.
      const into = decoder.room() ?? buffer;
      let n: number | null;
      try {
        n = await conn.read(into);
      } catch (error) {
        throw new ReadFailed(error);
      }
      if (n === null) break;
      const turn = cooperate(); // a flood must not starve the others
      if (turn) await turn;
      const messages = decoder.push(into.subarray(0, n));
      if (holder) pending!.hold(holder, decoder.buffered);
      if (messages.length > 0) {
        idle.touch();
        await onMessages(messages);
      }
      // The buffer grows while reads fill it or finish messages (not for a
      // message read in place); a read that finishes nothing otherwise is a
      // stall mid-message: back to the first size, so that a stalled
      // connection holds its unfinished message alone.
      const finished = messages.length > 0;
      if (into !== buffer) {
        if (!finished) buffer = firstReadBuffer(buffer);
      } else if (finished || n === buffer.length) {
        if (decoder.room() === null) buffer = grownBuffer(buffer, n);
      } else {
        buffer = firstReadBuffer(buffer);
      }
    }
    if (options.lost && decoder.buffered > 0) {
      // A write that failed in this turn is known once its callbacks ran.
      await new Promise((resolve) => setTimeout(resolve, 0));
      if (options.lost()) {
        return {
          kind: "reset",
          error: new Deno.errors.ConnectionReset("lost while writing to it"),
        };
      }
    }
    const last = decoder.end();
    if (last !== null) await onMessages([last]);
    return { kind: "eof" };
  } catch (error) {
    if (idle.fired) return { kind: "idle" };
    if (holder?.evicted) return { kind: "evicted", held: holder.evicted };
    if (error instanceof FramingError) return { kind: "framing", error };
    if (error instanceof ReadFailed) {
      // whatever a read throws ends this session only, never the server
      return readFailure(error.cause) === null
        ? { kind: "closed" }
        : { kind: "reset", error: error.cause as Error };
    }
    if (isDisconnect(error)) return { kind: "reset", error: error as Error };
    if (
      error instanceof Deno.errors.BadResource ||
      error instanceof Deno.errors.Interrupted
    ) {
      return { kind: "closed" };
    }
    throw error;
  } finally {
    decoder.clear(); // an unfinished message's memory goes back now, not at a GC
    if (holder) pending!.release(holder);
  }
}

/** What `conn.read` threw: the connection's trouble, not the loop's. */
class ReadFailed extends Error {
  constructor(override readonly cause: unknown) {
    super("read failed", { cause });
  }
}

/** A read loop's share of the pending limit; `evicted` holds what it held. */
interface Evictable extends PendingHolder {
  evicted: number;
}

function evictable(conn: Deno.Conn, options: ReadLoopOptions): Evictable {
  const holder: Evictable = {
    evicted: 0,
    evict: async (held) => {
      holder.evicted = held;
      try {
        await options.onEvicted?.(held);
      } finally {
        closeQuietly(conn);
      }
    },
  };
  return holder;
}

/**
 * Why a session ended, as a short phrase for a `has left (…)` notice:
 * empty for an ordinary end.
 *
 * @example
 * ```ts
 * import { endReason } from "./read_loop.ts";
 * endReason({ kind: "reset", error: new Deno.errors.ConnectionReset("") }); // "connection reset"
 * endReason({ kind: "eof" }); // ""
 * ```
 */
export function endReason(end: ReadLoopEnd): string {
  switch (end.kind) {
    case "reset":
      return readFailure(end.error) ?? "connection lost";
    case "framing":
      return end.error.message;
    case "idle":
      return "idle";
    case "evicted":
      return `held ${end.held} bytes of an unfinished message`;
    default:
      return "";
  }
}
