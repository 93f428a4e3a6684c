/**
 * Where messages begin and end in one direction of a connection, followed
 * chunk by chunk beside the program's own decoder, for the `--wire` view
 * (`wire.ts`): counters only, never a copy of the bytes.
 *
 * @example
 * ```ts
 * import { FrameTracker } from "./frame_tracker.ts";
 * const tracker = new FrameTracker("length");
 * const pieces = [...tracker.pieces(Uint8Array.of(0, 0, 0, 2, 104, 105))];
 * pieces.map((p) => p.kind); // ["prefix", "payload"]
 * ```
 *
 * @module
 */

import { LENGTH_PREFIX_BYTES } from "./encoders.ts";

/** What a tracker follows: a stream of bytes, lines, or length-prefixed frames. */
export type WireFraming = "none" | "line" | "length";

/** A run of a chunk's bytes, as the framing sees it. */
export type FramePiece =
  /** No framing: bytes of a stream. */
  | { kind: "bytes"; start: number; end: number }
  /** Bytes of a 4-byte length prefix (maybe split across chunks). */
  | {
    kind: "prefix";
    start: number;
    end: number;
    /** Prefix bytes that came in earlier chunks. */
    before: number;
    /** Prefix bytes known once this piece is counted (4: complete). */
    filled: number;
    /** The prefix read so far, as a big-endian number (the length once complete). */
    value: number;
  }
  /** Bytes of a message (a line with its `\n`, or a frame's payload). */
  | {
    kind: "payload";
    start: number;
    end: number;
    /** The message's number in this direction, from 1. */
    message: number;
    /** Its bytes so far, this piece included. */
    size: number;
    /** Its announced size (length framing), else `null`. */
    total: number | null;
    /** Whether the message ends in this piece. */
    ends: boolean;
    /** How many chunks the message has touched so far. */
    chunks: number;
  };

const LF = 0x0a;

/**
 * Follows one direction of a connection through a framing, chunk by chunk,
 * and says where messages end: counters only, never a copy of the bytes.
 *
 * @example
 * ```ts
 * import { FrameTracker } from "./frame_tracker.ts";
 * const tracker = new FrameTracker("line");
 * const pieces = [...tracker.pieces(new TextEncoder().encode("hi\nth"))];
 * pieces.map((p) => p.kind === "payload" && p.ends); // [true, false]
 * ```
 */
export class FrameTracker {
  /** The framing followed. */
  readonly framing: WireFraming;
  #messages = 0; // messages ended so far
  #size = 0; // bytes of the current message so far
  #chunks = 0; // chunks the current message touched
  #touched = 0; // the chunk that last touched it
  #serial = 0; // chunks seen
  #prefixFilled = 0;
  #prefixValue = 0;
  #left = -1; // payload bytes left; -1 while reading a prefix

  /** A tracker at the start of a stream. */
  constructor(framing: WireFraming) {
    this.framing = framing;
  }

  /** The messages that ended so far. */
  get messages(): number {
    return this.#messages;
  }

  /** Splits `chunk` into pieces and moves past it. */
  *pieces(chunk: Uint8Array): Generator<FramePiece, void, undefined> {
    this.#serial++;
    if (this.framing === "none") {
      if (chunk.length > 0) {
        yield { kind: "bytes", start: 0, end: chunk.length };
      }
      return;
    }
    if (this.framing === "line") yield* this.#lines(chunk);
    else yield* this.#frames(chunk);
  }

  /** Counts the current message as touched by this chunk. */
  #touch(): number {
    if (this.#touched !== this.#serial) {
      this.#touched = this.#serial;
      this.#chunks++;
    }
    return this.#chunks;
  }

  #end(): void {
    this.#messages++;
    this.#size = 0;
    this.#chunks = 0;
    this.#touched = 0;
  }

  *#lines(chunk: Uint8Array): Generator<FramePiece, void, undefined> {
    let start = 0;
    while (start < chunk.length) {
      const newline = chunk.indexOf(LF, start);
      const end = newline === -1 ? chunk.length : newline + 1;
      this.#size += end - start;
      const piece: FramePiece = {
        kind: "payload",
        start,
        end,
        message: this.#messages + 1,
        size: this.#size,
        total: null,
        ends: newline !== -1,
        chunks: this.#touch(),
      };
      if (piece.ends) this.#end();
      yield piece;
      start = end;
    }
  }

  *#frames(chunk: Uint8Array): Generator<FramePiece, void, undefined> {
    let offset = 0;
    while (offset < chunk.length) {
      if (this.#left < 0) {
        const before = this.#prefixFilled;
        const take = Math.min(
          LENGTH_PREFIX_BYTES - before,
          chunk.length - offset,
        );
        for (let i = offset; i < offset + take; i++) {
          this.#prefixValue = this.#prefixValue * 256 + chunk[i];
        }
        this.#prefixFilled += take;
        this.#touch();
        yield {
          kind: "prefix",
          start: offset,
          end: offset + take,
          before,
          filled: this.#prefixFilled,
          value: this.#prefixValue,
        };
        offset += take;
        if (this.#prefixFilled < LENGTH_PREFIX_BYTES) return;
        this.#left = this.#prefixValue;
        this.#prefixFilled = 0;
        this.#prefixValue = 0;
        // An empty message ends with its prefix; a prefix that ends the
        // chunk leaves its message waiting for the next one.
        if (this.#left === 0 || offset === chunk.length) {
          yield* this.#payload(offset, 0);
        }
        continue;
      }
      const take = Math.min(this.#left, chunk.length - offset);
      yield* this.#payload(offset, take);
      offset += take;
    }
  }

  *#payload(
    start: number,
    take: number,
  ): Generator<FramePiece, void, undefined> {
    this.#size += take;
    this.#left -= take;
    const piece: FramePiece = {
      kind: "payload",
      start,
      end: start + take,
      message: this.#messages + 1,
      size: this.#size,
      total: this.#size + this.#left,
      ends: this.#left === 0,
      chunks: this.#touch(),
    };
    if (piece.ends) {
      this.#left = -1;
      this.#end();
    }
    yield piece;
  }
}
