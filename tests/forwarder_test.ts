import { assert, assertEquals } from "./_assert.ts";
import {
  Forwarder,
  type Workers,
} from "../multiclientsusingthreading/forwarder.ts";
import type { ToWorker } from "../multiclientsusingthreading/messages.ts";
import { SharedStats } from "../multiclientsusingthreading/shared_stats.ts";
import {
  mainCell,
  meshBacklogBuffer,
} from "../multiclientsusingthreading/mesh.ts";
import { writeAll } from "../lib/io.ts";
import { readAll, waitUntil } from "./_helpers.ts";

/** 16 KiB outboxes: a forwarding window of 1 KiB. */
const OUTBOX_LIMIT = 16 * 1024;
const WINDOW = 1024;

/**
 * A worker stand-in: keeps what the forwarder posts, checks that at most one
 * data post is out (unacknowledged) at a time and never more than the
 * window, and acknowledges each post on a later task when `autoAck` is set.
 * With `welcome` set it answers each open with a welcome, as a worker does.
 */
class FakeWorker implements Workers {
  readonly messages: ToWorker[] = [];
  readonly received: number[] = [];
  forwarder!: Forwarder;
  outPosts = 0;
  outBytes = 0;
  mostPostsOut = 0;
  mostBytesOut = 0;
  welcome = false;
  #waiters: { test: () => boolean; resolve: () => void }[] = [];

  constructor(public autoAck: boolean) {}

  pick(): number {
    return 1;
  }

  post(_index: number, message: ToWorker): void {
    this.messages.push(message);
    if (message.type === "open" && this.welcome) {
      const { id } = message;
      setTimeout(() => this.answer(id), 0);
    }
    if (message.type === "data") {
      this.received.push(...message.bytes);
      this.outPosts++;
      this.outBytes += message.bytes.length;
      this.mostPostsOut = Math.max(this.mostPostsOut, this.outPosts);
      this.mostBytesOut = Math.max(this.mostBytesOut, this.outBytes);
      const { id, bytes } = message;
      if (this.autoAck) setTimeout(() => this.ack(id, bytes.length), 0);
    }
    for (const waiter of [...this.#waiters]) {
      if (!waiter.test()) continue;
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.resolve();
    }
  }

  /** Welcomes client `id`: the worker's first answer. */
  answer(id: number): void {
    this.forwarder.handle(1, { type: "reply", id, bytes: line("* welcome") });
  }

  /** The ids of the opens posted so far, in order. */
  opened(): number[] {
    return this.messages.flatMap((m) => m.type === "open" ? [m.id] : []);
  }

  ack(id: number, bytes: number): void {
    this.outPosts--;
    this.outBytes -= bytes;
    this.forwarder.handle(1, { type: "ack", id, bytes });
  }

  /** Resolves once `test()` holds (checked after each post). */
  until(test: () => boolean): Promise<void> {
    if (test()) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push({ test, resolve }));
  }

  dataPosts(): Uint8Array[] {
    return this.messages.flatMap((m) => m.type === "data" ? [m.bytes] : []);
  }
}

/** A forwarder on a loopback port, a worker stand-in, and a client. */
async function setUp(autoAck: boolean, backlog?: SharedArrayBuffer) {
  const workers = new FakeWorker(autoAck);
  const forwarder = new Forwarder(workers, {
    outboxLimit: OUTBOX_LIMIT,
    stats: new SharedStats(),
    backlog,
  });
  workers.forwarder = forwarder;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = forwarder.serve(listener);
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: (listener.addr as Deno.NetAddr).port,
  });
  await workers.until(() => workers.messages.some((m) => m.type === "open"));
  const open = workers.messages.find((m) => m.type === "open")!;
  const id = open.type === "open" ? open.id : 0;
  return {
    workers,
    forwarder,
    client,
    id,
    port: (listener.addr as Deno.NetAddr).port,
    async [Symbol.asyncDispose]() {
      await forwarder.shutdown();
      listener.close();
      await serving;
      // the forwarder closed its side: read to the end, then close ours
      const sink = new Uint8Array(1024);
      while (await client.read(sink).catch(() => null) !== null);
      client.close();
    },
  };
}

const bytes = (length: number, fill: number) =>
  new Uint8Array(length).fill(fill);
const line = (text: string) => new TextEncoder().encode(`${text}\n`);

