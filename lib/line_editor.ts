/**
 * A small line editor for a terminal in raw mode: it keeps the line being
 * typed, so that text arriving from the network can be printed above it
 * and the line redrawn, instead of being mangled in the middle of it.
 *
 * It is pure: fed the bytes of keystrokes, it returns events (a finished
 * line, end of input, Ctrl+C) and renders the prompt row as a string. The
 * terminal I/O lives in `terminal.ts`.
 *
 * The unit of editing is the grapheme cluster (`Intl.Segmenter`): a flag,
 * `e` + U+0301, a ZWJ family emoji or a Hangul jamo syllable is one
 * character to the arrows, Backspace and Delete.
 *
 * Keys, as readline binds them:
 *
 * | Key | Bytes | Does |
 * | --- | --- | --- |
 * | text | UTF-8, split anywhere | inserts at the cursor (tab is kept, shown as a space) |
 * | Enter | `\r`, `\n`, `\r\n` | finishes the line (`line` event) |
 * | Backspace | `0x7f`, `0x08` | deletes the cluster before the cursor |
 * | Delete | `ESC [3~` | deletes the cluster under the cursor |
 * | Ctrl+D | `0x04` | Delete; on an empty line, end of input (`eof` event) |
 * | Left, Right | `ESC [D`, `ESC [C`, `ESC OD`, `ESC OC`, Ctrl+B, Ctrl+F | moves one cluster |
 * | Home | `ESC [H`, `ESC OH`, `ESC [1~`, `ESC [7~`, Ctrl+A | start of line |
 * | End | `ESC [F`, `ESC OF`, `ESC [4~`, `ESC [8~`, Ctrl+E | end of line |
 * | Up, Down | `ESC [A`, `ESC [B`, `ESC OA`, `ESC OB`, Ctrl+P, Ctrl+N | older, newer line of history |
 * | Ctrl+U, Ctrl+K | `0x15`, `0x0b` | deletes to the start, to the end |
 * | Ctrl+W | `0x17` | deletes the word before the cursor |
 * | Ctrl+C | `0x03` | `interrupt` event |
 *
 * Other control characters (C0 such as Ctrl+L, C1, the bidirectional
 * overrides, line separators) are ignored, never stored. Other escape
 * sequences (CSI and SS3 with their parameters, ESC + a character for
 * Alt+key, the bracketed-paste markers) are swallowed whole; a control key
 * breaking into one acts as itself, so Escape then Enter still finishes the
 * line. A line holds at most 65,536 UTF-16 code units (`maxLength`): the
 * rest of a runaway paste is dropped.
 *
 * History: the last 100 lines submitted (not blank ones, not an immediate
 * repeat). Lines changed while going through it stay changed until Enter;
 * going down past the newest line gives back the line being typed.
 *
 * Widths ({@linkcode displayWidth}): a cluster takes 2 columns if it is an
 * emoji presentation sequence (it starts with an RGI emoji or a regional
 * indicator pair, or with an emoji and holds VS16), else the East Asian
 * Width of its first visible code point (wide and fullwidth 2, the rest 1,
 * ambiguous narrow), plus 1 for each halfwidth sound mark it joins (`ｶﾞ`);
 * a cluster of only marks and invisible characters is 0 and is not drawn.
 *
 * {@linkcode LineEditor.render} draws a row at most `columns - 1` wide:
 * when the line is longer it shows a window that follows the cursor with
 * a quarter of the row of context on each side, `<` and `>` marking where
 * text is cut off, and scrolls by as little as it can.
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

import { eastAsianWidth, eastAsianWidthType } from "get-east-asian-width";

/**
 * What a keystroke may finish: a line (Enter), end of input (Ctrl+D on an
 * empty line) or an interrupt (Ctrl+C).
 *
 * @example
 * ```ts
 * import type { EditorEvent } from "./line_editor.ts";
 * const event: EditorEvent = { kind: "line", text: "hello" };
 * ```
 */
export type EditorEvent =
  | { kind: "line"; text: string }
  | { kind: "eof" }
  | { kind: "interrupt" };

