/**
 * Length-prefixed framing: a 4-byte unsigned big-endian length `N`, then
 * `N` bytes (Python: `struct.pack("!I", len(b)) + b`); payloads may hold
 * `\n` and NUL.
 *
 * A prefix over the bound is refused at once. A frame's bytes are held as
 * they arrive, never allocated from the prefix: a peer that announces 64 KiB
 * and sends nothing costs 4 bytes, not 64 KiB.
 *
 * @example
 * ```ts
 * import { LengthDecoder } from "./length_decoder.ts";
 * import { encodeFrame } from "./encoders.ts";
 * const frames = new LengthDecoder().push(encodeFrame("hi\n"));
 * new TextDecoder().decode(frames[0]); // "hi\n"
 * ```
 *
 * @module
 */

import {
  type Decoder,
  DEFAULT_MAX_MESSAGE,
  FramingError,
  type RunsOption,
} from "./decoder.ts";
import { HeldBytes } from "./_held_bytes.ts";
import { LENGTH_PREFIX_BYTES } from "./encoders.ts";

/** Options of {@linkcode LengthDecoder}. */
export interface LengthDecoderOptions extends RunsOption {
  /** The largest payload accepted, in bytes (default 64 KiB). */
  maxLength?: number;
}

/**
 * Splits bytes into length-prefixed frames: 4-byte big-endian `N`, then `N`
 * bytes.
 *
 * @example
 * ```ts
 * import { LengthDecoder } from "./length_decoder.ts";
 * const decoder = new LengthDecoder({ maxLength: 16 });
 * decoder.push(Uint8Array.of(0, 0, 0, 2, 104)); // [] (1 of 2 bytes so far)
 * decoder.push(Uint8Array.of(105)).length; // 1: "hi"
 * ```
 */
export class LengthDecoder implements Decoder {
  readonly #maxLength: number;
  readonly #runs: boolean;
  /** The unfinished frame, prefix first (so a run can take it whole). */
  readonly #held: HeldBytes;
  /** The payload size of the held frame once its prefix is complete; -1 before. */
  #size = -1;
  /** Bytes of the chunk the last `#pushFrames` call used. */
  #consumed = 0;

