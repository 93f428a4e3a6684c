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
 * A message held past {@linkcode LARGE} bytes moves to memory of its own:
 * a resizable `ArrayBuffer`, which V8 maps from the system for it alone,
 * and whose pages are handed back the moment it is let go (`resize(0)`).
 * Thousands of such messages, held and dropped, would otherwise leave the
 * C allocator's heap riddled with holes it never returns to the system.
 * The next reads go straight into it (`room()`: no read buffer grows, no
 * copy), and a message that ends there is handed over as it lies.
 *
 * @module
 */

/** The first piece's size; most held pieces are a line's start. */
const FIRST_CAPACITY = 256;
/** The most room a piece is given beyond the bytes copied into it. */
const MAX_SPARE = 4096;
/** Past this many bytes held, a message moves to memory of its own. */
export const LARGE = 32 * 1024;
/** The largest memory of its own a message gets; bounds above it keep pieces. */
const MAX_RESERVE = 16 * 1024 * 1024;
const PAGE = 4096;
const EMPTY = new Uint8Array(0);

/** Options of {@linkcode HeldBytes}. */
export interface HeldBytesOptions {
  /**
   * The most bytes a message may need held (the decoder's bound, framing
   * included): the size of the memory a large message is given. 0 (the
   * default), or over 16 MiB: large messages stay in pieces too.
   */
  reserve?: number;
}

/** Bytes held for one unfinished message. */
export class HeldBytes {
  /** Full pieces, in order. */
  #pieces: Uint8Array[] = [];
  /** The piece being filled (its first `#used` bytes are held). */
  #tail: Uint8Array = EMPTY;
  #used = 0;
  #length = 0;
  /** A large message's own memory, mapped for `#reserve` bytes; or null. */
  #large: Uint8Array<ArrayBuffer> | null = null;
  /** The memory of the last large message handed over whole, until released. */
  #handed: WeakRef<ArrayBuffer> | null = null;
  readonly #reserve: number;

  /** Holds nothing yet; see {@linkcode HeldBytesOptions}. */
  constructor(options: HeldBytesOptions = {}) {
    const reserve = options.reserve ?? 0;
    this.#reserve = reserve <= MAX_RESERVE ? reserve : 0;
  }

  /** How many bytes are held. */
  get length(): number {
    return this.#length;
  }

  /** Bytes allocated for what is held: its length plus the spare room. */
  get capacity(): number {
    if (this.#large) return Math.ceil(this.#length / PAGE) * PAGE;
    let total = this.#tail.length;
    for (const piece of this.#pieces) total += piece.buffer.byteLength;
    return total;
  }

  /** The last byte held, if any. */
  last(): number | undefined {
    if (this.#length === 0) return undefined;
    return this.#large
      ? this.#large[this.#length - 1]
      : this.#tail[this.#used - 1];
  }

  /**
   * Copies `bytes` in after what is held: into the room left in the last
   * piece, the rest into a new piece of their size (or, for a few bytes, a
   * little more, growing with what is held up to {@linkcode MAX_SPARE}).
   */
  append(bytes: Uint8Array): void {
    if (this.#inRoom(bytes)) {
      this.#length += bytes.length; // read into `room()`: already in place
      return;
    }
    const size = this.#length + bytes.length;
    if (this.#large || (size > LARGE && size <= this.#reserve)) {
      this.#appendLarge(bytes);
      return;
    }
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
   * The free part of a large message's own memory, for the next read to
   * fill in place (then `append` what it read: nothing is copied); null
   * while the message is held in pieces.
   */
  room(): Uint8Array | null {
    const large = this.#large;
    if (large === null || this.#length === large.length) return null;
    return large.subarray(this.#length);
  }

  /** Whether `bytes` lie in the large message's memory right after what is held. */
  #inRoom(bytes: Uint8Array): boolean {
    return this.#large !== null && bytes.buffer === this.#large.buffer &&
      bytes.byteOffset === this.#length;
  }

  /** Copies `bytes` into the large message's own memory (made on first use). */
  #appendLarge(bytes: Uint8Array): void {
    if (this.#large === null) {
      const memory = new ArrayBuffer(this.#reserve, {
        maxByteLength: this.#reserve,
      });
      this.#large = new Uint8Array(memory);
      this.#copyPieces(this.#large);
      this.#pieces = [];
      this.#tail = EMPTY;
      this.#used = 0;
    }
    if (this.#length + bytes.length > this.#large.length) {
      throw new RangeError(
        `held ${
          this.#length + bytes.length
        } bytes, over the ${this.#large.length} reserved: check the bound before appending`,
      );
    }
    this.#large.set(bytes, this.#length);
    this.#length += bytes.length;
  }

  /** Copies the pieces and the tail, in order, to the start of `target`. */
  #copyPieces(target: Uint8Array): number {
    let offset = 0;
    for (const piece of this.#pieces) {
      target.set(piece, offset);
      offset += piece.length;
    }
    target.set(this.#tail.subarray(0, this.#used), offset);
    return offset + this.#used;
  }

  /**
   * What is held followed by `tail`, as one array the caller now owns; the
   * holder is left empty (its pieces are let go, so an idle peer holds none).
   * A large message read in place comes back as a view of its own memory.
   */
  take(tail: Uint8Array = EMPTY): Uint8Array {
    const size = this.#length + tail.length;
    let whole: Uint8Array;
    if (this.#large && (tail.length === 0 || this.#inRoom(tail))) {
      // The whole message is in its own memory: it is handed over as it is
      // (the read that ended it may have more messages there, still in use).
      whole = new Uint8Array(this.#large.buffer, 0, size);
      this.#handed = new WeakRef(this.#large.buffer);
      this.#large = null;
    } else if (this.#large) {
      whole = new Uint8Array(size);
      whole.set(this.#large.subarray(0, this.#length));
      whole.set(tail, this.#length);
    } else if (this.#pieces.length === 0 && size <= this.#tail.length) {
      whole = this.#tail.subarray(0, size); // the common case: no new buffer
      whole.set(tail, this.#used);
    } else {
      whole = new Uint8Array(size);
      whole.set(tail, this.#copyPieces(whole));
    }
    this.#drop();
    return whole;
  }

  /**
   * Gives back now, rather than at a garbage collection, the memory of the
   * large message last handed over whole: call once it is no longer used
   * (a decoder's messages live until its next push).
   */
  release(): void {
    this.#handed?.deref()?.resize(0);
    this.#handed = null;
  }

  /**
   * Drops what is held, and releases (see {@linkcode release}): a large
   * message's pages go back to the system now.
   */
  clear(): void {
    this.release();
    this.#drop();
  }

  /** Lets go of what is held (a large message's memory shrunk to nothing). */
  #drop(): void {
    this.#large?.buffer.resize(0);
    this.#large = null;
    this.#pieces = [];
    this.#tail = EMPTY;
    this.#used = 0;
    this.#length = 0;
  }
}
