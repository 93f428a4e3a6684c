/**
 * Bytes as the wire view (`--wire`, see wire.ts) shows them: printable UTF-8
 * as itself, everything else escaped, so that no raw control character ever
 * reaches the terminal; and whether a chunk reads better as a hex dump.
 *
 * @example
 * ```ts
 * import { wireTokens } from "./wire_text.ts";
 * const shown = [...wireTokens(new TextEncoder().encode("é\r\n"))]
 *   .map((token) => token.text)
 *   .join(""); // "é\\r\\n"
 * ```
 *
 * @module
 */

import { eastAsianWidth } from "get-east-asian-width";

const LF = 0x0a;

/** One shown unit: a character, or the escape standing for a byte or a control. */
export interface WireToken {
  /** What the terminal shows. */
  text: string;
  /** Bytes it stands for. */
  bytes: number;
  /** Terminal columns it takes. */
  cols: number;
  /** A `\n`: the row breaks after it. */
  newline: boolean;
  /** An invalid byte or a control character other than \t \n \r. */
  binary: boolean;
}

const NAMED: Record<number, string> = {
  0x09: "\\t",
  0x0a: "\\n",
  0x0d: "\\r",
  0x5c: "\\\\",
};

/** Escaped, never shown raw: controls, line/paragraph separators, bidi and format characters (but ZWJ, which joins emoji). */
const HIDDEN = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}]/u;

/**
 * A byte as two lowercase hex digits.
 *
 * @example
 * ```ts
 * import { hexByte } from "./wire_text.ts";
 * hexByte(0x1b); // "1b"
 * ```
 */
export function hexByte(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

/** The length of the valid UTF-8 sequence at `i`, or 0 if none starts there. */
function utf8Length(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  const cont = (k: number, lo = 0x80, hi = 0xbf): boolean =>
    i + k < bytes.length && bytes[i + k] >= lo && bytes[i + k] <= hi;
  if (b < 0x80) return 1;
  if (b >= 0xc2 && b <= 0xdf) return cont(1) ? 2 : 0;
  if (b >= 0xe0 && b <= 0xef) {
    const lo = b === 0xe0 ? 0xa0 : 0x80;
    const hi = b === 0xed ? 0x9f : 0xbf;
    return cont(1, lo, hi) && cont(2) ? 3 : 0;
  }
  if (b >= 0xf0 && b <= 0xf4) {
    const lo = b === 0xf0 ? 0x90 : 0x80;
    const hi = b === 0xf4 ? 0x8f : 0xbf;
    return cont(1, lo, hi) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;
}

/**
 * How many bytes from `i` to the end of `bytes` are the start of a UTF-8
 * character that the end cut off (0 if they are not).
 */
function cutCharacter(bytes: Uint8Array, i: number): number {
  const b = bytes[i];
  const need = b >= 0xc2 && b <= 0xdf
    ? 2
    : b >= 0xe0 && b <= 0xef
    ? 3
    : b >= 0xf0 && b <= 0xf4
    ? 4
    : 0;
  const have = bytes.length - i;
  if (need === 0 || have >= need) return 0;
  const padded = new Uint8Array(need).fill(0x80);
  padded.set(bytes.subarray(i));
  if (b === 0xe0 && have === 1) padded[1] = 0xa0;
  if (b === 0xf0 && have === 1) padded[1] = 0x90;
  return utf8Length(padded, 0) === need ? have : 0;
}

/** Whether `bytes` open with continuation bytes up to `i`: a character's tail. */
function leadsIn(bytes: Uint8Array, i: number): boolean {
  for (let k = 0; k <= i; k++) {
    if (bytes[k] < 0x80 || bytes[k] > 0xbf) return false;
  }
  return true;
}

const utf8 = new TextDecoder();

/**
 * The bytes as tokens: printable UTF-8 as itself, everything else escaped
 * (`\\n`, `\\x1b`, `\\u200b`), each with the bytes it stands for and the
 * terminal columns it takes. A character cut by either end of `bytes` (text
 * split across reads) is escaped byte by byte, but not counted as binary.
 *
 * @example
 * ```ts
 * import { wireTokens } from "./wire_text.ts";
 * const bytes = new TextEncoder().encode("hi\x1b\n");
 * [...wireTokens(bytes)].map((token) => token.text); // ["h", "i", "\\x1b", "\\n"]
 * ```
 */
export function* wireTokens(
  bytes: Uint8Array,
): Generator<WireToken, void, undefined> {
  let i = 0;
  while (i < bytes.length) {
    const b = bytes[i];
    const named = NAMED[b];
    if (named) {
      yield {
        text: named,
        bytes: 1,
        cols: named.length,
        newline: b === LF,
        binary: false,
      };
      i++;
      continue;
    }
    const length = utf8Length(bytes, i);
    if (length === 0) {
      // A character cut by either end of the chunk is text split across
      // reads, not binary: its bytes are escaped all the same.
      const cut = i < 3 && b >= 0x80 && b <= 0xbf && leadsIn(bytes, i)
        ? 1
        : cutCharacter(bytes, i);
      for (let k = 0; k < (cut || 1); k++) {
        yield {
          text: `\\x${hexByte(bytes[i + k])}`,
          bytes: 1,
          cols: 4,
          newline: false,
          binary: cut === 0,
        };
      }
      i += cut || 1;
      continue;
    }
    const char = length === 1
      ? String.fromCharCode(b)
      : utf8.decode(bytes.subarray(i, i + length));
    const code = char.codePointAt(0)!;
    if (HIDDEN.test(char) && code !== 0x200d) {
      const text = code < 0x80
        ? `\\x${hexByte(code)}`
        : `\\u${code.toString(16).padStart(4, "0")}`;
      yield {
        text,
        bytes: length,
        cols: text.length,
        newline: false,
        binary: code < 0xa0,
      };
    } else {
      const cols = /\p{M}/u.test(char) || code === 0x200d
        ? 0
        : eastAsianWidth(code);
      yield { text: char, bytes: length, cols, newline: false, binary: false };
    }
    i += length;
  }
}

/**
 * Whether a chunk reads better as hex: a quarter of its first 512 bytes
 * (in `parts`, the chunk's text without its length prefixes) are binary.
 *
 * @example
 * ```ts
 * import { mostlyBinary } from "./wire_text.ts";
 * mostlyBinary([new TextEncoder().encode("hello\n")]); // false
 * mostlyBinary([new Uint8Array([0, 1, 2, 0xff])]); // true
 * ```
 */
export function mostlyBinary(parts: Iterable<Uint8Array>): boolean {
  let seen = 0;
  let binary = 0;
  for (const part of parts) {
    for (const token of wireTokens(part)) {
      seen += token.bytes;
      if (token.binary) binary += token.bytes;
      if (seen >= 512) break;
    }
    if (seen >= 512) break;
  }
  return binary * 4 > seen;
}
