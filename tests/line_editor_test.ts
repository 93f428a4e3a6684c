import { assertEquals } from "./_assert.ts";
import { CLEAR_LINE, LineEditor } from "../lib/line_editor.ts";

const keys = (s: string): Uint8Array => new TextEncoder().encode(s);

Deno.test("LineEditor: Enter finishes the line typed", () => {
  const editor = new LineEditor("> ");
  assertEquals(editor.feed(keys("hel")), []);
  assertEquals(editor.text, "hel");
  assertEquals(editor.feed(keys("lo\r")), [{ kind: "line", text: "hello" }]);
  assertEquals(editor.text, "");
});

Deno.test("LineEditor: a paste of several lines gives each", () => {
  assertEquals(new LineEditor("").feed(keys("a\rb\n")), [
    { kind: "line", text: "a" },
    { kind: "line", text: "b" },
  ]);
});

Deno.test("LineEditor: Backspace removes one character, even a multi-byte one", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("né"));
  editor.feed(keys("\x7f"));
  assertEquals(editor.text, "n");
});

Deno.test("LineEditor: UTF-8 split across reads is put together", () => {
  const editor = new LineEditor("> ");
  const bytes = keys("é");
  editor.feed(bytes.subarray(0, 1));
  editor.feed(bytes.subarray(1));
  assertEquals(editor.text, "é");
});

Deno.test("LineEditor: Ctrl+U clears, Ctrl+W deletes a word", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("one two  "));
  editor.feed(keys("\x17"));
  assertEquals(editor.text, "one ");
  editor.feed(keys("\x15"));
  assertEquals(editor.text, "");
});

Deno.test("LineEditor: Ctrl+D ends input only on an empty line; Ctrl+C interrupts", () => {
  const editor = new LineEditor("> ");
  assertEquals(editor.feed(keys("x\x04")), []);
  editor.feed(keys("\x15"));
  assertEquals(editor.feed(keys("\x04")), [{ kind: "eof" }]);
  assertEquals(editor.feed(keys("\x03")), [{ kind: "interrupt" }]);
});

Deno.test("LineEditor: arrow keys and other escape sequences are ignored", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("a\x1b[A\x1b[1;5Cb\x1bOPc\x01"));
  assertEquals(editor.text, "abc");
});

Deno.test("LineEditor: render clears the row and shows the end of a long line", () => {
  const editor = new LineEditor("> ");
  editor.feed(keys("abcdefghij"));
  assertEquals(editor.render(80), `${CLEAR_LINE}> abcdefghij`);
  assertEquals(editor.render(8), `${CLEAR_LINE}> fghij`);
});
