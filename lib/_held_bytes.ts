/**
 * The start of an unfinished message, held between reads, and handed over
 * whole when the message completes. Used by the decoders.
 *
 * It is kept as pieces, copied in as they arrive and joined once at the
 * end, never in one buffer regrown by doubling: a message held unfinished
 * (an attacker's, or a client's that stalled) costs its own bytes plus at
 * most {@linkcode MAX_SPARE} of spare room, and leaves no trail of
 * outgrown buffers behind it. Nothing is ever sized from what a peer
 * announces.
 *
 * @module
 */

/** The first piece's size; most held pieces are a line's start. */
const FIRST_CAPACITY = 256;
/** The most room a piece is given beyond the bytes copied into it. */
const MAX_SPARE = 4096;
const EMPTY = new Uint8Array(0);

/** Bytes held for one unfinished message. */
export class HeldBytes {
  /** Full pieces, in order. */
  #pieces: Uint8Array[] = [];
  /** The piece being filled (its first `#used` bytes are held). */
  #tail: Uint8Array = EMPTY;
  #used = 0;
  #length = 0;

  /** How many bytes are held. */
  get length(): number {
    return this.#length;
  }

  /** Bytes allocated for what is held: its length plus the spare room. */
  get capacity(): number {
    let total = this.#tail.length;
    for (const piece of this.#pieces) total += piece.buffer.byteLength;
    return total;
  }

  /** The last byte held, if any. */
  last(): number | undefined {
    return this.#length > 0 ? this.#tail[this.#used - 1] : undefined;
  }

  /**
   * Copies `bytes` in after what is held: into the room left in the last
   * piece, the rest into a new piece of their size (or, for a few bytes, a
   * little more, growing with what is held up to {@linkcode MAX_SPARE}).
   */
  append(bytes: Uint8Array): void {
    const fit = Math.min(bytes.length, this.#tail.length - this.#used);
    this.#tail.set(bytes.subarray(0, fit), this.#used);
    this.#used += fit;
    this.#length += bytes.length;
    if (fit === bytes.length) return;
    const rest = bytes.subarray(fit);
    if (this.#used > 0) this.#pieces.push(this.#tail.subarray(0, this.#used));
    const spare = Math.min(Math.max(FIRST_CAPACITY, this.#length), MAX_SPARE);
    this.#tail = new Uint8Array(Math.max(rest.length, spare));
    this.#tail.set(rest);
    this.#used = rest.length;
  }

  /**
   * What is held followed by `tail`, as one array the caller now owns; the
   * holder is left empty (its pieces are let go, so an idle peer holds none).
   */
  take(tail: Uint8Array = EMPTY): Uint8Array {
    const size = this.#length + tail.length;
    let whole: Uint8Array;
    if (this.#pieces.length === 0 && size <= this.#tail.length) {
      whole = this.#tail.subarray(0, size); // the common case: no new buffer
      whole.set(tail, this.#used);
    } else {
      whole = new Uint8Array(size);
      let offset = 0;
      for (const piece of this.#pieces) {
        whole.set(piece, offset);
        offset += piece.length;
      }
      whole.set(this.#tail.subarray(0, this.#used), offset);
      whole.set(tail, offset + this.#used);
    }
    this.clear();
    return whole;
  }

  /** Drops what is held. */
  clear(): void {
    this.#pieces = [];
    this.#tail = EMPTY;
    this.#used = 0;
    this.#length = 0;
  }
}
