import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { cutAt } from "./_helpers.ts";
import {
  CLEAR_LINE,
  displayWidth,
  type EditorEvent,
  LineEditor,
} from "../lib/line_editor.ts";

const keys = (s: string): Uint8Array => new TextEncoder().encode(s);
const segmenter = new Intl.Segmenter(undefined, { granularity: "grapheme" });
const clusters = (s: string): string[] =>
  [...segmenter.segment(s)].map((x) => x.segment);

const LEFT = "\x1b[D";
const RIGHT = "\x1b[C";
const UP = "\x1b[A";
const DOWN = "\x1b[B";
const HOME = "\x1b[H";
const END = "\x1b[F";
const DELETE = "\x1b[3~";

/** An editor that has been fed `typed`. */
function editorWith(typed: string, prompt = "> "): LineEditor {
  const editor = new LineEditor(prompt);
  editor.feed(keys(typed));
  return editor;
}

// ---------------------------------------------------------------------------
// Reference widths, kept apart from the editor's rule: the widest code point
// of a cluster, from a table of the characters these tests type; a cluster
// of zero-width code points alone is 0, a regional indicator pair 2.

function codePointWidth(code: number): number {
  if (code === 0x09) return 1; // the editor draws a tab as a space
  if (code >= 0x20 && code <= 0x7e) return 1;
  if (code === 0xe9) return 1; // é
  if (code >= 0x300 && code <= 0x36f) return 0; // combining marks
  if (code === 0x200d || code === 0x20e3) return 0; // ZWJ, keycap
  if (code === 0xfe0f) return 2; // VS16: emoji presentation
  if (code >= 0x1100 && code <= 0x115f) return 2; // Hangul leading jamo
  if (code >= 0x1160 && code <= 0x11ff) return 1; // vowel, trailing jamo
  if (code >= 0x4e00 && code <= 0x9fff) return 2; // CJK
  if (code >= 0xac00 && code <= 0xd7a3) return 2; // Hangul syllables
  if (code === 0x2764) return 1; // ❤ (text presentation)
  if (code >= 0x1f1e6 && code <= 0x1f1ff) return 1; // a regional indicator
  if (code >= 0x1f300 && code <= 0x1faff) return 2; // emoji
  throw new Error(`no reference width for U+${code.toString(16)}`);
}

function referenceWidth(text: string): number {
  let width = 0;
  for (const cluster of clusters(text)) {
    const codes = [...cluster].map((c) => c.codePointAt(0) ?? 0);
    const regional = codes.filter((c) => c >= 0x1f1e6 && c <= 0x1f1ff);
    if (regional.length === 2) width += 2;
    else width += Math.max(...codes.map(codePointWidth));
  }
  return width;
}

/** The text as drawn: a tab as a space, clusters of no width left out. */
function drawn(text: string): string {
  return clusters(text)
    .map((c) => c === "\t" ? " " : referenceWidth(c) === 0 ? "" : c)
    .join("");
}