/**
 * Clears the terminal row the cursor is on and returns to its start.
 *
 * @example
 * ```ts
 * import { CLEAR_LINE } from "./line_editor.ts";
 * const output = `${CLEAR_LINE}> `; // a bare prompt, drawn over the row
 * ```
 */
export const CLEAR_LINE = "\r\x1b[2K";

/**
 * Options of {@linkcode LineEditor}.
 *
 * @example
 * ```ts
 * import { LineEditor, type LineEditorOptions } from "./line_editor.ts";
 * const options: LineEditorOptions = { historySize: 500 };
 * const editor = new LineEditor("> ", options);
 * ```
 */
export interface LineEditorOptions {
  /** How many submitted lines Up goes back through (default 100; 0: none). */
  historySize?: number;
  /**
   * The most UTF-16 code units a line holds (default 65,536): text typed
   * past it is dropped, so that a runaway paste has a bound.
   */
  maxLength?: number;
}

const ESC = "\x1b";

/** An escape sequence longer than this is still swallowed, but not kept. */
const MAX_SEQUENCE = 32;

/** The prompt is cut (from its start) rather than leave less room than this. */
const MIN_TEXT_ROOM = 8;

/** The `<` and `>` markers need at least this much room. */
const MARKER_ROOM = 8;

const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });

/** Characters never stored: controls, line separators, bidi overrides. */
const UNTYPABLE = /[\p{Cc}\p{Zl}\p{Zp}\u202a-\u202e\u2066-\u2069]/u;

/** Code points that show nothing by themselves. */
const INVISIBLE = /^[\p{M}\p{Cc}\p{Cf}\p{Default_Ignorable_Code_Point}]+/u;

/** An emoji presentation sequence at the start of a cluster. */
const EMOJI = /^(?:\p{RGI_Emoji}|\p{Regional_Indicator}{2})/v;

/** A cluster that starts with an emoji, which VS16 then shows as one. */
const EMOJI_BASE = /^\p{Emoji}/u;

/** What a key does, once decoded. */
type Action =
  | "left"
  | "right"
  | "home"
  | "end"
  | "up"
  | "down"
  | "backspace"
  | "delete"
  | "killStart"
  | "killEnd"
  | "killWord";

/** Control keys that edit; Enter, Ctrl+C, Ctrl+D and ESC are handled apart. */
const CONTROL_KEYS = new Map<string, Action>([
  ["\x01", "home"], // Ctrl+A
  ["\x02", "left"], // Ctrl+B
  ["\x05", "end"], // Ctrl+E
  ["\x06", "right"], // Ctrl+F
  ["\x08", "backspace"], // Ctrl+H
  ["\x0b", "killEnd"], // Ctrl+K
  ["\x0e", "down"], // Ctrl+N
  ["\x10", "up"], // Ctrl+P
  ["\x15", "killStart"], // Ctrl+U
  ["\x17", "killWord"], // Ctrl+W
  ["\x7f", "backspace"],
]);

/** Escape sequences that edit, without their ESC. */
const SEQUENCES = new Map<string, Action>([
  ["[A", "up"],
  ["[B", "down"],
  ["[C", "right"],
  ["[D", "left"],
  ["[H", "home"],
  ["[F", "end"],
  ["OA", "up"],
  ["OB", "down"],
  ["OC", "right"],
  ["OD", "left"],
  ["OH", "home"],
  ["OF", "end"],
  ["[1~", "home"],
  ["[7~", "home"],
  ["[4~", "end"],
  ["[8~", "end"],
  ["[3~", "delete"],
]);

/** A grapheme cluster of the line, with its width in columns. */
interface Cell {
  text: string;
  width: number;
}

/** The part of the line shown: cells `start` to `end`, and the cut marks. */
interface View {
  start: number;
  end: number;
  left: boolean;
  right: boolean;
}

/** The columns one grapheme cluster takes (the rule in the module doc). */
function clusterWidth(cluster: string): number {
  if (cluster === "\t") return 1; // drawn as a space
  const visible = cluster.replace(INVISIBLE, "");
  const base = visible.codePointAt(0);
  if (base === undefined) return 0;
  if (
    EMOJI.test(visible) ||
    (visible.includes("\uFE0F") && EMOJI_BASE.test(visible))
  ) return 2;
  let width = eastAsianWidth(base);
  // Terminals give the halfwidth sound marks (ﾞ ﾟ) a column of their own.
  for (const char of visible.slice(base > 0xffff ? 2 : 1)) {
    if (eastAsianWidthType(char.codePointAt(0) ?? 0) === "halfwidth") width++;
  }
  return width;
}

