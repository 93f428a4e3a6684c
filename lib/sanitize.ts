/**
 * Text from one chat client, made safe to show on another's terminal.
 *
 * A terminal obeys control characters: ESC sequences move the cursor,
 * clear the screen, change the window title, or (on some terminals) worse.
 * Relayed as-is, one client could drive every other client's terminal. So,
 * as `ncat --chat` does, control characters other than tab are shown
 * escaped instead: ESC becomes `^[`, BEL `^G`, DEL `^?`, a C1 control
 * `\x9b` its hex, and the bidirectional overrides that can reorder text on
 * screen (U+202A–U+202E, U+2066–U+2069) become `<U+202E>`.
 *
 * @example
 * ```ts
 * import { sanitizeText } from "./sanitize.ts";
 * sanitizeText("hi\x1b[2J there"); // "hi^[[2J there"
 * ```
 *
 * @module
 */

// C0 controls but tab, DEL, C1 controls, bidi embeddings/overrides/isolates.
// deno-lint-ignore no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x08\x0a-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/g;

function escape(char: string): string {
  const code = char.charCodeAt(0);
  if (code < 0x20) return `^${String.fromCharCode(code + 0x40)}`;
  if (code === 0x7f) return "^?";
  if (code <= 0x9f) return `\\x${code.toString(16)}`;
  return `<U+${code.toString(16).toUpperCase()}>`;
}

/**
 * Escapes every control character but tab (see the module doc).
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