Deno.test("Forwarder: bytes read while a post is unacknowledged are held, posted after its ack, before the end", async () => {
  await using t = await setUp(false);
  const { workers, client } = t;
  await writeAll(client, bytes(100, 1));
  await workers.until(() => workers.dataPosts().length === 1);
  assertEquals(workers.dataPosts()[0], bytes(100, 1));
  // Not acknowledged: what follows is held here, however many reads it takes.
  await writeAll(client, bytes(200, 2));
  await writeAll(client, bytes(300, 3));
  await client.closeWrite();
  assertEquals(workers.dataPosts().length, 1);
  workers.autoAck = true;
  workers.ack(t.id, 100); // what was held goes now, then the end
  await workers.until(() => workers.messages.some((m) => m.type === "end"));
  const posts = workers.dataPosts();
  assertEquals(workers.mostPostsOut, 1);
  assertEquals(
    new Uint8Array(posts.slice(1).flatMap((post) => [...post])),
    new Uint8Array([...bytes(200, 2), ...bytes(300, 3)]),
  );
  const end = workers.messages.at(-1)!;
  assertEquals(end.type, "end");
  assert(end.type === "end" && end.finished);
  t.forwarder.handle(1, { type: "close", id: t.id });
});

Deno.test("Forwarder: one post out at a time, never past the window; every byte arrives in order", async () => {
  await using t = await setUp(true);
  const { workers, client } = t;
  const sent = Array.from({ length: 20 * WINDOW }, (_, i) => (i * 7) % 251);
  for (let i = 0; i < sent.length; i += 700) {
    await writeAll(client, Uint8Array.from(sent.slice(i, i + 700)));
  }
  await workers.until(() => workers.received.length === sent.length);
  assertEquals(workers.received, sent);
  assertEquals(workers.mostPostsOut, 1);
  assert(
    workers.mostBytesOut <= WINDOW,
    `${workers.mostBytesOut} bytes were out, past the ${WINDOW}-byte window`,
  );
});

/**
 * The window of all connections full with 1,000 bytes of `t`'s client, and a
 * second client whose 100 bytes wait for room.
 */
async function windowFull(t: Awaited<ReturnType<typeof setUp>>) {
  const { workers, client } = t;
  // A full first read grows the read buffer; then 1,000 bytes go as one post.
  await writeAll(client, bytes(512, 1));
  await workers.until(() => workers.dataPosts().length === 1);
  workers.ack(t.id, 512);
  await writeAll(client, bytes(1000, 1));
  await workers.until(() => workers.outBytes === 1000);
  const other = await Deno.connect({ hostname: "127.0.0.1", port: t.port });
  await workers.until(() =>
    workers.messages.filter((m) => m.type === "open").length === 2
  );
  const opened = workers.messages.filter((m) => m.type === "open").at(-1)!;
  const otherId = opened.type === "open" ? opened.id : 0;
  await writeAll(other, bytes(100, 2)); // 1,000 + 100 would pass the window
  assertEquals(workers.dataPosts().length, 2);
  return { other, otherId };
}

Deno.test("Forwarder: all connections together have at most one window posted and unacknowledged", async () => {
  await using t = await setUp(false);
  const { workers } = t;
  const { other, otherId } = await windowFull(t);
  try {
    workers.ack(t.id, 1000); // room again: the other's bytes go
    await workers.until(() => workers.dataPosts().length === 3);
    assertEquals(workers.dataPosts()[2], bytes(100, 2));
    assert(workers.mostBytesOut <= WINDOW);
    workers.ack(otherId, 100);
  } finally {
    other.close();
  }
});

Deno.test("Forwarder: bytes a worker released (commands) leave the window of all connections before the ack; the connection's own next bytes still wait for it", async () => {
  await using t = await setUp(false);
  const { workers, client } = t;
  const { other, otherId } = await windowFull(t);
  try {
    t.forwarder.handle(1, { type: "release", id: t.id, bytes: 1000 });
    await workers.until(() => workers.dataPosts().length === 3);
    assertEquals(workers.dataPosts()[2], bytes(100, 2));
    await writeAll(client, bytes(10, 3)); // held: its post is not acknowledged
    await waitUntil(() => t.forwarder.held === 10, 5_000, "the bytes held");
    assertEquals(workers.dataPosts().length, 3);
    workers.ack(t.id, 1000);
    await workers.until(() => workers.dataPosts().length === 4);
    assertEquals(workers.dataPosts()[3], bytes(10, 3));
    workers.ack(otherId, 100);
    workers.ack(t.id, 10);
  } finally {
    other.close();
  }
});

