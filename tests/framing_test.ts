import fc from "fast-check";
import { assert, assertEquals, assertThrows } from "./_assert.ts";
import { cutAt } from "./_helpers.ts";
import { type Decoder, FramingError } from "../lib/decoder.ts";
import {
  encodeFrame,
  encodeFrames,
  encodeLine,
  utf8Length,
} from "../lib/encoders.ts";
import { FRAMINGS, otherFraming } from "../lib/framing.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";
import { LineDecoder } from "../lib/line_decoder.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const text = (messages: Uint8Array[]): string[] =>
  messages.map((m) => dec.decode(m));

/** A small seeded PRNG (mulberry32), so a failing case can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Splits `bytes` at random points into chunks of 1..max bytes. */
function chop(bytes: Uint8Array, rand: () => number, max = 17): Uint8Array[] {
  const chunks: Uint8Array[] = [];
  for (let at = 0; at < bytes.length;) {
    const size = 1 + Math.floor(rand() * max);
    chunks.push(bytes.slice(at, at + size));
    at += size;
  }
  return chunks;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length;
  }
  return all;
}

/** Feeds every chunk, copying each message out at once (views are short-lived). */
function decodeAll(decoder: Decoder, chunks: Uint8Array[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (const chunk of chunks) {
    for (const m of decoder.push(chunk)) out.push(m.slice());
  }
  const last = decoder.end();
  if (last) out.push(last);
  return out;
}

Deno.test("LineDecoder: splits at \\n and drops a \\r before it", () => {
  const decoder = new LineDecoder();
  assertEquals(text(decoder.push(enc.encode("a\nb\r\n\nc"))), ["a", "b", ""]);
  assertEquals(decoder.buffered, 1);
  assertEquals(text(decoder.push(enc.encode("d\n"))), ["cd"]);
  assertEquals(decoder.end(), null);
});

Deno.test("LineDecoder: a bare \\r inside a line is kept", () => {
  assertEquals(text(new LineDecoder().push(enc.encode("a\rb\n"))), ["a\rb"]);
});

Deno.test("LineDecoder: \\r\\n split across chunks still ends one line", () => {
  const decoder = new LineDecoder();
  assertEquals(decoder.push(enc.encode("abc\r")), []);
  assertEquals(text(decoder.push(enc.encode("\n"))), ["abc"]);
});

Deno.test("LineDecoder: keepEnds keeps the terminator", () => {
  const decoder = new LineDecoder({ keepEnds: true });
  assertEquals(text(decoder.push(enc.encode("a\r\nb\n"))), ["a\r\n", "b\n"]);
});

Deno.test("LineDecoder: end() returns a last line without \\n", () => {
  const decoder = new LineDecoder();
  decoder.push(enc.encode("tail"));
  assertEquals(dec.decode(decoder.end()!), "tail");
  assertEquals(decoder.end(), null);
});

Deno.test("LineDecoder: a line of exactly the maximum passes; one byte more is refused", () => {
  assertEquals(
    new LineDecoder({ maxLength: 4 }).push(enc.encode("abcd\r\n")).length,
    1,
  );
  assertThrows(
    () => new LineDecoder({ maxLength: 4 }).push(enc.encode("abcde\n")),
    FramingError,
    "maximum of 4",
  );
});

Deno.test("LineDecoder: an over-long line without newline is refused before it is buffered", () => {
  const decoder = new LineDecoder({ maxLength: 1024 });
  decoder.push(new Uint8Array(1000).fill(0x61));
  assertThrows(
    () => decoder.push(new Uint8Array(100).fill(0x61)),
    FramingError,
    "longer than the maximum",
  );
  assertEquals(decoder.buffered, 0);
});

Deno.test("LengthDecoder: decodes frames, empty ones and payloads holding \\n and NUL", () => {
  const decoder = new LengthDecoder();
  const wire = concat([
    encodeFrame("hi"),
    encodeFrame(""),
    encodeFrame("a\nb\0c"),
  ]);
  assertEquals(text(decoder.push(wire)), ["hi", "", "a\nb\0c"]);
});

Deno.test("LengthDecoder: a prefix over the maximum is refused at once, 0xFFFFFFFF included", () => {
  assertThrows(
    () => new LengthDecoder({ maxLength: 10 }).push(Uint8Array.of(0, 0, 0, 11)),
    FramingError,
    "11 bytes",
  );
  assertThrows(
    () => new LengthDecoder().push(Uint8Array.of(0xff, 0xff, 0xff, 0xff)),
    FramingError,
    "4294967295 bytes",
  );
});

Deno.test("LengthDecoder: a prefix split across chunks byte by byte", () => {
  const decoder = new LengthDecoder();
  const frame = encodeFrame("split");
  const out: string[] = [];
  for (const byte of frame) {
    out.push(...text(decoder.push(Uint8Array.of(byte))));
  }
  assertEquals(out, ["split"]);
});

Deno.test("LengthDecoder: a frame cut off at the end of the stream is reported", () => {
  const cutPayload = new LengthDecoder();
  cutPayload.push(encodeFrame("hello").subarray(0, 7));
  assertThrows(
    () => cutPayload.end(),
    FramingError,
    "got 3 of 5 payload bytes",
  );
  const cutPrefix = new LengthDecoder();
  cutPrefix.push(Uint8Array.of(0, 0));
  assertThrows(() => cutPrefix.end(), FramingError, "got 2 of 4 bytes");
});

for (const framing of Object.values(FRAMINGS)) {
  Deno.test(`${framing.name} framing: random messages under random chunking round-trip (500 cases)`, () => {
    const rand = random(framing.name.length);
    for (let round = 0; round < 500; round++) {
      const messages = Array.from(
        { length: 1 + Math.floor(rand() * 8) },
        () =>
          Array.from(
            { length: Math.floor(rand() * 40) },
            // line framing: any text but "\n" (and no "\r" last); length: anything
            () =>
              String.fromCodePoint(
                Math.floor(rand() * (rand() < 0.9 ? 0x80 : 0x2000)) || 0x20,
              ),
          ).join(""),
      )
        .map((m) =>
          framing.name === "line"
            ? m.replaceAll("\n", " ").replace(/\r$/, " ")
            : m
        );
      const wire = concat(messages.map((m) => framing.encode(m)));
      const decoded = text(
        decodeAll(framing.decoder(1 << 16), chop(wire, rand)),
      );
      assertEquals(decoded, messages, `round ${round}`);
    }
  });

  Deno.test(`${framing.name} framing: garbage never throws anything but FramingError`, () => {
    const rand = random(99);
    for (let round = 0; round < 300; round++) {
      const garbage = Uint8Array.from(
        { length: Math.floor(rand() * 300) },
        () => Math.floor(rand() * 256),
      );
      const decoder = framing.decoder(64);
      try {
        decodeAll(decoder, chop(garbage, rand));
      } catch (error) {
        if (!(error instanceof FramingError)) throw error;
      }
    }
  });
}

Deno.test("encodeFrame: big-endian length prefix (Python struct.pack('!I'))", () => {
  assertEquals([...encodeFrame("hi")], [0, 0, 0, 2, 104, 105]);
  assertEquals([...encodeFrame(new Uint8Array(258)).subarray(0, 4)], [
    0,
    0,
    1,
    2,
  ]);
});

Deno.test("encodeLine: text then \\n", () => {
  assertEquals(dec.decode(encodeLine("héllo")), "héllo\n");
});

// Property tests with fast-check: shrinking finds the smallest failing case.

Deno.test("property (fast-check): length framing, encode then decode under any chunking is the identity", () => {
  fc.assert(
    fc.property(
      fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (payloads, cuts) => {
        const wire = concat(payloads.map((p) => encodeFrame(p)));
        const decoded = decodeAll(
          new LengthDecoder({ maxLength: 300 }),
          cutAt(wire, cuts),
        );
        assertEquals(decoded, payloads);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property (fast-check): line framing, encode then decode under any chunking is the identity", () => {
  const line = fc.string({ unit: "grapheme", maxLength: 80 }).map((s) =>
    s.replaceAll("\n", " ").replace(/\r$/, "")
  );
  fc.assert(
    fc.property(
      fc.array(line, { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (lines, cuts) => {
        const wire = concat(lines.map((l) => encodeLine(l)));
        const decoded = text(decodeAll(new LineDecoder(), cutAt(wire, cuts)));
        assertEquals(decoded, lines);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property (fast-check): garbage never makes a decoder throw anything but FramingError", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 2000 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.constantFrom<"line" | "length">("line", "length"),
      (garbage, cuts, name) => {
        const decoder = FRAMINGS[name].decoder(100);
        try {
          decodeAll(decoder, cutAt(garbage, cuts));
        } catch (error) {
          if (!(error instanceof FramingError)) throw error;
        }
      },
    ),
    { numRuns: 1000 },
  );
});

Deno.test("property (fast-check): a decoder never holds more than its bound", () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 5000 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      (garbage, cuts) => {
        for (
          const decoder of [
            new LineDecoder({ maxLength: 64 }),
            new LengthDecoder({ maxLength: 64 }),
          ]
        ) {
          try {
            for (const chunk of cutAt(garbage, cuts)) {
              decoder.push(chunk);
              assert(
                decoder.buffered <= 64 + 4,
                `holds ${decoder.buffered} bytes`,
              );
            }
          } catch (error) {
            if (!(error instanceof FramingError)) throw error;
          }
        }
      },
    ),
    { numRuns: 500 },
  );
});

/** A call's bytes, or its FramingError's message (anything else is rethrown). */
function outcome(
  call: () => Uint8Array | null,
): { bytes: Uint8Array | null } | { error: string } {
  try {
    return { bytes: call() };
  } catch (error) {
    if (!(error instanceof FramingError)) throw error;
    return { error: error.message };
  }
}

Deno.test("runs: the complete bytes of a push, as they came, in one view", () => {
  const line = new LineDecoder({ runs: true });
  assertEquals(line.push(enc.encode("a\r\nb")), [enc.encode("a\r\n")]);
  assertEquals(line.push(enc.encode("c\nd\ne")), [enc.encode("bc\nd\n")]);
  assertEquals(line.push(enc.encode("f")), []);
  assertEquals(dec.decode(line.end()!), "ef");

  const length = new LengthDecoder({ runs: true });
  const wire = concat([
    encodeFrame("one"),
    encodeFrame(""),
    encodeFrame("three"),
  ]);
  const chunk = wire.subarray(0, 12);
  const [run] = length.push(chunk);
  assertEquals(run, wire.subarray(0, 11)); // "one" and "": whole frames
  assert(run.buffer === chunk.buffer, "a view, not a copy");
  assertEquals(length.push(wire.subarray(12)), [wire.subarray(11)]);
  assertEquals(length.end(), null);
});

Deno.test("runs: a line over the bound inside a run is still refused", () => {
  const decoder = new LineDecoder({ maxLength: 3, runs: true });
  assertEquals(decoder.push(enc.encode("abc\r\nab")), [enc.encode("abc\r\n")]);
  assertThrows(() => decoder.push(enc.encode("cd\nx\n")), FramingError);
  const frames = new LengthDecoder({ maxLength: 3, runs: true });
  assertThrows(
    () => frames.push(concat([encodeFrame("ok"), encodeFrame("long")])),
    FramingError,
    "frame of 4 bytes",
  );
});

Deno.test("property (fast-check): runs hand back the bytes messages do, chunk by chunk, and fail at the same chunk", () => {
  const CR = 0x0d, LF = 0x0a;
  const piece = fc.oneof(
    fc.uint8Array({ maxLength: 12 }),
    fc.array(fc.constantFrom(0x61, CR, LF, 0), { maxLength: 12 })
      .map((bytes) => Uint8Array.from(bytes)),
  );
  fc.assert(
    fc.property(
      fc.constantFrom<"line" | "length">("line", "length"),
      fc.array(fc.tuple(piece, fc.boolean()), { maxLength: 20 }),
      fc.array(fc.nat(), { maxLength: 40 }),
      fc.integer({ min: 0, max: 10 }),
      (name, pieces, cuts, bound) => {
        // length: mostly frames, some raw bytes; line: bytes as they are
        const wire = concat(
          pieces.map(([p, framed]) =>
            name === "length" && framed ? encodeFrame(p) : p
          ),
        );
        const messages = name === "line"
          ? new LineDecoder({ maxLength: bound, keepEnds: true })
          : new LengthDecoder({ maxLength: bound });
        const again = name === "line"
          ? (m: Uint8Array) => m
          : (m: Uint8Array) => encodeFrame(m);
        const runs = FRAMINGS[name].decoder(bound, { runs: true });
        for (const chunk of cutAt(wire, cuts)) {
          const want = outcome(() =>
            concat(messages.push(chunk).map((m) => again(m)))
          );
          const got = outcome(() => {
            const views = runs.push(chunk);
            assert(views.length <= 1, `${views.length} views`);
            return concat(views);
          });
          assertEquals(got, want);
          if ("error" in want) return;
          assertEquals(runs.buffered, messages.buffered);
        }
        assertEquals(outcome(() => runs.end()), outcome(() => messages.end()));
      },
    ),
    { numRuns: 3000 },
  );
});

Deno.test("property (fast-check): encodeFrames is encodeFrame of each text, joined", () => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ unit: "binary", maxLength: 40 }), { maxLength: 20 }),
      (texts) => {
        const frames = encodeFrames(texts);
        assertEquals(frames, concat(texts.map((t) => encodeFrame(t))));
        assertEquals(frames.buffer.byteLength, frames.length, "no spare room");
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("LengthDecoder: a prefix announcing 64 KiB holds what arrived, not what it announced", () => {
  const before = Deno.memoryUsage().external;
  const decoders = Array.from({ length: 2000 }, () => {
    const decoder = new LengthDecoder({ maxLength: 64 * 1024 });
    decoder.push(Uint8Array.of(0, 1, 0, 0, 0x41)); // 65,536 announced, 1 sent
    return decoder;
  });
  const grown = Deno.memoryUsage().external - before;
  assertEquals(decoders.every((d) => d.buffered === 5), true);
  // Allocated from the prefix, this would be 2,000 × 64 KiB = 125 MiB.
  assert(grown < 8 * 2 ** 20, `external memory grew ${grown} bytes`);
});

Deno.test("LengthDecoder: a frame arriving one byte per read is still one frame", () => {
  const decoder = new LengthDecoder();
  const frame = encodeFrame("x".repeat(3000));
  const got: Uint8Array[] = [];
  for (const byte of frame) got.push(...decoder.push(Uint8Array.of(byte)));
  assertEquals(text(got), ["x".repeat(3000)]);
  assertEquals(decoder.buffered, 0);
});

Deno.test("utf8Length: counts what TextEncoder would write, lone surrogates as U+FFFD", () => {
  for (
    const text of [
      "",
      "abc",
      "héllo",
      "中文",
      "🇫🇷 flag",
      "\ud800",
      "a\udc00b",
      "\ud83d",
    ]
  ) {
    assertEquals(utf8Length(text), new TextEncoder().encode(text).length, text);
  }
});

Deno.test("property (fast-check): utf8Length equals the encoded length of any string", () => {
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      assertEquals(utf8Length(text), new TextEncoder().encode(text).length);
    }),
  );
});