/**
 * The columns `text` takes on a terminal, cluster by cluster, by the rule
 * in the module doc; a tab counts as one column (the editor draws it as a
 * space).
 *
 * @example
 * ```ts
 * import { displayWidth } from "./line_editor.ts";
 * displayWidth("中文"); // 4
 * displayWidth("e\u0301"); // 1
 * displayWidth("🇫🇷"); // 2
 * ```
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const { segment } of segmenter.segment(text)) {
    width += clusterWidth(segment);
  }
  return width;
}

function cellsOf(text: string): Cell[] {
  const cells: Cell[] = [];
  for (const { segment } of segmenter.segment(text)) {
    cells.push({ text: segment, width: clusterWidth(segment) });
  }
  return cells;
}

/** Whether a cluster boundary falls between `before` and `after`. */
function startsCluster(before: string, after: string): boolean {
  if (before === "") return true;
  const text = before + after;
  return segmenter.segment(text).containing(before.length)?.index ===
    before.length;
}

function isSpace(cell: Cell): boolean {
  return /^\s/u.test(cell.text);
}

/** What a cell draws: a tab as a space, an invisible cluster as nothing. */
function drawn(cell: Cell): string {
  if (cell.text === "\t") return " ";
  return cell.width === 0 ? "" : cell.text;
}

/** Checks that `value` is an integer of at least `min`, naming the option. */
function checkCount(name: string, value: number, min: number): number {
  if (!Number.isInteger(value) || value < min) {
    throw new RangeError(
      `LineEditor option ${name} must be an integer of at least ${min}, got ${value}.`,
    );
  }
  return value;
}