Deno.test("Forwarder: a broadcast reaches every client in the chat but its sender; none before its worker said entered, or after exited", async () => {
  await using t = await setUp(false);
  const { workers, forwarder } = t;
  const others = [
    await Deno.connect({ hostname: "127.0.0.1", port: t.port }),
    await Deno.connect({ hostname: "127.0.0.1", port: t.port }),
  ];
  try {
    await workers.until(() =>
      workers.messages.filter((m) => m.type === "open").length === 3
    );
    const [a, b, c] = workers.messages.flatMap((m) =>
      m.type === "open" ? [m.id] : []
    );
    forwarder.handle(1, { type: "broadcast", bytes: line("early") }); // no one is in
    forwarder.handle(1, { type: "reply", id: b, bytes: line("welcome b") });
    for (const id of [a, b, c]) forwarder.handle(1, { type: "entered", id });
    forwarder.handle(2, { type: "broadcast", bytes: line("one"), except: a });
    forwarder.handle(1, { type: "exited", id: c });
    forwarder.handle(2, { type: "broadcast", bytes: line("two"), except: b });
    for (const id of [a, b, c]) forwarder.handle(1, { type: "close", id });
    const got = await Promise.all(
      [t.client, ...others].map(async (conn) =>
        new TextDecoder().decode(await readAll(conn))
      ),
    );
    assertEquals(got, ["two\n", "welcome b\none\n", "one\n"]);
  } finally {
    for (const conn of others) conn.close();
  }
});

Deno.test("Forwarder: a worker's broadcast counts as handled at once, or once no outbox is congested when it made one so", async () => {
  const buffer = meshBacklogBuffer(2);
  const cells = new Int32Array(buffer);
  const cell = mainCell(cells, 2);
  await using t = await setUp(false, buffer);
  const { forwarder } = t;
  forwarder.handle(1, { type: "entered", id: t.id });
  /** What worker 2 does: count the bytes, then post them. */
  const broadcast = (size: number) => {
    Atomics.add(cells, cell, size);
    forwarder.handle(2, { type: "broadcast", bytes: bytes(size, 0x78) });
  };
  broadcast(100);
  assertEquals(Atomics.load(cells, cell), 0, "a small broadcast waits");
  // Past half the outbox's bound: handled only once the outbox drained.
  broadcast(OUTBOX_LIMIT / 2 + 1);
  assertEquals(Atomics.load(cells, cell), OUTBOX_LIMIT / 2 + 1);
  for (;;) {
    const left = Atomics.load(cells, cell);
    if (left === 0) break;
    const wait = Atomics.waitAsync(cells, cell, left, 5000);
    assert(wait.async, "the count changed but did not reach 0");
    assertEquals(await wait.value, "ok", "never counted as handled");
  }
  assertEquals(Atomics.load(cells, 1), 0, "worker 1's cells are its own");
  assertEquals(Atomics.load(cells, mainCell(cells, 1)), 0);
});