/** A render() output taken apart: the visible row, and the cursor's column. */
function parseRow(output: string): { row: string; column: number } {
  const match =
    // deno-lint-ignore no-control-regex -- taking escape sequences apart is the point
    /^\r\x1b\[2K([^\x00-\x1f\x7f-\x9f]*)(\r(?:\x1b\[([1-9]\d*)C)?)?$/su.exec(
      output,
    );
  assert(match, `unexpected render output ${JSON.stringify(output)}`);
  const row = match[1];
  const column = match[2] === undefined
    ? referenceWidth(row)
    : Number(match[3] ?? "0");
  return { row, column };
}

/** Splits `row` at `column`, which must fall between two clusters. */
function splitAt(row: string, column: number): [string, string] {
  let width = 0;
  let offset = 0;
  for (const cluster of clusters(row)) {
    if (width >= column) break;
    width += referenceWidth(cluster);
    offset += cluster.length;
  }
  assertEquals(width, column, `column ${column} splits a cluster of ${row}`);
  return [row.slice(0, offset), row.slice(offset)];
}

/**
 * Checks a render of `editor` at `columns` against the text and cursor it
 * should show: never wider than `columns - 1`, no control character, and
 * (where the prompt and the cut marks fit) the text before and after the
 * terminal's cursor is the text before and after the editor's.
 */
function checkRender(editor: LineEditor, columns: number): void {
  const prompt = "> ";
  const { row, column } = parseRow(editor.render(columns));
  const usable = Math.max(columns - 1, 0);
  assert(referenceWidth(row) <= usable, `${row} is wider than ${usable}`);
  assert(column <= usable, `cursor column ${column} past ${usable}`);
  if (columns < 12) return; // the prompt is cut and there are no marks
  const [left, right] = splitAt(row, column);
  assert(left.startsWith(prompt), `${row} does not start with the prompt`);
  const before = drawn(editor.text.slice(0, editor.cursor));
  const after = drawn(editor.text.slice(editor.cursor));
  const shownBefore = left.slice(prompt.length);
  if (shownBefore.startsWith("<")) {
    assert(before.endsWith(shownBefore.slice(1)), `${row} left of cursor`);
  } else assertEquals(shownBefore, before);
  if (right.endsWith(">")) {
    const shown = right.slice(0, -1);
    assert(
      after.startsWith(shown) ||
        (shown.endsWith(" ") && after.startsWith(shown.slice(0, -1))),
      `${row} right of cursor`,
    );
  } else assertEquals(right, after);
  if (editor.cursor < editor.text.length) {
    const under = drawn(clusters(editor.text.slice(editor.cursor))[0]);
    assert(right.startsWith(under), `${row}: the cluster under the cursor`);
  }
}

// ---------------------------------------------------------------------------
// Enter and events

Deno.test("LineEditor: Enter finishes the line typed", () => {
  const editor = new LineEditor("> ");
  assertEquals(editor.feed(keys("hel")), []);
  assertEquals(editor.text, "hel");
  assertEquals(editor.feed(keys("lo\r")), [{ kind: "line", text: "hello" }]);
  assertEquals(editor.text, "");
});

Deno.test("LineEditor: a paste of several lines gives each", () => {
  assertEquals(new LineEditor("").feed(keys("a\rb\nc\r")), [
    { kind: "line", text: "a" },
    { kind: "line", text: "b" },
    { kind: "line", text: "c" },
  ]);
});

Deno.test("LineEditor: \\r\\n is one Enter, also split across feeds", () => {
  const editor = new LineEditor("> ");
  assertEquals(editor.feed(keys("a\r\nb\r")), [
    { kind: "line", text: "a" },
    { kind: "line", text: "b" },
  ]);
  assertEquals(editor.feed(keys("\nc\r\n")), [{ kind: "line", text: "c" }]);
});

Deno.test("LineEditor: \\r\\r and \\n\\n are two Enters", () => {
  assertEquals(new LineEditor("").feed(keys("a\r\rb\n\n")), [
    { kind: "line", text: "a" },
    { kind: "line", text: "" },
    { kind: "line", text: "b" },
    { kind: "line", text: "" },
  ]);
});

Deno.test("LineEditor: Enter submits the whole line wherever the cursor is", () => {
  const editor = editorWith(`hello${HOME}${RIGHT}`);
  assertEquals(editor.feed(keys("\r")), [{ kind: "line", text: "hello" }]);
  assertEquals(editor.cursor, 0);
});

Deno.test("LineEditor: events come out in order", () => {
  assertEquals(new LineEditor("").feed(keys("a\rb\r\x03\x04")), [
    { kind: "line", text: "a" },
    { kind: "line", text: "b" },
    { kind: "interrupt" },
    { kind: "eof" },
  ]);
});

Deno.test("LineEditor: Ctrl+C interrupts and leaves the line as it was", () => {
  const editor = editorWith("abc");
  assertEquals(editor.feed(keys("\x03")), [{ kind: "interrupt" }]);
  assertEquals(editor.text, "abc");
});

Deno.test("LineEditor: Ctrl+D on an empty line is end of input", () => {
  assertEquals(new LineEditor("> ").feed(keys("\x04")), [{ kind: "eof" }]);
});

Deno.test("LineEditor: Ctrl+D on a line deletes the cluster under the cursor", () => {
  const editor = editorWith(`a🇫🇷b${HOME}${RIGHT}`);
  assertEquals(editor.feed(keys("\x04")), []);
  assertEquals(editor.text, "ab");
  assertEquals(editor.feed(keys(`${END}\x04`)), []);
  assertEquals(editor.text, "ab");
});

// ---------------------------------------------------------------------------
// Grapheme clusters

Deno.test("LineEditor: Backspace removes one character, even a multi-byte one", () => {
  const editor = editorWith("né");
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "n");
  editor.feed(keys("\b"));
  assertEquals(editor.text, "");
});

Deno.test("LineEditor: Backspace deletes a whole flag, not half of it", () => {
  const editor = editorWith("ok🇫🇷");
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "ok");
});

