/**
 * Message framing: where one message ends and the next begins in a TCP byte
 * stream.
 *
 * TCP delivers bytes, not messages: one `read` may hold half a message or
 * three. A decoder is fed whatever `read` returned and hands back the
 * complete messages; bytes of an unfinished one wait for the next read, up
 * to a bound, so a peer can never make us buffer without limit.
 *
 * - **line**: UTF-8 text ending in `\n` (`\r\n` accepted), as `nc`,
 *   `telnet` and Python's `makefile().readline()` expect.
 * - **length**: a 4-byte unsigned big-endian length `N`, then `N` bytes
 *   (Python: `struct.pack("!I", len(b)) + b`); payloads may hold `\n`/NUL.
 *
 * Decoders are plain objects a read loop drives (fastest); for code that
 * prefers streams, {@linkcode decoderStream} wraps one in a `TransformStream`.
 * A server that forwards messages as they came (an echo) asks for **runs**
 * (`{ runs: true }`): each push then hands back one view of all the complete
 * messages it finished, framing bytes included, so the bytes go out again
 * without a per-message view or copy, and still only whole messages, each
 * within the bound.
 *
 * @example
 * ```ts
 * import { LineDecoder } from "./framing.ts";
 *
 * const decoder = new LineDecoder();
 * const encoder = new TextEncoder();
 * decoder.push(encoder.encode("hel")); // []
 * decoder.push(encoder.encode("lo\nwor")); // [bytes of "hello"]
 * decoder.end(); // bytes of "wor": a last line without "\n" still counts
 * ```
 *
 * @module
 */

import { concat } from "./std.ts";

/** The default bound on one message: 64 KiB. */
export const DEFAULT_MAX_MESSAGE = 64 * 1024;

/** Bytes in the length prefix of the `length` framing. */
export const LENGTH_PREFIX_BYTES = 4;

/**
 * The peer broke the framing: a message over the bound, or a frame cut off
 * at the end of the stream. The message says which, with the numbers.
 *
 * @example
 * ```ts
 * import { FramingError } from "./framing.ts";
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

/** Options of {@linkcode LineDecoder}. */
export interface LineDecoderOptions extends RunsOption {
  /** The longest line accepted, without its `\n` (default 64 KiB). */
  maxLength?: number;
  /** Keep `\n` / `\r\n` at the end of each line (default false). */
  keepEnds?: boolean;
}

const LF = 0x0a;
const CR = 0x0d;

/**
 * Splits bytes into lines at `\n`, dropping a `\r` before it.
 *
 * @example
 * ```ts
 * import { LineDecoder } from "./framing.ts";
 * const lines = new LineDecoder().push(new TextEncoder().encode("a\r\nb\n"));
 * lines.map((l) => new TextDecoder().decode(l)); // ["a", "b"]
 * ```
 */
export class LineDecoder implements Decoder {
  readonly #maxLength: number;
  readonly #keepEnds: boolean;
  readonly #runs: boolean;
  #parts: Uint8Array[] = [];
  #buffered = 0;

  /** Makes a decoder; see {@linkcode LineDecoderOptions}. */
  constructor(options: LineDecoderOptions = {}) {
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE;
    this.#keepEnds = options.keepEnds ?? false;
    this.#runs = options.runs ?? false;
  }

  /** Bytes of the unfinished line held so far. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Feeds a chunk; returns the lines it completes (or their run). */
  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#runs) return this.#pushRun(chunk);
    const lines: Uint8Array[] = [];
    let start = 0;
    let newline = chunk.indexOf(LF);
    while (newline !== -1) {
      lines.push(this.#finish(chunk.subarray(start, newline + 1)));
      start = newline + 1;
      newline = chunk.indexOf(LF, start);
    }
    this.#hold(chunk.subarray(start));
    return lines;
  }

  /**
   * Runs: everything up to the chunk's last `\n`. The lines in it need no
   * one-by-one check when even all of it, held bytes included, is within
   * the bound (one `lastIndexOf` then, the common case).
   */
  #pushRun(chunk: Uint8Array): Uint8Array[] {
    const last = chunk.lastIndexOf(LF);
    if (last === -1) {
      this.#hold(chunk);
      return [];
    }
    if (this.#buffered + last > this.#maxLength) this.#checkLines(chunk, last);
    const piece = chunk.subarray(0, last + 1);
    const run = this.#buffered === 0 ? piece : this.#join(piece);
    this.#parts = [];
    this.#buffered = 0;
    if (last + 1 < chunk.length) this.#hold(chunk.subarray(last + 1));
    return [run];
  }

