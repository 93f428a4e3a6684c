import { assert, assertEquals } from "./_assert.ts";
import {
  closeQuietly,
  FIRST_READ_BUFFER_SIZE,
  firstReadBuffer,
  freeBuffer,
  grownBuffer,
  MAPPED_BUFFER_SIZE,
  newBuffer,
  READ_BUFFER_SIZE,
  writeAll,
  type Writer,
} from "../lib/io.ts";

/** A writer that takes at most `limit` bytes per call, like a full socket buffer. */
class TrickleWriter implements Writer {
  readonly received: number[] = [];
  calls = 0;
  constructor(readonly limit: number) {}
  write(p: Uint8Array): Promise<number> {
    this.calls++;
    const n = Math.min(this.limit, p.length);
    this.received.push(...p.subarray(0, n));
    return Promise.resolve(n);
  }
}

Deno.test("writeAll: loops until a writer that takes 3 bytes at a time has everything", async () => {
  const writer = new TrickleWriter(3);
  const data = Uint8Array.from({ length: 100 }, (_, i) => i);
  await writeAll(writer, data);
  assertEquals(writer.received, [...data]);
  assertEquals(writer.calls, 34);
});

Deno.test("writeAll: nothing to write makes no call", async () => {
  const writer = new TrickleWriter(3);
  await writeAll(writer, new Uint8Array(0));
  assertEquals(writer.calls, 0);
});

Deno.test("writeAll: a real socket pair carries 8 MiB while the reader is slow", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  const data = new Uint8Array(8 << 20).map((_, i) => i & 0xff);
  const received = new Uint8Array(data.length);
  const reading = (async () => {
    let filled = 0;
    await new Promise((resolve) => setTimeout(resolve, 100)); // let the send buffer fill
    while (filled < data.length) {
      const n = await server.read(received.subarray(filled));
      if (n === null) break;
      filled += n;
    }
    return filled;
  })();
  await writeAll(client, data);
  assertEquals(await reading, data.length);
  assertEquals(received, data);
  client.close();
  server.close();
});

Deno.test("grownBuffer: grows ×4 on a full read, up to 64 KiB, and keeps it otherwise", () => {
  let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
  assert(grownBuffer(buffer, buffer.length - 1) === buffer, "not full: kept");
  assert(grownBuffer(buffer, 0) === buffer, "empty read: kept");
  const sizes = [buffer.length];
  for (let i = 0; i < 6; i++) {
    buffer = grownBuffer(buffer, buffer.length);
    sizes.push(buffer.length);
  }
  assertEquals(sizes, [512, 2048, 8192, 32768, 65536, 65536, 65536]);
  assertEquals(buffer.length, READ_BUFFER_SIZE);
});

Deno.test("grownBuffer: from 32 KiB up, memory of the buffer's own", () => {
  let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
  const mapped: boolean[] = [];
  for (let i = 0; i < 4; i++) {
    buffer = grownBuffer(buffer, buffer.length);
    mapped.push(buffer.buffer.resizable);
  }
  assertEquals(mapped, [false, false, true, true]); // 2, 8, 32, 64 KiB
});

Deno.test("newBuffer: zeroed, of the size asked; mapped of its own from 32 KiB", () => {
  for (
    const size of [0, 100, MAPPED_BUFFER_SIZE - 1, MAPPED_BUFFER_SIZE, 1 << 20]
  ) {
    const buffer = newBuffer(size);
    assertEquals(buffer.length, size);
    assertEquals(buffer.buffer.resizable, size >= MAPPED_BUFFER_SIZE);
    assert(buffer.every((b) => b === 0));
  }
});

Deno.test("firstReadBuffer: back to the first size; the same buffer if it is already", () => {
  const first = new Uint8Array(FIRST_READ_BUFFER_SIZE);
  assert(firstReadBuffer(first) === first);
  assertEquals(
    firstReadBuffer(newBuffer(65536)).length,
    FIRST_READ_BUFFER_SIZE,
  );
});

Deno.test("freeBuffer: the buffer is detached, every view of it empty", () => {
  const bytes = newBuffer(65536);
  const view = bytes.subarray(100, 200);
  freeBuffer(bytes);
  assertEquals([bytes.length, view.length, bytes.buffer.byteLength], [0, 0, 0]);
  assert(bytes.buffer.detached);
});

Deno.test("closeQuietly: closing twice is fine", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  closeQuietly(listener);
  closeQuietly(listener);
});