Deno.test("LineEditor: Backspace deletes e + combining acute as one", () => {
  const editor = editorWith("cafe\u0301");
  assertEquals(editor.cursor, 5);
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "caf");
});

Deno.test("LineEditor: Backspace deletes a ZWJ family emoji as one", () => {
  const editor = editorWith("x👨‍👩‍👧");
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "x");
});

Deno.test("LineEditor: Backspace deletes a Hangul jamo syllable as one", () => {
  const editor = editorWith("x\u1112\u1161\u11ab");
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "x");
});

Deno.test("LineEditor: UTF-8 split across reads is put together", () => {
  const editor = new LineEditor("> ");
  const bytes = keys("é");
  editor.feed(bytes.subarray(0, 1));
  editor.feed(bytes.subarray(1));
  assertEquals(editor.text, "é");
});

Deno.test("LineEditor: a cluster fed byte by byte is still one cluster", () => {
  const editor = new LineEditor("> ");
  for (const byte of keys("🇫🇷e\u0301")) editor.feed(Uint8Array.of(byte));
  editor.feed(keys(LEFT));
  assertEquals(editor.cursor, 4);
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "e\u0301");
});

Deno.test("LineEditor: a combining mark typed after a letter joins it", () => {
  const editor = editorWith(`ex${LEFT}`);
  editor.feed(keys("\u0301"));
  assertEquals(editor.text, "e\u0301x");
  assertEquals(editor.cursor, 2);
  editor.feed(keys(LEFT));
  assertEquals(editor.cursor, 0);
});

// ---------------------------------------------------------------------------
// Moving

Deno.test("LineEditor: Left and Right move by clusters and text goes in at the cursor", () => {
  const editor = editorWith(`中🇫🇷e\u0301${LEFT}${LEFT}`);
  assertEquals(editor.cursor, 1);
  editor.feed(keys(`x${RIGHT}y`));
  assertEquals(editor.text, "中x🇫🇷ye\u0301");
});

Deno.test("LineEditor: every Left and Right sequence moves, and stops at the ends", () => {
  for (
    const [left, right] of [[LEFT, RIGHT], ["\x1bOD", "\x1bOC"], [
      "\x02",
      "\x06",
    ]]
  ) {
    const editor = editorWith("ab");
    editor.feed(keys(left));
    assertEquals(editor.cursor, 1, JSON.stringify(left));
    editor.feed(keys(left + left + left));
    assertEquals(editor.cursor, 0);
    editor.feed(keys(right));
    assertEquals(editor.cursor, 1, JSON.stringify(right));
    editor.feed(keys(right + right + right));
    assertEquals(editor.cursor, 2);
  }
});

Deno.test("LineEditor: every Home and End sequence moves to the start and the end", () => {
  const homes = [HOME, "\x1bOH", "\x1b[1~", "\x1b[7~", "\x01"];
  const ends = [END, "\x1bOF", "\x1b[4~", "\x1b[8~", "\x05"];
  for (const [i, home] of homes.entries()) {
    const editor = editorWith("héllo");
    editor.feed(keys(home));
    assertEquals(editor.cursor, 0, JSON.stringify(home));
    editor.feed(keys(ends[i]));
    assertEquals(editor.cursor, 5, JSON.stringify(ends[i]));
  }
});

