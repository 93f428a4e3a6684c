import { assert, assertEquals } from "./_assert.ts";
import { Outbox, Pacer, settle } from "../lib/outbox.ts";
import { PendingLimit } from "../lib/pending_limit.ts";
import { delay } from "../lib/std.ts";

/**
 * A connection whose writes wait until `open()`; each takes at most `take`
 * bytes. It keeps the bytes written, and each buffer it was given (the
 * objects, to tell a shared buffer from a copy).
 */
class Gate {
  written: number[] = [];
  readonly chunks: Uint8Array[] = [];
  closed = false;
  #open = false;
  #waiters: (() => void)[] = [];
  #wanted: { count: number; resolve: () => void } | undefined;
  constructor(readonly take = Infinity) {}
  open(): void {
    this.#open = true;
    for (const wake of this.#waiters.splice(0)) wake();
  }
  async write(p: Uint8Array): Promise<number> {
    if (!this.#open) {
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
    if (this.closed) throw new Deno.errors.BadResource("closed");
    const n = Math.min(p.length, this.take);
    for (let i = 0; i < n; i++) this.written.push(p[i]); // (a spread of 256 KiB overflows the stack)
    this.chunks.push(p);
    if (this.#wanted && this.chunks.length >= this.#wanted.count) {
      this.#wanted.resolve();
    }
    return n;
  }
  /** Resolves once `count` writes were made. */
  writes(count: number): Promise<void> {
    if (this.chunks.length >= count) return Promise.resolve();
    return new Promise((resolve) => (this.#wanted = { count, resolve }));
  }
  close(): void {
    this.closed = true;
    this.open();
  }
}

const tick = (): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, 0));

Deno.test("Outbox: sends in order, joining what queued while a write was pending", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate);
  for (let i = 0; i < 5; i++) outbox.send(Uint8Array.of(i));
  assertEquals(outbox.queued, 5);
  gate.open();
  await outbox.close();
  assertEquals(gate.written, [0, 1, 2, 3, 4]);
  assertEquals(outbox.written, 5);
});

Deno.test("Outbox: receivers equally behind on a broadcast share one joined copy", async () => {
  const [first, a, b] = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
  const conns = [new Gate(), new Gate(), new Gate()];
  const outboxes = conns.map((conn) => new Outbox(conn));
  // The first write of each is pending while a and b queue behind it.
  for (const outbox of outboxes) [first, a, b].forEach((x) => outbox.send(x));
  conns.forEach((conn) => conn.open());
  await Promise.all(conns.map((conn) => conn.writes(2)));
  for (const conn of conns) assertEquals(conn.chunks[1], Uint8Array.of(2, 3));
  assert(conns[0].chunks[1] === conns[1].chunks[1]);
  assert(conns[1].chunks[1] === conns[2].chunks[1]);
  await Promise.all(outboxes.map((outbox) => outbox.close()));
});

Deno.test("Outbox: a joined copy is shared only by outboxes that queued the very same chunks", async () => {
  const [first, a, b] = [Uint8Array.of(1), Uint8Array.of(2), Uint8Array.of(3)];
  const other = Uint8Array.of(3); // equal bytes, another chunk
  const conns = [new Gate(), new Gate(), new Gate()];
  const outboxes = conns.map((conn) => new Outbox(conn));
  [first, a, b].forEach((x) => outboxes[0].send(x));
  [first, a, other].forEach((x) => outboxes[1].send(x));
  [first, a, b, other].forEach((x) => outboxes[2].send(x));
  conns.forEach((conn) => conn.open());
  await Promise.all(conns.map((conn) => conn.writes(2)));
  assertEquals(conns.map((conn) => [...conn.chunks[1]]), [
    [2, 3],
    [2, 3],
    [2, 3, 3],
  ]);
  assert(conns[0].chunks[1] !== conns[1].chunks[1]);
  assert(conns[0].chunks[1] !== conns[2].chunks[1]);
  await Promise.all(outboxes.map((outbox) => outbox.close()));
});

/** Chunk `i` of a flood: 40 bytes that say which one it is. */
function floodChunk(i: number): Uint8Array {
  return Uint8Array.from({ length: 40 }, (_, j) => (i * 7 + j) % 251);
}

