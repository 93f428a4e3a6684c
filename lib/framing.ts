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
 * A framing decoder: fed raw bytes, hands back complete messages.
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

/** Options of {@linkcode LineDecoder}. */
export interface LineDecoderOptions {
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
  #parts: Uint8Array[] = [];
  #buffered = 0;

  /** Makes a decoder; see {@linkcode LineDecoderOptions}. */
  constructor(options: LineDecoderOptions = {}) {
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE;
    this.#keepEnds = options.keepEnds ?? false;
  }

  /** Bytes of the unfinished line held so far. */
  get buffered(): number {
    return this.#buffered;
  }

  /** Feeds a chunk; returns the lines it completes. */
  push(chunk: Uint8Array): Uint8Array[] {
    const lines: Uint8Array[] = [];
    let start = 0;
    let newline = chunk.indexOf(LF);
    while (newline !== -1) {
      lines.push(this.#finish(chunk.subarray(start, newline + 1)));
      start = newline + 1;
      newline = chunk.indexOf(LF, start);
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      // A trailing "\r" may belong to a "\r\n" still to come.
      const pendingCr = rest[rest.length - 1] === CR ? 1 : 0;
      this.#check(this.#buffered + rest.length - pendingCr);
      this.#parts.push(rest.slice());
      this.#buffered += rest.length;
    }
    return lines;
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
export interface LengthDecoderOptions {
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
  readonly #header = new Uint8Array(LENGTH_PREFIX_BYTES);
  #headerFilled = 0;
  #payload: Uint8Array | null = null;
  #payloadFilled = 0;

  /** Makes a decoder; see {@linkcode LengthDecoderOptions}. */
  constructor(options: LengthDecoderOptions = {}) {
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE;
  }

  /** Bytes of the unfinished frame held so far (prefix included). */
  get buffered(): number {
    return this.#headerFilled + this.#payloadFilled;
  }

  /** Feeds a chunk; returns the payloads of the frames it completes. */
  push(chunk: Uint8Array): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length) {
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
          this.#payload = new Uint8Array(size);
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
        this.#payload = new Uint8Array(this.#size(readUint32(this.#header, 0)));
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
  decoder(maxLength?: number): Decoder;
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
    decoder: (maxLength) => new LineDecoder({ maxLength }),
  },
  length: {
    name: "length",
    encode: encodeFrame,
    decoder: (maxLength) => new LengthDecoder({ maxLength }),
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