Deno.test("otherFraming: a NUL first is length framing, printable text is line framing", () => {
  assertEquals(otherFraming("line", encodeFrame("hi")), "length");
  assertEquals(otherFraming("line", enc.encode("hi\n")), null);
  assertEquals(otherFraming("length", enc.encode("hello\n")), "line");
  assertEquals(otherFraming("length", encodeFrame("hi")), null);
  assertEquals(otherFraming("length", new Uint8Array(0)), null);
});

/**
 * Reads `wire` as the read loop does: into the decoder's room while it has
 * one (a large unfinished message held in memory of its own), otherwise
 * into one reused buffer, `sizes` bytes at a time; every message is copied
 * out when it comes. Returns the messages and how many bytes went in place.
 */
function readInPlace(
  decoder: Decoder,
  wire: Uint8Array,
  sizes: number[],
): { messages: Uint8Array[]; inPlace: number } {
  const buffer = new Uint8Array(70_000);
  const messages: Uint8Array[] = [];
  let at = 0;
  let inPlace = 0;
  for (let read = 0; at < wire.length; read++) {
    const room = decoder.room();
    const into = room ?? buffer.subarray(0, sizes[read % sizes.length]);
    const n = Math.min(into.length, wire.length - at);
    into.set(wire.subarray(at, at + n));
    at += n;
    if (room) inPlace += n;
    for (const m of decoder.push(into.subarray(0, n))) messages.push(m.slice());
    buffer.fill(0xee); // what a reused read buffer would do to a stale view
  }
  const last = decoder.end();
  if (last) messages.push(last.slice());
  return { messages, inPlace };
}