Deno.test("Outbox: a client far behind a flood of small replies: they are gathered, few chunks queued, every byte in order, every one counted until written", async () => {
  const gate = new Gate();
  const replies = new PendingLimit(1 << 30);
  const outbox = new Outbox(gate, { replies });
  const sent: number[] = [];
  for (let i = 0; i < 20_000; i++) {
    const chunk = floodChunk(i);
    sent.push(...chunk);
    assert(outbox.reply(chunk));
  }
  assertEquals(outbox.queued, 800_000);
  // 8 as they came, then 16 KiB gathered at a time: 49 more (queued as
  // they were, 20,000 chunks would cost some 12 MB beside their 800 KB).
  assert(outbox.chunks <= 8 + 50, `${outbox.chunks} chunks queued`);
  assertEquals(replies.total, 800_000);
  gate.open();
  while (outbox.queued > 0) await tick();
  assertEquals(replies.total, 0);
  await outbox.close();
  assertEquals(gate.written.length, sent.length);
  assert(gate.written.every((x, i) => x === sent[i]), "bytes out of order");
});

Deno.test("Outbox: a broadcast's chunks are queued as they are, never copied, however long the queue", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate);
  const chunks = Array.from({ length: 1000 }, (_, i) => floodChunk(i));
  for (const chunk of chunks) assert(outbox.send(chunk));
  // One chunk serves every receiver: a copy in each outbox would cost more.
  // (The first is being written.)
  assertEquals([outbox.chunks, outbox.replies], [999, 0]);
  gate.open();
  await outbox.close();
  assertEquals(gate.written, chunks.flatMap((chunk) => [...chunk]));
});

Deno.test("Outbox: gathering never touches the bytes of a chunk being written, even a few bytes at a time", async () => {
  const gate = new Gate(700); // partial writes: a chunk stays in flight for several
  const outbox = new Outbox(gate, { limit: 64 << 20 });
  const sent: number[] = [];
  let seed = 1;
  const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647;
  const send = (i: number) => {
    // mostly lines, some past what is gathered, now and then a large one
    const r = random();
    const size = r < 0.8 ? 40 : r < 0.97 ? 5000 : 100_000;
    const chunk = Uint8Array.from(
      { length: size },
      (_, j) => (i * 7 + j) % 251,
    );
    for (const x of chunk) sent.push(x);
    // replies are gathered; a broadcast's chunks between them are not
    assert(random() < 0.3 ? outbox.send(chunk) : outbox.reply(chunk));
  };
  gate.open();
  for (let i = 0; i < 3000; i++) {
    send(i);
    if (random() < 0.05) await tick(); // writes go on between sends
  }
  await outbox.close(undefined, 60_000);
  assertEquals(gate.written.length, sent.length);
  assert(gate.written.every((x, i) => x === sent[i]), "bytes out of order");
});

Deno.test("Outbox: replies count against the server-wide bound, a broadcast's chunks do not; past it the outbox with the most unread is cut off", async () => {
  const replies = new PendingLimit(10_000);
  const gates = [new Gate(), new Gate(), new Gate()];
  const [a, b, c] = gates.map((gate) => new Outbox(gate, { replies }));
  assert(a.reply(new Uint8Array(6000)));
  assert(b.reply(new Uint8Array(3000)));
  assert(b.send(new Uint8Array(100_000))); // shared with other outboxes
  assertEquals([replies.total, a.replies, b.replies], [9000, 6000, 3000]);
  assert(c.reply(new Uint8Array(2000))); // 11,000: a holds the most
  assert(a.closed && !b.closed && !c.closed);
  assertEquals(
    a.reason,
    "too slow: 6000 bytes of replies unread when the server was full",
  );
  assertEquals([replies.total, a.replies], [5000, 0]);
  // The reply that passes the bound may cut its own outbox: it is refused.
  assertEquals(c.reply(new Uint8Array(6000)), false);
  assert(c.closed);
  assertEquals([replies.total, b.replies], [3000, 3000]);
  gates[1].open();
  await b.close();
  assertEquals(replies.total, 0);
});