Deno.test("Forwarder: many clients sending at once: what this thread holds for all of them stays near a quarter of an outbox; every byte still arrives", async () => {
  await using t = await setUp(false);
  const { workers, forwarder } = t;
  workers.welcome = true; // or accept() would wait for the first client's
  const CLIENTS = 12; // each up to a window in flight: 12 KiB, three times the bound
  const others = await Promise.all(
    Array.from(
      { length: CLIENTS - 1 },
      () => Deno.connect({ hostname: "127.0.0.1", port: t.port }),
    ),
  );
  const clients = [t.client, ...others];
  try {
    await workers.until(() =>
      workers.messages.filter((m) => m.type === "open").length === CLIENTS
    );
    // Nothing is acknowledged: the first post stays out, the rest is held.
    await Promise.all(clients.map((c, i) => writeAll(c, bytes(WINDOW, i + 1))));
    const bound = OUTBOX_LIMIT / 4;
    for (let turn = 0; forwarder.held < bound; turn++) {
      assert(
        turn < 500,
        `held ${forwarder.held} bytes, never reached ${bound}`,
      );
      await new Promise((resolve) => setTimeout(resolve, 2));
    }
    // Reads that were under way when it got there land too; then none.
    for (let turn = 0; turn < 20; turn++) {
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
    assert(
      forwarder.held <= bound + WINDOW,
      `held ${forwarder.held} bytes, over ${bound} and a read`,
    );
    // Acknowledged from now on: everyone's bytes reach the worker.
    workers.autoAck = true;
    const out = workers.messages.flatMap((m) => m.type === "data" ? [m] : []);
    for (const post of out) workers.ack(post.id, post.bytes.length);
    await workers.until(() => workers.received.length === CLIENTS * WINDOW);
    const counts = new Map<number, number>();
    for (const b of workers.received) counts.set(b, (counts.get(b) ?? 0) + 1);
    assertEquals(counts.size, CLIENTS);
    for (const count of counts.values()) assertEquals(count, WINDOW);
    assertEquals(forwarder.held, 0);
  } finally {
    for (const conn of others) conn.close();
  }
});

Deno.test("Forwarder: accept() waits while 8 clients are not answered by their worker; each answer lets one more in", async () => {
  await using t = await setUp(false); // one client, opened, not answered
  const { workers } = t;
  const others = await Promise.all(
    Array.from(
      { length: 9 },
      () => Deno.connect({ hostname: "127.0.0.1", port: t.port }),
    ),
  );
  try {
    // All ten are connected, in the kernel's queue: eight get in.
    await workers.until(() => workers.opened().length === 8);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertEquals(workers.opened().length, 8);
    workers.answer(workers.opened()[3]);
    await workers.until(() => workers.opened().length === 9);
    await new Promise((resolve) => setTimeout(resolve, 50));
    assertEquals(workers.opened().length, 9);
    workers.welcome = true;
    for (const id of workers.opened()) workers.answer(id);
    await workers.until(() => workers.opened().length === 10);
  } finally {
    for (const conn of others) conn.close();
  }
});

/** A connection whose every read the test answers, or leaves pending. */
class ScriptedConn {
  readonly localAddr: Deno.NetAddr = {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 5000,
  };
  readonly remoteAddr: Deno.NetAddr = {
    transport: "tcp",
    hostname: "127.0.0.1",
    port: 40000,
  };
  #read: PromiseWithResolvers<number | null> & { into: Uint8Array } | null =
    null;
  #reading: (() => void) | null = null;

  read(into: Uint8Array): Promise<number | null> {
    this.#read = { ...Promise.withResolvers<number | null>(), into };
    this.#reading?.();
    return this.#read.promise;
  }

  /** Resolves once the forwarder waits in a read. */
  async reading(): Promise<void> {
    if (this.#read === null) {
      await new Promise<void>((resolve) => (this.#reading = resolve));
    }
  }

  /** Answers the pending read with `bytes`, now (its reader runs later). */
  answer(bytes: Uint8Array): void {
    const read = this.#read!;
    this.#read = null;
    read.into.set(bytes);
    read.resolve(bytes.length);
  }

  /**
   * Set: a write takes the peer's reset, as the kernel does when the write
   * comes first; the pending read then sees an end of stream.
   */
  resetOnWrite = false;

  write(bytes: Uint8Array): Promise<number> {
    if (!this.resetOnWrite) return Promise.resolve(bytes.length);
    const read = this.#read;
    this.#read = null;
    read?.resolve(null);
    return Promise.reject(new Deno.errors.ConnectionReset("reset by peer"));
  }

  closeWrite(): Promise<void> {
    return Promise.resolve();
  }

  /** Fails the pending read with `error` (a reset, say). */
  fail(error: Error): void {
    const read = this.#read!;
    this.#read = null;
    read.reject(error);
  }

  close(): void {
    this.#read?.reject(new Deno.errors.BadResource("closed"));
    this.#read = null;
  }

  setNoDelay(): void {}
}

/** A listener that accepts `conn` once, then waits to be closed. */
function listenerOf(conn: ScriptedConn): Deno.Listener {
  let first: ScriptedConn | null = conn;
  const closed = Promise.withResolvers<never>();
  closed.promise.catch(() => {}); // rejected at close, awaited or not
  return {
    accept: () => {
      const next = first;
      first = null;
      return next ? Promise.resolve(next) : closed.promise;
    },
    close: () => closed.reject(new Deno.errors.BadResource("closed")),
  } as unknown as Deno.Listener;
}

/** A forwarder serving one scripted connection, opened (its first read waits), and a worker stand-in. */
async function scriptedSetUp(autoAck: boolean) {
  const workers = new FakeWorker(autoAck);
  const forwarder = new Forwarder(workers, {
    outboxLimit: OUTBOX_LIMIT,
    stats: new SharedStats(),
  });
  workers.forwarder = forwarder;
  const conn = new ScriptedConn();
  const listener = listenerOf(conn);
  const serving = forwarder.serve(listener);
  await conn.reading();
  const open = workers.messages.find((m) => m.type === "open")!;
  return {
    workers,
    forwarder,
    conn,
    id: open.type === "open" ? open.id : 0,
    async [Symbol.asyncDispose]() {
      await forwarder.shutdown();
      listener.close();
      await serving;
    },
  };
}

Deno.test("Forwarder: an end of stream whose reset a write took is no clean end: the worker is told it was lost", async () => {
  await using t = await scriptedSetUp(true);
  const { workers, forwarder, conn, id } = t;
  conn.answer(new TextEncoder().encode("cut sho")); // a line, unfinished
  await workers.until(() => workers.dataPosts().length === 1);
  await conn.reading();
  conn.resetOnWrite = true;
  forwarder.handle(1, { type: "reply", id, bytes: bytes(10, 0x41) });
  await workers.until(() => workers.messages.some((m) => m.type === "end"));
  assertEquals(workers.messages.find((m) => m.type === "end"), {
    type: "end",
    id,
    reason: "connection lost while sending",
    finished: false,
  });
});

Deno.test("Forwarder: a connection its worker closed gives back what it held, and a read that lands after is held by nobody", async () => {
  await using t = await scriptedSetUp(false);
  const { workers, forwarder, conn, id } = t;
  conn.answer(bytes(100, 1)); // posted, never acknowledged
  await workers.until(() => workers.dataPosts().length === 1);
  await conn.reading();
  conn.answer(bytes(200, 2)); // held behind it
  await conn.reading();
  assertEquals(forwarder.held, 200);
  // A read has 300 bytes, and its reader has not run yet when the worker
  // closes the connection (evicted, say).
  conn.answer(bytes(300, 3));
  forwarder.handle(1, { type: "close", id });
  assertEquals(forwarder.held, 0);
  await new Promise((resolve) => setTimeout(resolve, 0)); // the reader runs
  assertEquals(forwarder.held, 0);
  assertEquals(workers.dataPosts().length, 1);
});

Deno.test("Forwarder: a reset drops what was held of a line it cut at once; complete lines held before it still go, then the end", async () => {
  await using t = await scriptedSetUp(false);
  const { workers, forwarder, conn, id } = t;
  conn.answer(line("one")); // posted, not acknowledged yet
  await workers.until(() => workers.dataPosts().length === 1);
  await conn.reading();
  conn.answer(new TextEncoder().encode("two\nthr")); // held behind it
  await conn.reading();
  assertEquals(forwarder.held, 7);
  conn.fail(new Deno.errors.ConnectionReset("reset by peer"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals(forwarder.held, 4, "the cut line's bytes are dropped");
  workers.ack(id, 4); // room: the complete line goes, then the end
  await workers.until(() => workers.messages.some((m) => m.type === "end"));
  assertEquals(workers.dataPosts().slice(1), [line("two")]);
  assertEquals(workers.messages.at(-1), {
    type: "end",
    id,
    reason: "connection reset",
    finished: false,
  });
  assertEquals(forwarder.held, 0);
});

Deno.test("Forwarder: a reset that cut the only line held ends the connection without waiting for room", async () => {
  await using t = await scriptedSetUp(false);
  const { workers, forwarder, conn } = t;
  conn.answer(line("one")); // posted, never acknowledged
  await workers.until(() => workers.dataPosts().length === 1);
  await conn.reading();
  conn.answer(bytes(500, 0x78)); // half a line, held
  await conn.reading();
  conn.fail(new Deno.errors.ConnectionReset("reset by peer"));
  await new Promise((resolve) => setTimeout(resolve, 0));
  assert(workers.messages.some((m) => m.type === "end"), "no end yet");
  assertEquals(workers.dataPosts().length, 1);
  assertEquals(forwarder.held, 0);
});