// ---------------------------------------------------------------------------
// Deleting

Deno.test("LineEditor: Delete removes the cluster under the cursor", () => {
  const editor = editorWith(`a👍🏽b${HOME}${RIGHT}`);
  editor.feed(keys(DELETE));
  assertEquals(editor.text, "ab");
  assertEquals(editor.cursor, 1);
  editor.feed(keys(`${END}${DELETE}`));
  assertEquals(editor.text, "ab");
});

Deno.test("LineEditor: Ctrl+U deletes from the cursor to the start", () => {
  const editor = editorWith(`one two${LEFT}${LEFT}`);
  editor.feed(keys("\x15"));
  assertEquals(editor.text, "wo");
  assertEquals(editor.cursor, 0);
});

Deno.test("LineEditor: Ctrl+K deletes from the cursor to the end", () => {
  const editor = editorWith(`one two${LEFT}${LEFT}`);
  editor.feed(keys("\x0b"));
  assertEquals(editor.text, "one t");
  assertEquals(editor.cursor, 5);
});

Deno.test("LineEditor: Ctrl+W deletes the word before the cursor and the spaces after it", () => {
  const editor = editorWith("one two  ");
  editor.feed(keys("\x17"));
  assertEquals(editor.text, "one ");
  const middle = editorWith(`one 中文\tthree${HOME}${RIGHT.repeat(7)}`);
  middle.feed(keys("\x17"));
  assertEquals(middle.text, "one three");
  assertEquals(middle.cursor, 4);
});

// ---------------------------------------------------------------------------
// Control characters and escape sequences

Deno.test("LineEditor: other control characters are ignored, never stored", () => {
  const editor = editorWith("a\x07\x0c\x0f\x1c\u0085\u009bb\u202ec\u2028d");
  assertEquals(editor.text, "abcd");
});

Deno.test("LineEditor: tab is kept in the text and drawn as a space", () => {
  const editor = editorWith("a\tb");
  assertEquals(editor.text, "a\tb");
  assertEquals(editor.render(80), `${CLEAR_LINE}> a b`);
});

Deno.test("LineEditor: unknown escape sequences are swallowed whole", () => {
  const editor = editorWith(
    "a\x1b[1;5Cb\x1bOPc\x1b[2~d\x1b[?25le\x1b[ qf\x1b[[Ag\x1b[5;3~h",
  );
  assertEquals(editor.text, "abcdefgh");
  assertEquals(editor.cursor, 8);
});

Deno.test("LineEditor: Alt+key (ESC and one character) is swallowed", () => {
  assertEquals(editorWith("a\x1bxb\x1bé\x1b\x1bzc").text, "abc");
});

Deno.test("LineEditor: an escape sequence split across feeds is still swallowed", () => {
  const editor = editorWith("ab");
  for (const part of ["\x1b", "[", "1;", "5", "D", "\x1b", "[D"]) {
    editor.feed(keys(part));
  }
  assertEquals(editor.text, "ab");
  assertEquals(editor.cursor, 1);
});

Deno.test("LineEditor: bracketed paste markers go, the pasted lines stay", () => {
  const editor = new LineEditor("> ");
  assertEquals(editor.feed(keys("\x1b[200~one\ntwo\nthr")), [
    { kind: "line", text: "one" },
    { kind: "line", text: "two" },
  ]);
  editor.feed(keys("ee\x1b[201~!"));
  assertEquals(editor.text, "three!");
});

Deno.test("LineEditor: a control key inside an escape sequence acts (Escape then Enter)", () => {
  const editor = editorWith("hi\x1b");
  assertEquals(editor.feed(keys("\r")), [{ kind: "line", text: "hi" }]);
  assertEquals(editorWith("ab\x1b[1\x7f").text, "a");
});

Deno.test("LineEditor: a non-ASCII character ends an escape sequence and is typed", () => {
  assertEquals(editorWith("a\x1b[1é").text, "aé");
});

