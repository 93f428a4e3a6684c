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

Deno.test("HeldBytes: past 32 KiB a message moves to memory of its own, read in place and handed over whole", () => {
  const held = new HeldBytes({ reserve: 100_000 });
  held.append(bytes(30_000));
  assertEquals(held.room(), null); // still in pieces
  held.append(bytes(10_000, 30_000)); // 40,000: moved
  const room = held.room()!;
  assertEquals(room.length, 60_000);
  room.set(bytes(5_000, 40_000));
  held.append(room.subarray(0, 5_000)); // read in place: nothing copied
  assertEquals(held.length, 45_000);
  assertEquals(held.capacity, 45_056); // the pages it touched
  assertEquals(held.last(), 44_999 % 251);
  const rest = held.room()!;
  rest.set(bytes(100, 45_000));
  const whole = held.take(rest.subarray(0, 100));
  assertEquals(whole, bytes(45_100));
  assertEquals(whole.buffer, room.buffer); // handed over, not copied
  assertEquals(room.length, 60_000); // and still whole: the caller's now
  assertEquals(held.room(), null);
  // Once the caller is done with it, its pages go back too.
  held.release();
  assertEquals(whole.length, 0);
});

Deno.test("HeldBytes: a large message dropped gives its pages back at once", () => {
  const held = new HeldBytes({ reserve: 100_000 });
  held.append(bytes(50_000));
  const room = held.room()!;
  held.clear();
  assertEquals(room.length, 0); // its memory resized to nothing
  assertEquals(held.length, 0);
  // Ended by a tail from elsewhere, it is copied out and its memory given back.
  held.append(bytes(50_000));
  const before = held.room()!;
  assertEquals(held.take(bytes(10, 50_000)), bytes(50_010));
  assertEquals(before.length, 0);
});

Deno.test("HeldBytes: without a reserve, or past it, large messages stay in pieces", () => {
  const plain = new HeldBytes();
  plain.append(bytes(50_000));
  assertEquals(plain.room(), null);
  const small = new HeldBytes({ reserve: 40_000 });
  small.append(bytes(50_000));
  assertEquals(small.room(), null);
  assertEquals(small.take(), bytes(50_000));
});
