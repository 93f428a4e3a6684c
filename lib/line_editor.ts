/**
 * A small line editor for a terminal in raw mode: it keeps the line being
 * typed, so that text arriving from the network can be printed above it
 * and the line redrawn, instead of being mangled in the middle of it.
 *
 * It is pure: fed the bytes of keystrokes, it returns events (a finished
 * line, end of input, Ctrl+C) and renders the prompt line as a string. The
 * terminal I/O lives in `terminal.ts`.
 *
 * Keys: printable text (UTF-8), Enter, Backspace, Ctrl+U (clear line),
 * Ctrl+W (delete word), Ctrl+D (end of input on an empty line), Ctrl+C.
 * Other control keys and escape sequences (arrows) are ignored.
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 *
 * const editor = new LineEditor("> ");
 * editor.feed(new TextEncoder().encode("hi\r")); // [{ kind: "line", text: "hi" }]
 * ```
 *
 * @module
 */

/** What a keystroke may finish. */
export type EditorEvent =
  | { kind: "line"; text: string }
  | { kind: "eof" }
  | { kind: "interrupt" };

/** Clears the terminal row the cursor is on and returns to its start. */
export const CLEAR_LINE = "\r\x1b[2K";

const ESC = "\x1b";

/**
 * The state of the line being typed.
 *
 * @example
 * ```ts
 * import { LineEditor } from "./line_editor.ts";
 * const editor = new LineEditor("> ");
 * editor.feed(new TextEncoder().encode("abc\x7f"));
 * editor.text; // "ab"
 * ```
 */
export class LineEditor {
  readonly #prompt: string;
  readonly #decoder = new TextDecoder();
  #chars: string[] = [];
  #escape = "";

  /** Makes an editor that shows `prompt` before the text. */
  constructor(prompt: string) {
    this.#prompt = prompt;
  }

  /** The text typed so far on this line. */
  get text(): string {
    return this.#chars.join("");
  }

  /** Feeds keystroke bytes; returns the events they complete, in order. */
  feed(bytes: Uint8Array): EditorEvent[] {
    const events: EditorEvent[] = [];
    for (const char of this.#decoder.decode(bytes, { stream: true })) {
      const event = this.#key(char);
      if (event) events.push(event);
    }
    return events;
  }

  #key(char: string): EditorEvent | undefined {
    if (this.#escape !== "") {
      // Swallow an escape sequence: ESC [ params final, or ESC O final.
      this.#escape += char;
      const done = this.#escape.length === 2
        ? char !== "[" && char !== "O"
        : /[@-~]/.test(char) && this.#escape.length > 2;
      if (done) this.#escape = "";
      return undefined;
    }
    switch (char) {
      case "\r":
      case "\n": {
        const text = this.text;
        this.#chars = [];
        return { kind: "line", text };
      }
      case "\x7f":
      case "\b":
        this.#chars.pop();
        return undefined;
      case "\x15": // Ctrl+U
        this.#chars = [];
        return undefined;
      case "\x17": // Ctrl+W
        while (this.#chars.at(-1) === " ") this.#chars.pop();
        while (this.#chars.length > 0 && this.#chars.at(-1) !== " ") {
          this.#chars.pop();
        }
        return undefined;
      case "\x03": // Ctrl+C
        return { kind: "interrupt" };
      case "\x04": // Ctrl+D
        return this.#chars.length === 0 ? { kind: "eof" } : undefined;
      case ESC:
        this.#escape = ESC;
        return undefined;
    }
    if (char === "\t" || char >= " ") this.#chars.push(char);
    return undefined;
  }

  /**
   * The prompt line as terminal output: clears the row, prints the prompt
   * and as much of the end of the text as fits in `columns`.
   */
  render(columns = 80): string {
    const room = Math.max(columns - [...this.#prompt].length - 1, 1);
    const shown = this.#chars.length > room
      ? this.#chars.slice(-room)
      : this.#chars;
    return `${CLEAR_LINE}${this.#prompt}${shown.join("")}`;
  }
}
