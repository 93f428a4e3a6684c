/**
 * Line framing: UTF-8 text ending in `\n` (`\r\n` accepted), as `nc`,
 * `telnet` and Python's `makefile().readline()` expect.
 *
 * @example
 * ```ts
 * import { LineDecoder } from "./line_decoder.ts";
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

import {
  type Decoder,
  DEFAULT_MAX_MESSAGE,
  FramingError,
  type RunsOption,
} from "./decoder.ts";
import { HeldBytes } from "./_held_bytes.ts";

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
 * import { LineDecoder } from "./line_decoder.ts";
 * const lines = new LineDecoder().push(new TextEncoder().encode("a\r\nb\n"));
 * lines.map((l) => new TextDecoder().decode(l)); // ["a", "b"]
 * ```
 */
export class LineDecoder implements Decoder {
  readonly #maxLength: number;
  readonly #keepEnds: boolean;
  readonly #runs: boolean;
  readonly #held: HeldBytes;

  /** Makes a decoder; see {@linkcode LineDecoderOptions}. */
  constructor(options: LineDecoderOptions = {}) {
    this.#maxLength = options.maxLength ?? DEFAULT_MAX_MESSAGE;
    this.#keepEnds = options.keepEnds ?? false;
    this.#runs = options.runs ?? false;
    // Room for the longest line with its "\r\n".
    this.#held = new HeldBytes({ reserve: this.#maxLength + 2 });
  }

  /** Bytes of the unfinished line held so far. */
  get buffered(): number {
    return this.#held.length;
  }

  /** Feeds a chunk; returns the lines it completes (or their run). */
  push(chunk: Uint8Array): Uint8Array[] {
    this.#held.release(); // the last push's messages are done with
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
    if (this.#held.length + last > this.#maxLength) {
      this.#checkLines(chunk, last);
    }
    const piece = chunk.subarray(0, last + 1);
    const run = this.#held.length === 0 ? piece : this.#held.take(piece);
    if (last + 1 < chunk.length) this.#hold(chunk.subarray(last + 1));
    return [run];
  }

  /** Checks each line of `chunk` up to its `\n` at `last`. */
  #checkLines(chunk: Uint8Array, last: number): void {
    let start = 0;
    let held = this.#held.length;
    for (;;) {
      const newline = chunk.indexOf(LF, start);
      const before = newline > start ? chunk[newline - 1] : this.#held.last();
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
    this.#check(this.#held.length + rest.length - pendingCr);
    this.#held.append(rest);
  }

  /** Where the next read may go to fill a large unfinished line in place, or null. */
  room(): Uint8Array | null {
    return this.#held.room();
  }

  /**
   * Drops the unfinished line, if any, and gives back now the memory of a
   * large one, held or handed out (call once done with the messages).
   */
  clear(): void {
    this.#held.clear();
  }

  /** Returns the last line if it had no `\n`, else `null`. */
  end(): Uint8Array | null {
    return this.#held.length === 0 ? null : this.#held.take();
  }

  /** The held start of a line, joined with its piece up to and including `\n`. */
  #finish(piece: Uint8Array): Uint8Array {
    const whole = this.#held.length === 0 ? piece : this.#held.take(piece);
    let end = whole.length - 1; // drop "\n"
    if (end > 0 && whole[end - 1] === CR) end--;
    this.#check(end);
    return this.#keepEnds ? whole : whole.subarray(0, end);
  }

  #check(length: number): void {
    if (length > this.#maxLength) {
      this.#held.clear();
      throw new FramingError(
        `line longer than the maximum of ${this.#maxLength} bytes`,
      );
    }
  }
}