/** `size` bytes of printable text, different for each `seed`. */
function filler(size: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: size }, (_, i) => 33 + (i * 7 + seed) % 90);
}

Deno.test("property (fast-check): large messages read in place decode as they came, in both framings, runs or not", () => {
  const max = 100_000;
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 0, max }), { maxLength: 6 }),
      fc.array(fc.integer({ min: 1, max: 70_000 }), {
        minLength: 1,
        maxLength: 8,
      }),
      fc.boolean(),
      (sizes, reads, runs) => {
        const payloads = sizes.map((size, i) => filler(size, i));
        const lines = concat(
          payloads.map((p) => concat([p, Uint8Array.of(0x0a)])),
        );
        const frames = concat(payloads.map((p) => encodeFrame(p)));
        const line = readInPlace(
          new LineDecoder({ maxLength: max, runs }),
          lines,
          reads,
        );
        const length = readInPlace(
          new LengthDecoder({ maxLength: max, runs }),
          frames,
          reads,
        );
        if (runs) {
          assertEquals(concat(line.messages), lines);
          assertEquals(concat(length.messages), frames);
        } else {
          assertEquals(line.messages, payloads);
          assertEquals(length.messages, payloads);
        }
      },
    ),
    { numRuns: 150 },
  );
});

Deno.test("decoders: a message held past 32 KiB is read in place, and clear() gives its memory back", () => {
  for (const decoder of [new LineDecoder(), new LengthDecoder()]) {
    const wire = decoder instanceof LineDecoder
      ? concat([filler(60_000, 1), enc.encode("\r\nnext\n")])
      : concat([encodeFrame(filler(60_000, 1)), encodeFrame("next")]);
    const { messages, inPlace } = readInPlace(decoder, wire, [
      512,
      2048,
      8192,
      32768,
    ]);
    assertEquals(messages, [filler(60_000, 1), enc.encode("next")]);
    // 43,520 bytes came through the buffer; the rest went straight in.
    assertEquals(inPlace, wire.length - 43_520);

    // 40,000 bytes of an unfinished message, then the connection ends.
    const unfinished = decoder instanceof LineDecoder
      ? filler(40_000, 2)
      : encodeFrame(filler(50_000, 2)).subarray(0, 40_000);
    assertEquals(decoder.push(unfinished), []);
    const room = decoder.room();
    assert(room !== null && room.length > 0, "a held large message has room");
    decoder.clear();
    assertEquals(decoder.buffered, 0);
    assertEquals(decoder.room(), null);
    assertEquals(room.length, 0); // its memory was handed back (resized to 0)
  }
});