  /** Checks each line of `chunk` up to its `\n` at `last`. */
  #checkLines(chunk: Uint8Array, last: number): void {
    let start = 0;
    let held = this.#buffered;
    for (;;) {
      const newline = chunk.indexOf(LF, start);
      const before = newline > start
        ? chunk[newline - 1]
        : this.#parts.at(-1)?.at(-1); // the held part's last byte
      const crlf = before === CR && newline + held > start ? 1 : 0;
      this.#check(held + newline - start - crlf);
      if (newline === last) return;
      held = 0;
      start = newline + 1;
    }
  }

  /** Keeps the start of an unfinished line, within the bound. */
  #hold(rest: Uint8Array): void {
    if (rest.length === 0) return;
    // A trailing "\r" may belong to a "\r\n" still to come.
    const pendingCr = rest[rest.length - 1] === CR ? 1 : 0;
    this.#check(this.#buffered + rest.length - pendingCr);
    this.#parts.push(rest.slice());
    this.#buffered += rest.length;
  }

  /** Returns the last line if it had no `\n`, else `null`. */
  end(): Uint8Array | null {
    if (this.#buffered === 0) return null;
    const rest = this.#join(new Uint8Array(0));
    this.#parts = [];
    this.#buffered = 0;
    return rest;
  }

  /** Joins held parts with the piece up to and including `\n`. */
  #finish(piece: Uint8Array): Uint8Array {
    const whole = this.#buffered === 0 ? piece : this.#join(piece);
    this.#parts = [];
    this.#buffered = 0;
    let end = whole.length - 1; // drop "\n"
    if (end > 0 && whole[end - 1] === CR) end--;
    this.#check(end);
    return this.#keepEnds ? whole : whole.subarray(0, end);
  }

  #join(last: Uint8Array): Uint8Array {
    const whole = new Uint8Array(this.#buffered + last.length);
    let offset = 0;
    for (const part of this.#parts) {
      whole.set(part, offset);
      offset += part.length;
    }
    whole.set(last, offset);
    return whole;
  }

  #check(length: number): void {
    if (length > this.#maxLength) {
      this.#parts = [];
      this.#buffered = 0;
      throw new FramingError(
        `line longer than the maximum of ${this.#maxLength} bytes`,
      );
    }
  }
}

/** Options of {@linkcode LengthDecoder}. */
export interface LengthDecoderOptions extends RunsOption {
  /** The largest payload accepted, in bytes (default 64 KiB). */
  maxLength?: number;
}

/**
 * Splits bytes into length-prefixed frames: 4-byte big-endian `N`, then `N`
 * bytes. A prefix over the bound throws at once, before any payload is held.
 *
 * @example
 * ```ts
 * import { encodeFrame, LengthDecoder } from "./framing.ts";
 * const frames = new LengthDecoder().push(encodeFrame("hi\n"));
 * new TextDecoder().decode(frames[0]); // "hi\n"
 * ```
 */
export class LengthDecoder implements Decoder {
  readonly #maxLength: number;
  readonly #runs: boolean;
  readonly #header = new Uint8Array(LENGTH_PREFIX_BYTES);
  #headerFilled = 0;
  #payload: Uint8Array | null = null;
  #payloadFilled = 0;
  /** Bytes of the chunk the last `#pushFrames` call used. */
  #consumed = 0;

  /** Makes a decoder; see {@linkcode LengthDecoderOptions}. */
  constructor(options: LengthDecoderOptions = {}) {
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE;
    this.#runs = options.runs ?? false;
  }

  /** Bytes of the unfinished frame held so far (prefix included). */
  get buffered(): number {
    return this.#headerFilled + this.#payloadFilled;
  }

  /** Feeds a chunk; returns the payloads of the frames it completes (or their run). */
  push(chunk: Uint8Array): Uint8Array[] {
    return this.#runs ? this.#pushRun(chunk) : this.#pushFrames(chunk);
  }

