/**
 * What a framing decoder is: fed whatever `read` returned, it hands back
 * the complete messages, and holds the start of an unfinished one, up to a
 * bound, so a peer can never make us buffer without limit.
 *
 * TCP delivers bytes, not messages: one `read` may hold half a message or
 * three. The two framings here are `line_decoder.ts` and
 * `length_decoder.ts`; `framing.ts` names them.
 *
 * @example
 * ```ts
 * import { type Decoder, FramingError } from "./decoder.ts";
 * import { LineDecoder } from "./line_decoder.ts";
 * const decoder: Decoder = new LineDecoder({ maxLength: 4 });
 * try {
 *   decoder.push(new TextEncoder().encode("too long\n"));
 * } catch (error) {
 *   error instanceof FramingError; // true
 * }
 * ```
 *
 * @module
 */

/** The default bound on one message: 64 KiB. */
export const DEFAULT_MAX_MESSAGE = 64 * 1024;

/**
 * The peer broke the framing: a message over the bound, or a frame cut off
 * at the end of the stream. The message says which, with the numbers.
 *
 * @example
 * ```ts
 * import { FramingError } from "./decoder.ts";
 * new FramingError("line longer than 65536 bytes").message;
 * ```
 */
export class FramingError extends Error {
  /** The error's name. */
  override name = "FramingError";

  /**
   * For a refused length prefix: the 4 bytes it came in, so a caller can
   * tell a peer that sent text (`"hell"`) from one with a bad frame.
   */
  prefix?: Uint8Array;
}

/**
 * A framing decoder: fed raw bytes, hands back complete messages (or, made
 * with `runs: true`, runs of them: see {@linkcode RunsOption}).
 *
 * Messages may be views into the chunk just pushed: use or copy them before
 * that chunk's buffer is reused by the next read.
 */
export interface Decoder {
  /** Feeds a chunk; returns the messages it completes (maybe none). */
  push(chunk: Uint8Array): Uint8Array[];
  /**
   * The stream ended: returns a last message the framing allows without a
   * terminator, or `null`; throws {@linkcode FramingError} for a cut frame.
   */
  end(): Uint8Array | null;
  /**
   * Where the next read may go, when a large unfinished message has memory
   * of its own: `push` what was read there and it is taken in place, with
   * no copy. Null otherwise (read into your own buffer).
   */
  room(): Uint8Array | null;
  /**
   * Drops the unfinished message, if any, and gives back now the memory of
   * a large one, held or handed out by the last push (call once done with
   * its messages: a read loop, when the connection ends).
   */
  clear(): void;
  /** Bytes held for a message not yet complete. */
  readonly buffered: number;
}

/** The option both decoders share: messages one by one, or in runs. */
export interface RunsOption {
  /**
   * Hand back, per push, at most one view: every complete message finished
   * so far, back to back, framing bytes included (line ends, length
   * prefixes), exactly as they came. For servers that send messages on as
   * they are (an echo): no per-message view, no copy unless a message was
   * split between reads. Every message is still checked against the bound.
   * Default false.
   */
  runs?: boolean;
}