Deno.test("Outbox: a reply counts until the kernel took it, not only while queued", async () => {
  const replies = new PendingLimit(1 << 20);
  const gate = new Gate();
  const outbox = new Outbox(gate, { replies });
  const help = new Uint8Array(1000); // a cached reply, queued three times
  for (let i = 0; i < 3; i++) assert(outbox.reply(help));
  await tick();
  // The first is being written (taken from the queue), two wait behind it.
  assertEquals([outbox.chunks, outbox.queued, replies.total], [2, 3000, 3000]);
  gate.open();
  await gate.writes(2);
  await tick();
  assertEquals([replies.total, outbox.replies, outbox.queued], [0, 0, 0]);
  await outbox.close();
});

Deno.test("Outbox: an outbox cut off or closed for any reason frees its share of the bound", async () => {
  const replies = new PendingLimit(1 << 20);
  const overflowing = new Outbox(new Gate(), { limit: 2048, replies });
  assert(overflowing.reply(new Uint8Array(1500)));
  assertEquals(overflowing.reply(new Uint8Array(1000)), false); // past 2048
  assertEquals(replies.total, 0);
  const silent = new Gate(); // never reads
  const closing = new Outbox(silent, { replies });
  assert(closing.reply(new Uint8Array(4000)));
  await closing.close(undefined, 20);
  assertEquals(replies.total, 0);
});

Deno.test("Outbox: evicted while it says goodbye to a peer that does not read, its connection closes at once", async () => {
  const replies = new PendingLimit(10_000);
  const silent = new Gate();
  const leaving = new Outbox(silent, { replies });
  assert(leaving.reply(new Uint8Array(8000)));
  const closed = leaving.close(undefined, 60_000); // would wait a minute
  const other = new Outbox(new Gate(), { replies });
  other.reply(new Uint8Array(3000)); // 11,000: the one leaving holds the most
  await closed;
  assert(silent.closed);
  assertEquals(replies.total, 3000);
  await other.close(undefined, 10);
});

Deno.test("Outbox: partial writes are completed", async () => {
  const gate = new Gate(3);
  gate.open();
  const outbox = new Outbox(gate);
  outbox.send(Uint8Array.from({ length: 10 }, (_, i) => i));
  await outbox.close();
  assertEquals(gate.written, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
});

Deno.test("Outbox: passing the bound cuts the client off, frees the queue, reports once", () => {
  const gate = new Gate();
  let overflowed = 0;
  const outbox = new Outbox(gate, {
    limit: 100,
    onOverflow: () => overflowed++,
  });
  assert(outbox.send(new Uint8Array(60)));
  assertEquals(outbox.send(new Uint8Array(60)), false);
  assertEquals([overflowed, outbox.queued, outbox.closed, gate.closed], [
    1,
    0,
    true,
    true,
  ]);
  assertEquals(outbox.send(new Uint8Array(1)), false);
  assertEquals(overflowed, 1);
});

Deno.test("Outbox: congested past half the bound; uncongested() resolves as it drains", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate, { limit: 100 });
  outbox.send(new Uint8Array(40));
  assertEquals(outbox.congested, false);
  outbox.send(new Uint8Array(20));
  assertEquals(outbox.congested, true);
  const drained = outbox.uncongested();
  gate.open();
  await drained;
  assertEquals(outbox.congested, false);
  await outbox.close();
});

Deno.test("Outbox: replies do not congest it, broadcasts do: a client that asks and does not read holds no sender up", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate, { limit: 200 });
  outbox.reply(new Uint8Array(90)); // 90 queued, past half the bound
  assertEquals(outbox.congested, false);
  outbox.send(new Uint8Array(60));
  assertEquals(outbox.congested, false, "60 bytes of broadcasts");
  outbox.send(new Uint8Array(50));
  assertEquals(outbox.congested, true, "110 bytes of broadcasts");
  const drained = outbox.uncongested();
  gate.open();
  await drained;
  assertEquals(outbox.congested, false);
  await outbox.close();
});

