/**
 * Encoders: a text message to the bytes on the wire, in each framing.
 *
 * @example
 * ```ts
 * import { encodeFrame, encodeLine } from "./encoders.ts";
 * new TextDecoder().decode(encodeLine("hi")); // "hi\n"
 * encodeFrame("hi"); // Uint8Array [0, 0, 0, 2, 104, 105]
 * ```
 *
 * @module
 */

/** Bytes in the length prefix of the `length` framing. */
export const LENGTH_PREFIX_BYTES = 4;

const textEncoder = new TextEncoder();

/**
 * Encodes one length-prefixed frame: 4-byte big-endian length, then payload.
 *
 * @example
 * ```ts
 * import { encodeFrame } from "./encoders.ts";
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
 * import { encodeFrames } from "./encoders.ts";
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
 * import { encodeLine } from "./encoders.ts";
 * new TextDecoder().decode(encodeLine("hi")); // "hi\n"
 * ```
 */
export function encodeLine(text: string): Uint8Array {
  return textEncoder.encode(`${text}\n`);
}

/**
 * The UTF-8 length of `text` in bytes, without encoding it: what a message
 * will cost on the wire, to check it against a bound before sending.
 *
 * @example
 * ```ts
 * import { utf8Length } from "./encoders.ts";
 * utf8Length("héllo 中"); // 10
 * ```
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) bytes += 1;
    else if (code >= 0xd800 && code <= 0xdbff && i + 1 < text.length) {
      const next = text.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 2; // a pair: 2 units, 4 bytes
        i++;
      } else bytes += 2; // a lone surrogate is encoded as U+FFFD
    } else bytes += 2;
  }
  return bytes;
}