Deno.test("LineEditor: text typed in the line goes in as if key by key", () => {
  // "a" joins the lone mark after the cursor, so "b" goes after the mark,
  // whether "ab" came in one feed or two.
  const once = editorWith(`\u0301x${HOME}ab`);
  const twice = editorWith(`\u0301x${HOME}a`);
  twice.feed(keys("b"));
  assertEquals(once.text, "a\u0301bx");
  assertEquals(twice.text, once.text);
  assertEquals(once.cursor, 3);
});

// ---------------------------------------------------------------------------
// History

Deno.test("LineEditor: Up recalls older lines, Down comes back to the draft", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("first\rsecond\rdra"));
  editor.feed(keys(UP));
  assertEquals(editor.text, "second");
  assertEquals(editor.cursor, 6);
  editor.feed(keys(UP));
  assertEquals(editor.text, "first");
  editor.feed(keys(UP));
  assertEquals(editor.text, "first");
  editor.feed(keys(DOWN));
  assertEquals(editor.text, "second");
  editor.feed(keys(DOWN));
  assertEquals(editor.text, "dra");
  editor.feed(keys(DOWN));
  assertEquals(editor.text, "dra");
});

Deno.test("LineEditor: every Up and Down sequence goes through the history", () => {
  for (
    const [up, down] of [[UP, DOWN], ["\x1bOA", "\x1bOB"], ["\x10", "\x0e"]]
  ) {
    const editor = new LineEditor("> ");
    editor.feed(keys("old\rnew"));
    editor.feed(keys(up));
    assertEquals(editor.text, "old", JSON.stringify(up));
    editor.feed(keys(down));
    assertEquals(editor.text, "new", JSON.stringify(down));
  }
});

Deno.test("LineEditor: a recalled line can be edited and submitted", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("hello\r"));
  assertEquals(editor.feed(keys(`${UP}\x7fp!\r`)), [
    { kind: "line", text: "hellp!" },
  ]);
  editor.feed(keys(UP));
  assertEquals(editor.text, "hellp!");
  editor.feed(keys(UP));
  assertEquals(editor.text, "hello");
});

Deno.test("LineEditor: an edit to a recalled line survives going down and up again", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("a\rb\r"));
  editor.feed(keys(`${UP}${UP}x${DOWN}${UP}`));
  assertEquals(editor.text, "ax");
});

Deno.test("LineEditor: blank lines and an immediate repeat are not stored", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("one\rtwo\rtwo\r\r  \rone\r"));
  for (const expected of ["one", "two", "one", "one"]) {
    editor.feed(keys(UP));
    assertEquals(editor.text, expected);
  }
});

Deno.test("LineEditor: the history keeps the last 100 lines", () => {
  const editor = new LineEditor("> ");
  for (let i = 0; i < 150; i++) editor.feed(keys(`line ${i}\r`));
  editor.feed(keys(UP.repeat(200)));
  assertEquals(editor.text, "line 50");
  const small = new LineEditor("> ", { historySize: 2 });
  small.feed(keys(`a\rb\rc\r${UP.repeat(5)}`));
  assertEquals(small.text, "b");
});

Deno.test("LineEditor: options out of range are refused, naming the value", () => {
  assertThrows(
    () => new LineEditor("> ", { historySize: -1 }),
    RangeError,
    "historySize must be an integer of at least 0, got -1",
  );
  assertThrows(
    () => new LineEditor("> ", { maxLength: 0 }),
    RangeError,
    "got 0",
  );
});

Deno.test("LineEditor: text typed past maxLength is dropped", () => {
  const editor = new LineEditor("> ", { maxLength: 5 });
  editor.feed(keys("abc😀😀"));
  assertEquals(editor.text, "abc😀");
  editor.feed(keys(`\x7fxyz`));
  assertEquals(editor.text, "abcxy");
});

// ---------------------------------------------------------------------------
// Widths