  /** Makes a decoder; see {@linkcode LengthDecoderOptions}. */
  constructor(options: LengthDecoderOptions = {}) {
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE;
    this.#runs = options.runs ?? false;
    this.#held = new HeldBytes({
      reserve: LENGTH_PREFIX_BYTES + this.#maxLength,
    });
  }

  /** Bytes of the unfinished frame held so far (prefix included). */
  get buffered(): number {
    return this.#held.length;
  }

  /** Feeds a chunk; returns the payloads of the frames it completes (or their run). */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#held.release(); // the last push's messages are done with
    return this.#runs ? this.#pushRun(chunk) : this.#pushFrames(chunk);
  }

  /**
   * Runs: whole frames are walked prefix to prefix and handed back as one
   * view; a frame split between reads is finished by the message path and
   * joined in front.
   */
  #pushRun(chunk: Uint8Array): Uint8Array[] {
    let head: Uint8Array | null = null;
    let start = 0;
    if (this.#held.length > 0) {
      const payloads = this.#pushFrames(chunk, 1);
      if (payloads.length === 0) return [];
      head = withPrefix(payloads[0]);
      start = this.#consumed;
    }
    let end = start;
    while (chunk.length - end >= LENGTH_PREFIX_BYTES) {
      const size = this.#check(readUint32(chunk, end));
      if (chunk.length - end - LENGTH_PREFIX_BYTES < size) break;
      end += LENGTH_PREFIX_BYTES + size;
    }
    if (end < chunk.length) this.#pushFrames(chunk.subarray(end)); // holds the rest
    const run = chunk.subarray(start, end);
    if (head === null) return run.length > 0 ? [run] : [];
    if (run.length === 0) return [head];
    const joined = new Uint8Array(head.length + run.length);
    joined.set(head);
    joined.set(run, head.length);
    return [joined];
  }

  /** The message path; stops once it has `stopAfter` frames. */
  #pushFrames(chunk: Uint8Array, stopAfter = Infinity): Uint8Array[] {
    const frames: Uint8Array[] = [];
    let offset = 0;
    while (offset < chunk.length && frames.length < stopAfter) {
      const held = this.#held.length;
      if (held === 0 && chunk.length - offset >= LENGTH_PREFIX_BYTES) {
        // Fast path: a whole frame inside the chunk is returned as a view.
        const size = this.#check(readUint32(chunk, offset));
        const start = offset + LENGTH_PREFIX_BYTES;
        if (chunk.length - start >= size) {
          frames.push(chunk.subarray(start, start + size));
          offset = start + size;
          continue;
        }
        this.#size = size;
      }
      // Hold the prefix, then the payload, as far as this chunk goes.
      const want = this.#size < 0
        ? LENGTH_PREFIX_BYTES - held
        : LENGTH_PREFIX_BYTES + this.#size - held;
      const take = Math.min(want, chunk.length - offset);
      this.#held.append(chunk.subarray(offset, offset + take));
      offset += take;
      if (this.#size < 0 && this.#held.length === LENGTH_PREFIX_BYTES) {
        this.#size = this.#check(readUint32(this.#held.take(), 0));
        // The prefix is held again, as the first bytes of the frame.
        this.#held.append(prefixOf(this.#size));
      }
      if (
        this.#size >= 0 &&
        this.#held.length === LENGTH_PREFIX_BYTES + this.#size
      ) {
        frames.push(this.#held.take().subarray(LENGTH_PREFIX_BYTES));
        this.#size = -1;
      }
    }
    this.#consumed = offset;
    return frames;
  }

  /** Where the next read may go to fill a large unfinished frame in place, or null. */
  room(): Uint8Array | null {
    return this.#held.room();
  }

  /**
   * Drops the unfinished frame, if any, and gives back now the memory of a
   * large one, held or handed out (call once done with the messages).
   */
  clear(): void {
    this.#held.clear();
    this.#size = -1;
  }

  /** Throws {@linkcode FramingError} if a frame was cut off; else `null`. */
  end(): Uint8Array | null {
    const held = this.#held.length;
    if (held === 0) return null;
    const size = this.#size;
    this.#held.clear();
    this.#size = -1;
    if (size < 0) {
      throw new FramingError(
        `stream ended in the middle of a length prefix: got ${held} of ${LENGTH_PREFIX_BYTES} bytes`,
      );
    }
    throw new FramingError(
      `stream ended in the middle of a frame: got ${
        held - LENGTH_PREFIX_BYTES
      } of ${size} payload bytes`,
    );
  }

  #check(size: number): number {
    if (size > this.#maxLength) {
      this.#held.clear();
      this.#size = -1;
      const error = new FramingError(
        `frame of ${size} bytes is over the maximum of ${this.#maxLength} bytes`,
      );
      error.prefix = prefixOf(size);
      throw error;
    }
    return size;
  }
}

/** The whole frame (prefix, payload) of a payload held with its prefix in front. */
function withPrefix(payload: Uint8Array): Uint8Array {
  return new Uint8Array(
    payload.buffer,
    payload.byteOffset - LENGTH_PREFIX_BYTES,
    payload.length + LENGTH_PREFIX_BYTES,
  );
}

function prefixOf(size: number): Uint8Array {
  return Uint8Array.of(
    size >>> 24,
    (size >>> 16) & 0xff,
    (size >>> 8) & 0xff,
    size & 0xff,
  );
}

function readUint32(bytes: Uint8Array, offset: number): number {
  return ((bytes[offset] << 24) >>> 0) + (bytes[offset + 1] << 16) +
    (bytes[offset + 2] << 8) + bytes[offset + 3];
}