Deno.test("Outbox: broadcasts and replies each have the bound: a reader that keeps up and asks is not cut by its own answers; past either, the client is cut off", () => {
  const outbox = new Outbox(new Gate(), { limit: 100 });
  assertEquals(outbox.send(new Uint8Array(60)), true);
  assertEquals(outbox.reply(new Uint8Array(90)), true, "150 queued in all");
  assertEquals(outbox.send(new Uint8Array(30)), true);
  assertEquals(outbox.reply(new Uint8Array(20)), false, "110 of replies");
  assertEquals(outbox.reason, "too slow: 200 bytes unread");
  const other = new Outbox(new Gate(), { limit: 100 });
  other.reply(new Uint8Array(50));
  assertEquals(other.send(new Uint8Array(101)), false, "101 of broadcasts");
});

Deno.test("Outbox: close sends a last word after what was queued, then closes", async () => {
  const gate = new Gate();
  gate.open();
  const outbox = new Outbox(gate);
  outbox.send(Uint8Array.of(1));
  await outbox.close(Uint8Array.of(2));
  assertEquals(gate.written, [1, 2]);
  assert(gate.closed);
});

Deno.test("Outbox: close gives up on a peer that does not read, within its timeout", async () => {
  const gate = new Gate(); // never opens
  const outbox = new Outbox(gate);
  outbox.send(new Uint8Array(10));
  const start = Date.now();
  await outbox.close(Uint8Array.of(9), 50);
  assert(Date.now() - start < 1000);
  assert(gate.closed);
});

Deno.test("Outbox: close to a peer that is behind sends whole chunks, drops the rest whole, then the goodbye", async () => {
  // The test finishes each write itself; chunks are 200 KiB (too big to be joined).
  const seen: number[] = [];
  let finish = (): void => {};
  let started = Promise.withResolvers<void>();
  let closed = false;
  const behind = {
    write(p: Uint8Array): Promise<number> {
      if (closed) throw new Deno.errors.BadResource("closed");
      seen.push(p[0], p.length);
      const { promise, resolve } = Promise.withResolvers<number>();
      finish = () => resolve(p.length);
      started.resolve();
      return promise;
    },
    close(): void {
      closed = true;
    },
  };
  const outbox = new Outbox(behind, { limit: 10 << 20 });
  for (let id = 1; id <= 5; id++) {
    outbox.send(new Uint8Array(200 * 1024).fill(id));
  }
  // 300 ms to flush; past twice that the connection is closed regardless.
  const start = Date.now();
  const closing = outbox.close(Uint8Array.of(99), 300);
  await started.promise; // 1 is being written
  started = Promise.withResolvers<void>();
  finish(); // well within the 300 ms: 2 begins
  await started.promise;
  started = Promise.withResolvers<void>();
  // The 300 ms run out while 2 is being written.
  while (Date.now() <= start + 300) await delay(start + 301 - Date.now());
  finish(); // 2 goes whole; 3-5 are dropped whole
  await started.promise;
  finish(); // the goodbye
  await closing;
  assertEquals(seen, [1, 200 * 1024, 2, 200 * 1024, 99, 1]);
  assert(closed);
});

Deno.test("settle: a stopped reader is cut off after the stall time; a reading one is waited for", async () => {
  const stopped = new Gate();
  const slow = new Gate(1);
  const cut: string[] = [];
  const a = new Outbox(stopped, {
    limit: 10,
    onOverflow: () => cut.push("stopped"),
  });
  const b = new Outbox(slow, { limit: 10, onOverflow: () => cut.push("slow") });
  a.send(new Uint8Array(8));
  b.send(new Uint8Array(8));
  // The slow reader takes a byte every 10 ms.
  const trickle = setInterval(() => slow.open(), 10);
  await settle([a, b], 100);
  clearInterval(trickle);
  assertEquals(cut, ["stopped"]);
  assertEquals(b.congested, false);
  await b.close();
});

