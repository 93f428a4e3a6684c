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
 * console.log(end.kind); // "eof", "reset", "too-long", "idle" or "closed"
 * ```
 *
 * @module
 */

import { type Decoder, FramingError } from "./decoder.ts";
import { isDisconnect } from "./errors.ts";
import { closeQuietly, FIRST_READ_BUFFER_SIZE, grownBuffer } from "./io.ts";

/** Why a read loop ended. */
export type ReadLoopEnd =
  /** The peer closed its side cleanly (FIN). */
  | { kind: "eof" }
  /** The peer vanished: reset, broken pipe. */
  | { kind: "reset"; error: Error }
  /** The peer broke the framing (a message over the bound, a cut frame). */
  | { kind: "framing"; error: FramingError }
  /** No bytes for the idle timeout; the loop closed the connection. */
  | { kind: "idle" }
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
  /** Close the connection after this many ms without a byte (0: never). */
  idleTimeoutMs?: number;
  /** Called when the idle timeout fires, before the loop closes the connection. */
  onIdle?: () => void | Promise<void>;
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
  const { decoder, onMessages } = options;
  const idle = idleWatch(conn, options);
  let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
  try {
    for (;;) {
      const n = await conn.read(buffer);
      if (n === null) break;
      idle.touch();
      const messages = decoder.push(buffer.subarray(0, n));
      if (messages.length > 0) await onMessages(messages);
      buffer = grownBuffer(buffer, n);
    }
    const last = decoder.end();
    if (last !== null) await onMessages([last]);
    return { kind: "eof" };
  } catch (error) {
    if (idle.fired) return { kind: "idle" };
    if (error instanceof FramingError) return { kind: "framing", error };
    if (isDisconnect(error)) return { kind: "reset", error: error as Error };
    if (
      error instanceof Deno.errors.BadResource ||
      error instanceof Deno.errors.Interrupted
    ) {
      return { kind: "closed" };
    }
    throw error;
  } finally {
    idle.stop();
  }
}

/** A read loop's idle timer. */
interface IdleWatch {
  touch(): void;
  stop(): void;
  readonly fired: boolean;
}

/** No idle timeout: one shared object, nothing per connection. */
const NO_IDLE_WATCH: IdleWatch = { touch() {}, stop() {}, fired: false };

/**
 * One timer per connection, re-armed lazily: a read only stamps the time,
 * so the hot path pays no timer call.
 */
function idleWatch(conn: Deno.Conn, options: ReadLoopOptions): IdleWatch {
  const timeout = options.idleTimeoutMs ?? 0;
  if (timeout <= 0) return NO_IDLE_WATCH;
  let last = Date.now();
  let fired = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = async (): Promise<void> => {
    const left = last + timeout - Date.now();
    if (left > 0) {
      timer = setTimeout(check, left);
      return;
    }
    fired = true;
    try {
      await options.onIdle?.();
    } finally {
      closeQuietly(conn);
    }
  };
  timer = setTimeout(check, timeout);
  return {
    touch: () => {
      last = Date.now();
    },
    stop: () => clearTimeout(timer),
    get fired() {
      return fired;
    },
  };
}
