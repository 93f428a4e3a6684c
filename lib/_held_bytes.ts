/**
 * The start of an unfinished message, held between reads: one buffer that
 * doubles as bytes arrive (never sized from what a peer announces), handed
 * over whole when the message completes. Used by the decoders.
 *
 * @module
 */

/** The first buffer's size; most held pieces are a line's start. */
const FIRST_CAPACITY = 256;

/** Bytes held for one unfinished message. */
export class HeldBytes {
  #buffer: Uint8Array = new Uint8Array(0);
  #length = 0;

  /** How many bytes are held. */
  get length(): number {
    return this.#length;
  }

  /** The last byte held, if any. */
  last(): number | undefined {
    return this.#length > 0 ? this.#buffer[this.#length - 1] : undefined;
  }

  /** Copies `bytes` in after what is held, growing the buffer by doubling. */
  append(bytes: Uint8Array): void {
    this.#reserve(this.#length + bytes.length);
    this.#buffer.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /**
   * What is held followed by `tail`, as one array the caller now owns; the
   * holder is left empty (its buffer is let go, so an idle peer holds none).
   */
  take(tail: Uint8Array = new Uint8Array(0)): Uint8Array {
    this.#reserve(this.#length + tail.length, 0);
    this.#buffer.set(tail, this.#length);
    const whole = this.#buffer.subarray(0, this.#length + tail.length);
    this.clear();
    return whole;
  }

  /** Drops what is held. */
  clear(): void {
    this.#buffer = new Uint8Array(0);
    this.#length = 0;
  }

  /** Makes room for `size` bytes; grows to at least double, or exactly when `slack` is 0. */
  #reserve(size: number, slack = 1): void {
    if (size <= this.#buffer.length) return;
    const grown = slack === 0
      ? size
      : Math.max(size, FIRST_CAPACITY, this.#buffer.length * 2);
    const buffer = new Uint8Array(grown);
    buffer.set(this.#buffer.subarray(0, this.#length));
    this.#buffer = buffer;
  }
}
