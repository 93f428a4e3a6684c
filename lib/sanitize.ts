/**
 * Text from one chat client, made safe to show on another's terminal.
 *
 * A terminal obeys control characters: ESC sequences move the cursor,
 * clear the screen, change the window title, or (on some terminals) worse.
 * Relayed as-is, one client could drive every other client's terminal. So,
 * as `ncat --chat` does, control characters other than tab are shown
 * escaped instead: ESC becomes `^[`, BEL `^G`, DEL `^?`, a C1 control
 * `\x9b` its hex. Characters that are invisible or reorder text on screen
 * (format characters: zero-width spaces, bidi marks and overrides, tag
 * characters; line and paragraph separators; fillers such as U+3164 and
 * U+2800) become `<U+200B>`, so nothing hides in a message; a zero-width
 * joiner inside an emoji sequence (👨‍👩‍👧) stays.
 *
 * @example
 * ```ts
 * import { sanitizeText } from "./sanitize.ts";
 * sanitizeText("hi\x1b[2J there"); // "hi^[[2J there"
 * sanitizeText("a\u200bb"); // "a<U+200B>b"
 * ```
 *
 * @module
 */

// C0 controls but tab, DEL, C1 controls, format characters (zero-width,
// bidi, tags, soft hyphen, BOM), line/paragraph separators, fillers.
const UNSAFE =
  // deno-lint-ignore no-control-regex -- matching control characters is the point
  /[\x00-\x08\x0a-\x1f\x7f-\x9f\p{Cf}\u2028\u2029\u115f\u1160\u3164\uffa0\u2800]/gu;

/** What may stand on each side of a zero-width joiner inside an emoji. */
// (An alternation: V8 misses astral characters in such a class before `$`.)
const EMOJI_BEFORE =
  /(?:\p{Extended_Pictographic}|\p{Emoji_Modifier}|\ufe0f)$/u;
const EMOJI_AFTER = /^\p{Extended_Pictographic}/u;

function escape(char: string, offset: number, text: string): string {
  const code = char.codePointAt(0)!;
  if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
  if (code === 0x7f) return "^?";
  if (code <= 0x9f) return `\\x${code.toString(16)}`;
  if (
    code === 0x200d &&
    EMOJI_BEFORE.test(text.slice(Math.max(0, offset - 2), offset)) &&
    EMOJI_AFTER.test(text.slice(offset + 1, offset + 3))
  ) {
    return char; // joins an emoji sequence
  }
  return `<U+${code.toString(16).toUpperCase().padStart(4, "0")}>`;
}

/**
 * Escapes every control character but tab, and every invisible or
 * reordering character (see the module doc).
 *
 * @example
 * ```ts
 * import { sanitizeText } from "./sanitize.ts";
 * sanitizeText("bell\x07"); // "bell^G"
 * sanitizeText("tab\tok"); // "tab\tok"
 * ```
 */
export function sanitizeText(text: string): string {
  UNSAFE.lastIndex = 0;
  return UNSAFE.test(text) ? text.replace(UNSAFE, escape) : text;
}

const utf8 = new TextDecoder(); // invalid UTF-8 becomes U+FFFD, never an error

/**
 * Decodes one received message as UTF-8, invalid bytes shown as U+FFFD,
 * without sanitizing: for checks that must see control characters (a
 * nickname may not hold any).
 *
 * @example
 * ```ts
 * import { decodeText } from "./sanitize.ts";
 * decodeText(Uint8Array.of(0x68, 0x69, 0xff)); // "hi\uFFFD"
 * ```
 */
export function decodeText(message: Uint8Array): string {
  return utf8.decode(message);
}

/**
 * Decodes a run of lines (from a `LineDecoder` made with `runs: true`) in
 * one call and splits it: the texts {@linkcode decodeText} would give line
 * by line (a `\r` before `\n` dropped; a last line without `\n`, which a
 * decoder hands back at the end of the stream, kept as it is), at a
 * fraction of the cost for many short lines. (`\n` is never part of a
 * multi-byte UTF-8 character, so decoding first and splitting after gives
 * the same texts.)
 *
 * @example
 * ```ts
 * import { decodeLines } from "./sanitize.ts";
 * decodeLines(new TextEncoder().encode("hi\r\nthere\n")); // ["hi", "there"]
 * ```
 */
export function decodeLines(run: Uint8Array): string[] {
  const lines = utf8.decode(run).split("\n");
  // the text after the last "\n": "" when the run ends in one
  const ended = lines[lines.length - 1] === "";
  if (ended) lines.pop();
  const terminated = ended ? lines.length : lines.length - 1;
  for (let i = 0; i < terminated; i++) {
    const line = lines[i];
    if (line.endsWith("\r")) lines[i] = line.slice(0, -1);
  }
  return lines;
}
