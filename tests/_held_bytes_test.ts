import { assert, assertEquals } from "./_assert.ts";
import { HeldBytes } from "../lib/_held_bytes.ts";

function bytes(length: number, from = 0): Uint8Array {
  return Uint8Array.from({ length }, (_, i) => (from + i) % 251);
}

Deno.test("HeldBytes: joins the pieces in order, with the tail", () => {
  const held = new HeldBytes();
  const sizes = [1, 300, 7, 5000, 2, 70_000, 3];
  let offset = 0;
  for (const size of sizes) {
    held.append(bytes(size, offset));
    offset += size;
  }
  assertEquals(held.length, offset);
  assertEquals(held.last(), (offset - 1) % 251);
  const whole = held.take(bytes(10, offset));
  assertEquals(whole, bytes(offset + 10));
  assertEquals(held.length, 0);
  assertEquals(held.capacity, 0);
});

Deno.test("HeldBytes: a line's start and its end need no new buffer", () => {
  const held = new HeldBytes();
  held.append(bytes(10));
  const whole = held.take(bytes(20, 10));
  assertEquals(whole, bytes(30));
  assertEquals(whole.buffer.byteLength, 256);
});

Deno.test("HeldBytes: an unfinished message costs its bytes plus at most 4 KiB", () => {
  // The reads of a connection whose buffer grows by 4 up to 64 KiB.
  const held = new HeldBytes();
  for (const size of [512, 2048, 8192, 32768, 21480]) held.append(bytes(size));
  assertEquals(held.length, 65_000);
  assert(held.capacity <= 65_000 + 4096, `capacity ${held.capacity}`);
  // A peer trickling one byte at a time.
  const trickled = new HeldBytes();
  for (let i = 0; i < 20_000; i++) trickled.append(bytes(1, i));
  assert(trickled.capacity <= 20_000 + 4096, `capacity ${trickled.capacity}`);
  assertEquals(trickled.take(), bytes(20_000));
});