  /**
   * Runs: whole frames are walked prefix to prefix and handed back as one
   * view; a frame split between reads is finished by the message path
   * (which copies it) and joined in front.
   */
  #pushRun(chunk: Uint8Array): Uint8Array[] {
    let head: Uint8Array | null = null;
    let start = 0;
    if (this.#payload !== null || this.#headerFilled > 0) {
      const payloads = this.#pushFrames(chunk, { stopAfter: 1 });
      if (payloads.length === 0) return [];
      head = withPrefix(payloads[0]);
      start = this.#consumed;
    }
    let end = start;
    while (chunk.length - end >= LENGTH_PREFIX_BYTES) {
      const size = this.#size(readUint32(chunk, end));
      if (chunk.length - end - LENGTH_PREFIX_BYTES < size) break;
      end += LENGTH_PREFIX_BYTES + size;
    }
    if (end < chunk.length) this.#pushFrames(chunk.subarray(end)); // holds the unfinished frame
    const run = chunk.subarray(start, end);
    if (head === null) return run.length > 0 ? [run] : [];
    return [run.length > 0 ? concat([head, run]) : head];
  }

  /** The message path; with `stopAfter`, stops once it has that many frames. */
  #pushFrames(
    chunk: Uint8Array,
    { stopAfter = Infinity }: { stopAfter?: number } = {},
  ): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length && frames.length < stopAfter) {
      if (this.#payload === null) {
        // Fast path: a whole frame inside the chunk is returned as a view.
        if (
          this.#headerFilled === 0 &&
          chunk.length - offset >= LENGTH_PREFIX_BYTES
        ) {
          const size = this.#size(readUint32(chunk, offset));
          const start = offset + LENGTH_PREFIX_BYTES;
          if (chunk.length - start >= size) {
            frames.push(chunk.subarray(start, start + size));
            offset = start + size;
            continue;
          }
          this.#payload = newPayload(size);
          offset = start;
          continue;
        }
        const take = Math.min(
          LENGTH_PREFIX_BYTES - this.#headerFilled,
          chunk.length - offset,
        );
        this.#header.set(
          chunk.subarray(offset, offset + take),
          this.#headerFilled,
        );
        this.#headerFilled += take;
        offset += take;
        if (this.#headerFilled < LENGTH_PREFIX_BYTES) break;
        this.#payload = newPayload(this.#size(readUint32(this.#header, 0)));
        this.#headerFilled = 0;
        if (this.#payload.length > 0) continue;
      }
      const take = Math.min(
        this.#payload.length - this.#payloadFilled,
        chunk.length - offset,
      );
      this.#payload.set(
        chunk.subarray(offset, offset + take),
        this.#payloadFilled,
      );
      this.#payloadFilled += take;
      offset += take;
      if (this.#payloadFilled === this.#payload.length) {
        frames.push(this.#payload);
        this.#payload = null;
        this.#payloadFilled = 0;
      }
    }
    this.#consumed = offset;
    return frames;
  }

  /** Throws {@linkcode FramingError} if a frame was cut off; else `null`. */
  end(): Uint8Array | null {
    if (this.#payload !== null) {
      const [got, want] = [this.#payloadFilled, this.#payload.length];
      this.#payload = null;
      this.#payloadFilled = 0;
      throw new FramingError(
        `stream ended in the middle of a frame: got ${got} of ${want} payload bytes`,
      );
    }
    if (this.#headerFilled > 0) {
      const got = this.#headerFilled;
      this.#headerFilled = 0;
      throw new FramingError(
        `stream ended in the middle of a length prefix: got ${got} of ${LENGTH_PREFIX_BYTES} bytes`,
      );
    }
    return null;
  }

  #size(size: number): number {
    if (size > this.#maxLength) {
      this.#headerFilled = 0;
      const error = new FramingError(
        `frame of ${size} bytes is over the maximum of ${this.#maxLength} bytes`,
      );
      error.prefix = Uint8Array.of(
        size >>> 24,
        (size >>> 16) & 0xff,
        (size >>> 8) & 0xff,
        size & 0xff,
      );
      throw error;
    }
    return size;
  }
}

/**
 * A payload buffer with its 4-byte prefix written in front, so a run can
 * take the whole frame as a view ({@linkcode withPrefix}).
 */
function newPayload(size: number): Uint8Array {
  const frame = new Uint8Array(LENGTH_PREFIX_BYTES + size);
  new DataView(frame.buffer).setUint32(0, size);
  return frame.subarray(LENGTH_PREFIX_BYTES);
}

/** The whole frame (prefix, payload) of a payload from {@linkcode newPayload}. */
function withPrefix(payload: Uint8Array): Uint8Array {
  return new Uint8Array(
    payload.buffer,
    payload.byteOffset - LENGTH_PREFIX_BYTES,
    payload.length + LENGTH_PREFIX_BYTES,
  );
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) >>> 0) + (bytes[offset + 1] << 16) +
    (bytes[offset + 2] << 8) + bytes[offset + 3];
}