Deno.test("settle: when the server itself was held up, nobody is judged that round", async () => {
  const gate = new Gate();
  const cut: number[] = [];
  const outbox = new Outbox(gate, {
    limit: 10,
    onOverflow: () => cut.push(Date.now()),
  });
  outbox.send(new Uint8Array(8));
  const start = Date.now();
  const settled = settle([outbox], 100);
  // The thread is busy for 300 ms (a long GC, a starved CPU): the 100 ms
  // timer fires late, and the client, which had no chance, is not cut off…
  while (Date.now() - start < 300) { /* busy */ }
  await tick();
  await tick();
  assertEquals(cut, []);
  // …but one that stays stopped is, a whole round later.
  await settled;
  assertEquals(cut.length, 1);
  assert(cut[0] - start >= 400, `cut off after ${cut[0] - start} ms`);
});

Deno.test("Pacer: no promise while nothing is congested; one shared wait when something is", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate, { limit: 10 });
  const pacer = new Pacer(() => [outbox], 1000);
  assertEquals(pacer.wait(), undefined);
  outbox.send(new Uint8Array(8));
  const first = pacer.wait();
  assert(first !== undefined);
  assertEquals(pacer.wait(), first);
  gate.open();
  await first;
  await tick();
  assertEquals(pacer.wait(), undefined);
  await outbox.close();
});

Deno.test("Pacer: while no outbox in this thread is congested, wait() looks at none (thousands of clients: no scan per read)", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate, { limit: 10 });
  const cut = new Outbox(new Gate(), { limit: 10 });
  let looks = 0;
  const pacer = new Pacer(function* () {
    looks++;
    yield outbox;
    yield cut;
  }, 1000);
  for (let i = 0; i < 100; i++) assertEquals(pacer.wait(), undefined);
  assertEquals(looks, 0);
  outbox.send(new Uint8Array(8)); // congested: the pacer looks, and waits
  const waiting = pacer.wait();
  assert(waiting !== undefined && looks > 0);
  gate.open();
  await waiting;
  await tick();
  looks = 0;
  assertEquals(pacer.wait(), undefined);
  assertEquals(looks, 0, "drained: not counted any more");
  cut.send(new Uint8Array(8)); // congested, never drains
  cut.send(new Uint8Array(8)); // past the bound: cut off
  assert(cut.closed);
  assertEquals(pacer.wait(), undefined);
  assertEquals(looks, 0, "cut off: not counted any more");
  await outbox.close();
});

Deno.test("Outbox: the reason says why the client was cut off", async () => {
  const slow = new Outbox(new Gate(), { limit: 10 });
  assertEquals(slow.reason, undefined);
  slow.send(new Uint8Array(11));
  assertEquals(slow.reason, "too slow: 11 bytes unread");
  const broken = {
    write: () => Promise.reject(new Deno.errors.BrokenPipe("gone")),
    close: () => {},
  };
  const lost = new Outbox(broken);
  lost.send(Uint8Array.of(1));
  await tick();
  assertEquals(lost.reason, "connection lost while sending");
  const fine = new Outbox(new Gate(Infinity));
  await fine.close();
  assertEquals(fine.reason, undefined);
});

Deno.test("Pacer.run: many senders woken at once each check again before they add", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate, { limit: 100 });
  const pacer = new Pacer(() => [outbox]);
  outbox.send(new Uint8Array(60)); // congested: over half of 100
  const runs = Array.from(
    { length: 5 },
    () => pacer.run(() => void outbox.send(new Uint8Array(30))),
  );
  // Draining wakes them all; each must find room (under 50) before sending.
  const drain = setInterval(() => gate.open(), 1);
  await Promise.all(runs);
  clearInterval(drain);
  assertEquals(outbox.closed, false); // never past the bound of 100
  await outbox.close();
});

Deno.test("Pacer.run: an outbox that is closing (still flushing) holds nobody up", async () => {
  const gate = new Gate();
  const outbox = new Outbox(gate, { limit: 100 });
  outbox.send(new Uint8Array(60)); // congested
  const closing = outbox.close(undefined, 10); // its write waits at the gate
  assertEquals(outbox.congested, false);
  let ran = false;
  const waited = new Pacer(() => [outbox]).run(() => {
    ran = true;
  });
  assertEquals([waited, ran], [undefined, true]); // at once, no spinning wait
  gate.open();
  await closing;
});