/**
 * The line being typed, its cursor and its history; turns keystrokes into
 * events and draws the prompt row.
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
  readonly #prompt: Cell[];
  readonly #historySize: number;
  readonly #maxLength: number;
  readonly #decoder = new TextDecoder();
  #cells: Cell[] = [];
  /** The cursor, as the index of the cell it is on (`length`: at the end). */
  #cursor = 0;
  /** The line's length in UTF-16 code units, held under `maxLength`. */
  #length = 0;
  /** The escape sequence being read, without its ESC; null outside one. */
  #escape: string | null = null;
  /** The last key was a `\r`: a `\n` right after it is the same Enter. */
  #afterCR = false;
  readonly #history: string[] = [];
  /** Lines changed while going through the history; the draft at the end. */
  readonly #edits = new Map<number, string>();
  /** The history entry shown; `#history.length` is the line being typed. */
  #index = 0;
  /** The first cell the last render showed, so the window does not jump. */
  #start = 0;

  /**
   * Makes an editor that shows `prompt` (plain text) before the line.
   *
   * @example
   * ```ts
   * import { LineEditor } from "./line_editor.ts";
   * const editor = new LineEditor("> ", { historySize: 10 });
   * ```
   */
  constructor(prompt: string, options: LineEditorOptions = {}) {
    this.#prompt = cellsOf(prompt).filter((cell) => !UNTYPABLE.test(cell.text));
    this.#historySize = checkCount(
      "historySize",
      options.historySize ?? 100,
      0,
    );
    this.#maxLength = checkCount("maxLength", options.maxLength ?? 65_536, 1);
  }

  /**
   * The text typed so far on this line.
   *
   * @example
   * ```ts
   * import { LineEditor } from "./line_editor.ts";
   * const editor = new LineEditor("> ");
   * editor.feed(new TextEncoder().encode("hi"));
   * editor.text; // "hi"
   * ```
   */
  get text(): string {
    return this.#textOf(0, this.#cells.length);
  }

  /**
   * The cursor, as an offset in {@linkcode LineEditor.text} (UTF-16 code
   * units, always between two grapheme clusters).
   *
   * @example
   * ```ts
   * import { LineEditor } from "./line_editor.ts";
   * const editor = new LineEditor("> ");
   * editor.feed(new TextEncoder().encode("🇫🇷x\x1b[D"));
   * editor.cursor; // 4: after the flag, before the x
   * ```
   */
  get cursor(): number {
    return this.#textOf(0, this.#cursor).length;
  }

  /**
   * Feeds keystroke bytes, cut anywhere (inside a character or an escape
   * sequence); returns the events they complete, in order.
   *
   * @example
   * ```ts
   * import { LineEditor } from "./line_editor.ts";
   * const editor = new LineEditor("> ");
   * editor.feed(new TextEncoder().encode("one\rtwo\r\x04"));
   * // [{ kind: "line", text: "one" }, { kind: "line", text: "two" }, { kind: "eof" }]
   * ```
   */
  feed(bytes: Uint8Array): EditorEvent[] {
    const events: EditorEvent[] = [];
    let typed = "";
    for (const char of this.#decoder.decode(bytes, { stream: true })) {
      if (this.#escape !== null && this.#breaksIn(char)) this.#escape = null;
      if (this.#escape !== null) {
        this.#sequence(char);
        continue;
      }
      if (char === "\t" || !UNTYPABLE.test(char)) {
        typed += char;
        continue;
      }
      if (typed !== "") this.#type(typed);
      typed = "";
      const event = this.#key(char);
      if (event) events.push(event);
    }
    if (typed !== "") this.#type(typed);
    return events;
  }

  /**
   * The prompt row as terminal output: clears the row, draws the prompt and
   * the window of the line around the cursor, at most `columns - 1` columns
   * in all (so it never wraps), then puts the terminal's cursor on the
   * editor's.
   *
   * @example
   * ```ts
   * import { CLEAR_LINE, LineEditor } from "./line_editor.ts";
   * const editor = new LineEditor("> ");
   * editor.feed(new TextEncoder().encode("abc\x1b[D"));
   * editor.render(80) === `${CLEAR_LINE}> abc\r\x1b[4C`; // true
   * ```
   */
  render(columns = 80): string {
    const usable = Number.isFinite(columns)
      ? Math.max(Math.floor(columns) - 1, 0)
      : 79;
    const prompt = this.#fitPrompt(usable);
    const room = usable - prompt.width;
    const { start, end, left, right } = this.#view(room);
    let row = CLEAR_LINE + prompt.text + (left ? "<" : "");
    let column = prompt.width + (left ? 1 : 0);
    let cursorColumn = column;
    for (let i = start; i < end; i++) {
      if (i === this.#cursor) cursorColumn = column;
      row += drawn(this.#cells[i]);
      column += this.#cells[i].width;
    }
    if (this.#cursor >= end) cursorColumn = column;
    if (right) {
      row += " ".repeat(Math.max(usable - 1 - column, 0)) + ">";
      column = Math.max(usable, column + 1);
    }
    if (cursorColumn === column) return row;
    return `${row}\r${cursorColumn > 0 ? `\x1b[${cursorColumn}C` : ""}`;
  }

  #key(char: string): EditorEvent | undefined {
    const afterCR = this.#afterCR;
    this.#afterCR = false;
    switch (char) {
      case "\n":
        return afterCR ? undefined : this.#enter();
      case "\r":
        this.#afterCR = true;
        return this.#enter();
      case "\x03": // Ctrl+C
        return { kind: "interrupt" };
      case "\x04": // Ctrl+D
        if (this.#cells.length === 0) return { kind: "eof" };
        this.#act("delete");
        return undefined;
      case ESC:
        this.#escape = "";
        return undefined;
    }
    const action = CONTROL_KEYS.get(char);
    if (action) this.#act(action);
    return undefined;
  }

  /**
   * Whether `char` cannot go on the escape sequence being read: a control
   * key (it acts as itself), or a non-ASCII character after ESC [ or ESC O
   * (it is typed).
   */
  #breaksIn(char: string): boolean {
    const code = char.codePointAt(0) ?? 0;
    return code < 0x20 || code === 0x7f || (this.#escape !== "" && code > 0x7e);
  }

  /** Reads one more character of an escape sequence (ECMA-48 CSI or SS3). */
  #sequence(char: string): void {
    const sequence = this.#escape ?? "";
    if (sequence === "") {
      // ESC [ and ESC O open a sequence; ESC + anything else is Alt+key.
      this.#escape = char === "[" || char === "O" ? char : null;
      return;
    }
    const code = char.codePointAt(0) ?? 0;
    const next = sequence.length < MAX_SEQUENCE ? sequence + char : sequence;
    // Parameters and intermediates (0x20-0x3f) go on until a final byte;
    // the Linux console's F1-F5 are ESC [ [ A to E.
    if (code < 0x40 || (sequence === "[" && char === "[")) {
      this.#escape = next;
      return;
    }
    this.#escape = null;
    const action = SEQUENCES.get(next);
    if (action) this.#act(action);
  }

  #act(action: Action): void {
    const cursor = this.#cursor;
    const length = this.#cells.length;
    switch (action) {
      case "left":
        this.#cursor = Math.max(cursor - 1, 0);
        return;
      case "right":
        this.#cursor = Math.min(cursor + 1, length);
        return;
      case "home":
        this.#cursor = 0;
        return;
      case "end":
        this.#cursor = length;
        return;
      case "backspace":
        if (cursor > 0) this.#splice(cursor - 1, cursor, "");
        return;
      case "delete":
        if (cursor < length) this.#splice(cursor, cursor + 1, "");
        return;
      case "killStart":
        this.#splice(0, cursor, "");
        return;
      case "killEnd":
        this.#splice(cursor, length, "");
        return;
      case "killWord":
        this.#splice(this.#wordStart(), cursor, "");
        return;
      case "up":
        this.#recall(this.#index - 1);
        return;
      case "down":
        this.#recall(this.#index + 1);
        return;
    }
  }

  /**
   * Inserts typed text at the cursor, as much as `maxLength` leaves room
   * for. It goes in as if typed one code point at a time, so that how the
   * bytes were cut into feeds never matters: inside the line, a character
   * that joins the cluster after the cursor (a mark, a jamo) moves the
   * cursor past that cluster, and what follows goes after it.
   */
  #type(text: string): void {
    this.#afterCR = false;
    const room = this.#maxLength - this.#length;
    if (text.length > room) {
      const end = /[\ud800-\udbff]/.test(text[room - 1] ?? "")
        ? room - 1
        : room;
      text = text.slice(0, Math.max(end, 0));
    }
    if (this.#cursor === this.#cells.length) {
      // At the end nothing follows to join: all at once is the same.
      if (text !== "") this.#splice(this.#cursor, this.#cursor, text);
      return;
    }
    for (const char of text) this.#splice(this.#cursor, this.#cursor, char);
  }

  /**
   * Replaces cells `from` to `to` with `insert` and puts the cursor after
   * it (on the next cluster boundary). Clusters are found again from the
   * cell before the edit (a mark, a regional indicator or a jamo may join
   * it), cell by cell, until a boundary falls where one fell before: from
   * there on nothing changes.
   */
  #splice(from: number, to: number, insert: string): void {
    if (from === to && insert === "") return;
    const cells = this.#cells;
    const redo = Math.max(from - 1, 0);
    const head = this.#textOf(redo, from) + insert;
    this.#length += insert.length - this.#textOf(from, to).length;
    let region = head;
    let next = to;
    while (next < cells.length && !startsCluster(region, cells[next].text)) {
      region += cells[next++].text;
    }
    const found = cellsOf(region);
    let cursor = redo;
    for (let at = 0; at < head.length; cursor++) {
      at += found[cursor - redo].text.length;
    }
    if (found.length < 1024) cells.splice(redo, next - redo, ...found);
    else this.#cells = cells.slice(0, redo).concat(found, cells.slice(next));
    this.#cursor = cursor;
  }

  #textOf(from: number, to: number): string {
    let text = "";
    for (let i = from; i < to; i++) text += this.#cells[i].text;
    return text;
  }

  /** Where Ctrl+W deletes from: back over spaces, then over a word. */
  #wordStart(): number {
    let i = this.#cursor;
    while (i > 0 && isSpace(this.#cells[i - 1])) i--;
    while (i > 0 && !isSpace(this.#cells[i - 1])) i--;
    return i;
  }

  #enter(): EditorEvent {
    const text = this.text;
    if (
      this.#historySize > 0 && text.trim() !== "" &&
      text !== this.#history.at(-1)
    ) {
      this.#history.push(text);
      if (this.#history.length > this.#historySize) this.#history.shift();
    }
    this.#edits.clear();
    this.#index = this.#history.length;
    this.#load("");
    return { kind: "line", text };
  }

  /** Shows history entry `index`, keeping the line left as it was edited. */
  #recall(index: number): void {
    if (index < 0 || index > this.#history.length) return;
    this.#edits.set(this.#index, this.text);
    this.#index = index;
    this.#load(this.#edits.get(index) ?? this.#history[index]);
  }

  #load(text: string): void {
    this.#cells = cellsOf(text);
    this.#cursor = this.#cells.length;
    this.#length = text.length;
    this.#start = 0;
  }

  /** The prompt, cut from its start if it would leave the line too little room. */
  #fitPrompt(usable: number): { text: string; width: number } {
    const budget = Math.max(usable - MIN_TEXT_ROOM, 0);
    let width = 0;
    let start = this.#prompt.length;
    while (start > 0 && width + this.#prompt[start - 1].width <= budget) {
      width += this.#prompt[--start].width;
    }
    return { text: this.#prompt.slice(start).map(drawn).join(""), width };
  }

  /**
   * Which cells to show in `room` columns: all of them if they fit, else a
   * window holding the cursor with `margin` columns of context on the sides
   * where text is cut, moved from the last one as little as that needs.
   */
  #view(room: number): View {
    const cells = this.#cells;
    const length = cells.length;
    const cursor = this.#cursor;
    const marker = room >= MARKER_ROOM ? 1 : 0;
    const margin = Math.max(
      Math.min(Math.floor(room / 4), Math.floor((room - 6) / 2)),
      0,
    );
    let start = Math.min(this.#start, cursor);
    if (this.#width(0, length, room) <= room) start = 0;
    // Context on the left.
    if (start > 0 && this.#width(start, cursor, margin) < margin) {
      start = cursor;
      for (let seen = 0; start > 0 && seen < margin;) {
        seen += cells[--start].width;
      }
    }
    // The cursor's cell, and context on the right.
    let end = cursor;
    if (cursor < length) {
      end = cursor + 1;
      for (let seen = 0; end < length && seen < margin;) {
        seen += cells[end++].width;
      }
    }
    let view = this.#window(start, room, marker);
    if (view.end < end) {
      const need = cursor === length ? 1 : this.#width(cursor, end);
      const budget = room - marker - (end < length ? marker : 0) - need;
      start = this.#backWithin(cursor, budget);
      view = this.#window(start, room, marker);
    }
    // No blank room at the end while text is cut on the left.
    if (view.end === length && start > 0) {
      start = Math.min(start, this.#backWithin(length, room - marker));
      view = this.#window(start, room, marker);
    }
    const visible = start <= cursor &&
      (cursor < view.end || (cursor === length && view.end === length));
    if (!visible) view = this.#window(cursor, room, marker);
    this.#start = view.start;
    return view;
  }

  /** The cells shown from `start` in `room` columns, with the cut marks. */
  #window(start: number, room: number, marker: number): View {
    const cells = this.#cells;
    const left = start > 0 ? marker : 0;
    let used = left;
    let end = start;
    while (end < cells.length && used + cells[end].width <= room) {
      used += cells[end++].width;
    }
    const right = end < cells.length && marker === 1;
    // Leave a column for the `>`.
    while (right && end > start && used + 1 > room) used -= cells[--end].width;
    return { start, end, left: left === 1, right };
  }

  /** The first cell such that the cells from it to `to` fit in `budget` columns. */
  #backWithin(to: number, budget: number): number {
    let start = to;
    for (
      let used = 0;
      start > 0 && used + this.#cells[start - 1].width <= budget;
    ) {
      used += this.#cells[--start].width;
    }
    return start;
  }

  /** The columns of `cells` from `from` to `to`, counting no further than past `limit`. */
  #width(from: number, to: number, limit = Infinity): number {
    let width = 0;
    for (let i = from; i < to && width <= limit; i++) {
      width += this.#cells[i].width;
    }
    return width;
  }
}