Deno.test("displayWidth: wide 2, combining 0, emoji presentation 2, ambiguous 1", () => {
  const cases: [string, number][] = [
    ["abc", 3],
    ["中文", 4],
    ["ｶﾞ", 2],
    ["ｶ", 1],
    ["e\u0301", 1],
    ["\u0301", 0],
    ["\u200b", 0],
    ["🇫🇷", 2],
    ["🇫", 1],
    ["👨‍👩‍👧", 2],
    ["👍🏽", 2],
    ["1️⃣", 2],
    ["❤️", 2],
    ["❤", 1],
    ["❤\u0301\uFE0F", 2],
    ["\u1112\u1161\u11ab", 2],
    ["한", 2],
    ["é", 1],
    ["\t", 1],
  ];
  for (const [text, width] of cases) {
    assertEquals(displayWidth(text), width, JSON.stringify(text));
  }
});

// ---------------------------------------------------------------------------
// Rendering

Deno.test("LineEditor: render leaves the cursor at the end of a short line", () => {
  assertEquals(
    editorWith("abcdefghij").render(80),
    `${CLEAR_LINE}> abcdefghij`,
  );
});

Deno.test("LineEditor: render puts the terminal's cursor on the editor's", () => {
  const editor = editorWith(`a中b${LEFT}`);
  assertEquals(editor.render(80), `${CLEAR_LINE}> a中b\r\x1b[5C`);
  editor.feed(keys(HOME));
  assertEquals(editor.render(80), `${CLEAR_LINE}> a中b\r\x1b[2C`);
  assertEquals(editorWith(HOME, "").render(80), CLEAR_LINE);
  assertEquals(editorWith(`ab${HOME}`, "").render(80), `${CLEAR_LINE}ab\r`);
});

Deno.test("LineEditor: render shows the end of a long line behind a <", () => {
  assertEquals(editorWith("abcdefghij").render(12), `${CLEAR_LINE}> <cdefghij`);
});

for (const columns of [100, 20]) {
  Deno.test(`LineEditor: 70 中 at ${columns} columns fit in one row, cursor at the end`, () => {
    const editor = editorWith("中".repeat(70));
    const { row, column } = parseRow(editor.render(columns));
    assertEquals(referenceWidth(row), columns - 1);
    assertEquals(column, columns - 1);
    assertEquals(row, `> <${"中".repeat((columns - 4) / 2)}`);
    checkRender(editor, columns);
  });

  Deno.test(`LineEditor: 70 中 at ${columns} columns, cursor at the start`, () => {
    const editor = editorWith(`${"中".repeat(70)}${HOME}`);
    const { row, column } = parseRow(editor.render(columns));
    assert(referenceWidth(row) <= columns - 1);
    assertEquals(column, 2);
    assert(row.endsWith(">"));
    checkRender(editor, columns);
  });
}

Deno.test("LineEditor: a wide character that does not fit at the edge is not split", () => {
  const editor = editorWith(`a${"中".repeat(20)}${HOME}`);
  // 13 columns: "> " then 10 for the text and 1 for ">": a + 4 中 + a space.
  assertEquals(editor.render(14), `${CLEAR_LINE}> a中中中中 >\r\x1b[2C`);
});

Deno.test("LineEditor: the window follows the cursor with context on both sides", () => {
  const text = Array.from({ length: 200 }, (_, i) => String(i % 10)).join("");
  const editor = editorWith(`${text}${HOME}${RIGHT.repeat(100)}`);
  for (let i = 0; i <= 100; i++) editor.render(40); // as a terminal would
  const { row, column } = parseRow(editor.render(40));
  assertEquals(referenceWidth(row), 39);
  assert(row.startsWith("> <") && row.endsWith(">"), row);
  const [left, right] = splitAt(row, column);
  // room 37, so at least a quarter (9 columns) on each side of the cursor.
  assert(left.length - 3 >= 9 && right.length - 1 >= 10, row);
  assert(text.slice(0, 100).endsWith(left.slice(3)), row);
  assert(text.slice(100).startsWith(right.slice(0, -1)), row);
  checkRender(editor, 40);
});

