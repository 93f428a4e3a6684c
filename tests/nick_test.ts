import { assert, assertEquals } from "./_assert.ts";
import { guestName, nameKey, nickProblem } from "../lib/nick.ts";

Deno.test("nickProblem: the rules on their own", () => {
  assertEquals(nickProblem("alice"), null);
  assertEquals(nickProblem("é".repeat(32)), null);
  assert(nickProblem("*admin"));
  assert(nickProblem("a\u202eb"));
});

Deno.test("nickProblem: 1 to 32 characters, counted as code points", () => {
  assertEquals(nickProblem(""), "give one, e.g. /nick alice");
  assertEquals(nickProblem("a".repeat(33)), "33 characters; 32 at most");
  assertEquals(nickProblem("中".repeat(32)), null);
});

Deno.test("nickProblem: invisible and format characters are refused", () => {
  for (
    const sneaky of [
      "al\u200bice", // zero-width space
      "al\u200cice", // zero-width non-joiner
      "\u3164", // Hangul filler
      "a\u2800", // braille blank
      "a\u200e", // left-to-right mark
      "a\u200f", // right-to-left mark
      "a\u061c", // Arabic letter mark
      "a\u{e0041}", // a tag character
      "a\ufeff", // zero-width no-break space
      "a\u00ad", // soft hyphen
      "a b", // a space
      "a\u00a0b", // a no-break space
      "a\u3000b", // an ideographic space
      "a\tb",
      "a\x1b[31m",
      "a\ufffd", // invalid UTF-8, as decoded
    ]
  ) {
    assertEquals(
      nickProblem(sneaky),
      "no spaces, invisible or format characters",
      JSON.stringify(sneaky),
    );
  }
});

Deno.test("nickProblem: stacks of combining marks are refused, one accent is fine", () => {
  assertEquals(nickProblem("e\u0301lodie"), null);
  assertEquals(
    nickProblem("z\u0301\u0302\u0303"),
    "no stacks of combining marks",
  );
  assertEquals(nickProblem("\u0301a"), "no stacks of combining marks");
});

Deno.test("nickProblem: guest-N names belong to the server, in any case or width", () => {
  for (const name of ["guest-5", "GUEST-5", "ｇｕｅｓｔ-５"]) {
    assertEquals(nickProblem(name), "guest-N names are given by the server");
  }
  assertEquals(nickProblem("guest-five"), null);
  assertEquals(
    nickProblem(guestName(12)),
    "guest-N names are given by the server",
  );
});

Deno.test("nameKey: case, width and accents do not make a different name", () => {
  const alice = nameKey("alice");
  for (const same of ["ALICE", "ALİCE", "Ａｌｉｃｅ", "álice", "a\u0301lice"]) {
    assertEquals(nameKey(same), alice, same);
  }
  assertEquals(nameKey("Straße"), nameKey("STRASSE"));
  assert(nameKey("alice2") !== alice);
});