const textEncoder = new TextEncoder();

/**
 * Encodes one length-prefixed frame: 4-byte big-endian length, then payload.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./framing.ts";
 * encodeFrame("hi"); // Uint8Array [0, 0, 0, 2, 104, 105]
 * ```
 */
export function encodeFrame(payload: Uint8Array | string): Uint8Array {
  const bytes = typeof payload === "string"
    ? textEncoder.encode(payload)
    : payload;
  const frame = new Uint8Array(LENGTH_PREFIX_BYTES + bytes.length);
  new DataView(frame.buffer).setUint32(0, bytes.length);
  frame.set(bytes, LENGTH_PREFIX_BYTES);
  return frame;
}

/**
 * Encodes many length-prefixed frames into one buffer, in one pass (each
 * text's UTF-8 written in place after room for its prefix): for a batch of
 * messages, several times faster than a frame each and a join.
 *
 * @example
 * ```ts
 * import { encodeFrames } from "./framing.ts";
 * encodeFrames(["hi", ""]); // Uint8Array [0, 0, 0, 2, 104, 105, 0, 0, 0, 0]
 * ```
 */
export function encodeFrames(texts: readonly string[]): Uint8Array {
  let bound = 0; // UTF-8 takes at most 3 bytes per UTF-16 unit
  for (const text of texts) bound += LENGTH_PREFIX_BYTES + 3 * text.length;
  const out = new Uint8Array(bound);
  const view = new DataView(out.buffer);
  let offset = 0;
  for (const text of texts) {
    const start = offset + LENGTH_PREFIX_BYTES;
    const { written } = textEncoder.encodeInto(text, out.subarray(start));
    view.setUint32(offset, written);
    offset = start + written;
  }
  return out.slice(0, offset); // not a view: queued blocks hold no spare room
}

/**
 * Encodes one line: the text's UTF-8 bytes and `\n`.
 *
 * @example
 * ```ts
 * import { encodeLine } from "./framing.ts";
 * new TextDecoder().decode(encodeLine("hi")); // "hi\n"
 * ```
 */
export function encodeLine(text: string): Uint8Array {
  return textEncoder.encode(`${text}\n`);
}

/** The framings by name, as `--framing` spells them. */
export type FramingName = "line" | "length";

/** A framing: how to encode a message and how to make a decoder. */
export interface Framing {
  /** Its `--framing` name. */
  readonly name: FramingName;
  /** One message (text) to the bytes on the wire. */
  encode(text: string): Uint8Array;
  /** A new decoder bounded at `maxLength` bytes per message. */
  decoder(maxLength?: number, options?: RunsOption): Decoder;
}

/**
 * Both framings, by name.
 *
 * @example
 * ```ts
 * import { FRAMINGS } from "./framing.ts";
 * const framing = FRAMINGS["length"];
 * const decoder = framing.decoder(1024);
 * decoder.push(framing.encode("hello")).length; // 1
 * ```
 */
export const FRAMINGS: Readonly<Record<FramingName, Framing>> = {
  line: {
    name: "line",
    encode: encodeLine,
    decoder: (maxLength, options) => new LineDecoder({ maxLength, ...options }),
  },
  length: {
    name: "length",
    encode: encodeFrame,
    decoder: (maxLength, options) =>
      new LengthDecoder({ maxLength, ...options }),
  },
};

/**
 * Wraps a decoder in a `TransformStream` of byte chunks to messages, for
 * code that reads better with `pipeThrough`. (A read loop calling `push`
 * directly is faster on hot paths.) Each message is copied, as streams may
 * hold chunks.
 *
 * @example
 * ```ts
 * import { decoderStream, LineDecoder } from "./framing.ts";
 * const bytes = ReadableStream.from([new TextEncoder().encode("a\nb\n")]);
 * const lines = await Array.fromAsync(bytes.pipeThrough(decoderStream(new LineDecoder())));
 * lines.length; // 2
 * ```
 */
export function decoderStream(
  decoder: Decoder,
): TransformStream<Uint8Array, Uint8Array> {
  return new TransformStream({
    transform(chunk, controller) {
      for (const message of decoder.push(chunk)) {
        controller.enqueue(message.slice());
      }
    },
    flush(controller) {
      const last = decoder.end();
      if (last !== null) controller.enqueue(last);
    },
  });
}