Deno.test("LineEditor: the window scrolls only when the cursor nears its edge", () => {
  const text = "abcdefghijklmnopqrstuvwxyz".repeat(4);
  const editor = editorWith(`${text}${HOME}${RIGHT.repeat(50)}`);
  const first = parseRow(editor.render(40)).row;
  editor.feed(keys(LEFT.repeat(3)));
  const moved = parseRow(editor.render(40));
  assertEquals(moved.row, first);
  // Going right until the window has to move: it moves by one cluster.
  editor.feed(keys(RIGHT.repeat(30)));
  const before = parseRow(editor.render(40)).row;
  editor.feed(keys(RIGHT));
  const after = parseRow(editor.render(40)).row;
  assertEquals(after.slice(4, -2), before.slice(5, -1));
});

Deno.test("LineEditor: deleting at the end of a scrolled line fills the window again", () => {
  const editor = editorWith("x".repeat(100));
  editor.render(40);
  editor.feed(keys("\x7f".repeat(80)));
  assertEquals(editor.render(40), `${CLEAR_LINE}> ${"x".repeat(20)}`);
});

Deno.test("LineEditor: a prompt too wide for the terminal is cut from its start", () => {
  const editor = editorWith("hi", "alice@chat> ");
  assertEquals(editor.render(80), `${CLEAR_LINE}alice@chat> hi`);
  assertEquals(editor.render(12), `${CLEAR_LINE}t> hi`);
  assertEquals(editor.render(3), `${CLEAR_LINE}hi`);
  checkRender(editor, 1);
});

Deno.test("LineEditor: a lone combining mark takes no column and is not drawn", () => {
  const editor = editorWith("\u0301ab");
  assertEquals(editor.render(80), `${CLEAR_LINE}> ab`);
  editor.feed(keys(HOME));
  assertEquals(editor.render(80), `${CLEAR_LINE}> ab\r\x1b[2C`);
});

// ---------------------------------------------------------------------------
// Property: random keys against a model of the edits

/** The line as a plain string and an offset, edited by whole clusters. */
class Model {
  text = "";
  cursor = 0;
  events: EditorEvent[] = [];
  afterCR = false;

  #bounds(): number[] {
    const bounds = [...segmenter.segment(this.text)].map((s) => s.index);
    return [...bounds, this.text.length];
  }

  /** The first cluster boundary at or after `offset`. */
  #boundAfter(offset: number): number {
    return this.#bounds().find((b) => b >= offset) ?? this.text.length;
  }

  #remove(from: number, to: number): void {
    this.text = this.text.slice(0, from) + this.text.slice(to);
    this.cursor = this.#boundAfter(from);
  }

  #previous(): number {
    return this.#bounds().filter((b) => b < this.cursor).at(-1) ?? 0;
  }

  #next(): number {
    return this.#bounds().find((b) => b > this.cursor) ?? this.text.length;
  }

  apply(key: Key): void {
    const afterCR = this.afterCR;
    this.afterCR = key.name === "enter" && key.bytes === "\r";
    switch (key.name) {
      case "type":
        // One code point at a time, as typed.
        for (const char of key.bytes) {
          this.text = this.text.slice(0, this.cursor) + char +
            this.text.slice(this.cursor);
          this.cursor = this.#boundAfter(this.cursor + char.length);
        }
        return;
      case "enter":
        if (key.bytes === "\n" && afterCR) return;
        this.events.push({ kind: "line", text: this.text });
        this.text = "";
        this.cursor = 0;
        return;
      case "eof":
        if (this.text === "") this.events.push({ kind: "eof" });
        else if (this.cursor < this.text.length) {
          this.#remove(this.cursor, this.#next());
        }
        return;
      case "backspace":
        if (this.cursor > 0) this.#remove(this.#previous(), this.cursor);
        return;
      case "delete":
        if (this.cursor < this.text.length) {
          this.#remove(this.cursor, this.#next());
        }
        return;
      case "left":
        this.cursor = this.#previous();
        return;
      case "right":
        this.cursor = this.#next();
        return;
      case "home":
        this.cursor = 0;
        return;
      case "end":
        this.cursor = this.text.length;
        return;
      case "killStart":
        this.#remove(0, this.cursor);
        return;
      case "killEnd":
        this.#remove(this.cursor, this.text.length);
        return;
      case "killWord": {
        const starts = this.#bounds().filter((b) => b < this.cursor);
        let i = starts.length;
        const space = (j: number) => /^\s/u.test(this.text.slice(starts[j]));
        while (i > 0 && space(i - 1)) i--;
        while (i > 0 && !space(i - 1)) i--;
        this.#remove(starts[i] ?? this.cursor, this.cursor);
        return;
      }
      case "ignored":
        return;
    }
  }
}

interface Key {
  name:
    | "type"
    | "enter"
    | "eof"
    | "backspace"
    | "delete"
    | "left"
    | "right"
    | "home"
    | "end"
    | "killStart"
    | "killEnd"
    | "killWord"
    | "ignored";
  bytes: string;
}

const TOKENS = [
  "a",
  "b",
  "z",
  " ",
  "\t",
  "é",
  "中",
  "文",
  "한",
  "\u1112",
  "\u1161",
  "\u11ab",
  "🇫",
  "🇷",
  "🇫🇷",
  "👍",
  "👍🏽",
  "👨‍👩‍👧",
  "1️⃣",
  "❤️",
  "e\u0301",
  "\u0301",
  "\u0308",
];

const NAMED: [Key["name"], string[]][] = [
  ["enter", ["\r", "\n", "\r\n"]],
  ["eof", ["\x04"]],
  ["backspace", ["\x7f", "\b"]],
  ["delete", [DELETE]],
  ["left", [LEFT, "\x1bOD", "\x02"]],
  ["right", [RIGHT, "\x1bOC", "\x06"]],
  ["home", [HOME, "\x1bOH", "\x1b[1~", "\x1b[7~", "\x01"]],
  ["end", [END, "\x1bOF", "\x1b[4~", "\x1b[8~", "\x05"]],
  ["killStart", ["\x15"]],
  ["killEnd", ["\x0b"]],
  ["killWord", ["\x17"]],
  ["ignored", ["\x0c", "\x07", "\x1b[1;5C", "\x1bOP", "\x1b[200~", "\x1bx"]],
];

const key: fc.Arbitrary<Key> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.array(fc.constantFrom(...TOKENS), {
      minLength: 1,
      maxLength: 6,
    }).map((tokens): Key => ({ name: "type", bytes: tokens.join("") })),
  },
  {
    weight: 3,
    arbitrary: fc.constantFrom(...NAMED).chain(([name, variants]) =>
      fc.constantFrom(...variants).map((bytes): Key => ({ name, bytes }))
    ),
  },
);

Deno.test("property (fast-check): random keys edit like the model, and every render fits its row", () => {
  fc.assert(
    fc.property(
      fc.array(fc.tuple(key, fc.nat(), fc.integer({ min: 1, max: 100 })), {
        maxLength: 80,
      }),
      ([...steps]) => {
        const editor = new LineEditor("> ");
        const model = new Model();
        const events: EditorEvent[] = [];
        for (const [k, cut, columns] of steps) {
          for (const chunk of cutAt(keys(k.bytes), [cut])) {
            events.push(...editor.feed(chunk));
          }
          model.apply(k);
          assertEquals(editor.text, model.text);
          assertEquals(editor.cursor, model.cursor);
          assertEquals(events, model.events);
          checkRender(editor, columns);
        }
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("property (fast-check): keys fed in any chunks give the same line and events", () => {
  fc.assert(
    fc.property(
      fc.array(key, { maxLength: 60 }),
      fc.array(fc.nat(), { maxLength: 20 }),
      (steps, cuts) => {
        const model = new Model();
        for (const k of steps) model.apply(k);
        const editor = new LineEditor("> ");
        const events: EditorEvent[] = [];
        const bytes = keys(steps.map((k) => k.bytes).join(""));
        for (const chunk of cutAt(bytes, cuts)) {
          events.push(...editor.feed(chunk));
        }
        assertEquals(events, model.events);
        assertEquals(editor.text, model.text);
        assertEquals(editor.cursor, model.cursor);
      },
    ),
    { numRuns: 300 },
  );
});
