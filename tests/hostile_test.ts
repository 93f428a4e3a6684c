/**
 * Hostile clients, table-driven, against every server.
 *
 * For each server (started once, with two well-behaved bystanders where it
 * is a chat) every case below connects one hostile client that does its
 * worst. Then we check four things:
 *
 * 1. what the sender got: still served, or a clear message and a clean close;
 * 2. that the server lives (a probe through it afterwards);
 * 3. that the others are untouched: they get the probe, and whatever the
 *    hostile client managed to relay arrives sanitized, once, in order;
 * 4. that the server's memory stays bounded over the whole table.
 *
 * The basic echo server, which serves one client and exits, has its own
 * table at the end: everything must come back byte for byte.
 */

import { concat, delay } from "../lib/std.ts";
import {
  assert,
  assertEquals,
  assertMatch,
  assertNotMatch,
} from "./_assert.ts";
import { certificateDir, tlsFlags } from "./_certificate.ts";
import { encodeFrame } from "../lib/encoders.ts";
import { COMMANDS_PER_SECOND } from "../lib/chat_server.ts";
import {
  DEFAULT_NOTICE_BURST,
  DEFAULT_NOTICES_PER_SECOND,
} from "../lib/notice_budget.ts";
import { type FramingName, FRAMINGS } from "../lib/framing.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import {
  connect,
  Flood,
  HAVE_PYTHON,
  joinChat,
  LineConn,
  NOTICE_SUMMARY,
  readAll,
  resetClient,
  roundTrips,
  rssBytes,
  type Server,
  startServer,
  waitUntil,
  within,
} from "./_helpers.ts";

const enc = new TextEncoder();
const MiB = 1024 * 1024;
/** How much a server's RSS may grow over a whole table. */
const RSS_GROWTH_LIMIT = 48 * MiB;
/** What a relayed line may never contain: C0 controls but tab, DEL, C1. */
// deno-lint-ignore no-control-regex -- the raw control characters are what is checked for
const RAW_CONTROL = /[\x00-\x08\x0a-\x1f\x7f-\x9f]/;

/** A server under test and what it is. */
interface Target {
  name: string;
  script: string;
  args: string[];
  framing: FramingName;
  /** `echo`: lines come back to the sender; `chat`: they go to the others. */
  kind: "echo" | "chat";
  /** Whether it runs with `--idle-timeout 1`. */
  idle: boolean;
  /** Where the server can only run on Linux. */
  linuxOnly?: boolean;
}

const TARGETS: Target[] = [
  {
    name: "multiclients",
    script: "multiclients/server.ts",
    args: ["--idle-timeout", "1"],
    framing: "line",
    kind: "echo",
    idle: true,
  },
  {
    name: "threaded (reuse-port)",
    script: "multiclientsusingthreading/server.ts",
    args: ["--workers", "2", "--stats-interval", "0"],
    framing: "line",
    kind: "chat",
    idle: false,
    linuxOnly: true,
  },
  {
    name: "threaded (portable)",
    script: "multiclientsusingthreading/server.ts",
    args: ["--workers", "2", "--stats-interval", "0", "--portable"],
    framing: "line",
    kind: "chat",
    idle: false,
  },
  {
    name: "sandbox (line)",
    script: "sandbox/server.ts",
    args: ["--idle-timeout", "1"],
    framing: "line",
    kind: "chat",
    idle: true,
  },
  {
    name: "sandbox (length)",
    script: "sandbox/server.ts",
    args: ["--framing", "length", "--idle-timeout", "1"],
    framing: "length",
    kind: "chat",
    idle: true,
  },
];

/**
 * A raw hostile connection. A background reader keeps what the server sends
 * it (up to 1 MiB), so the server is never held up by it unless a case
 * wants that.
 */
class Hostile implements AsyncDisposable {
  readonly conn: Deno.TcpConn;
  readonly #parts: Uint8Array[] = [];
  #kept = 0;
  /** How the server's side ended: end of stream, or an error. */
  readonly ended: Promise<"eof" | "error">;

  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
    this.ended = this.#drain();
  }

  async #drain(): Promise<"eof" | "error"> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await this.conn.read(buffer);
        if (n === null) return "eof";
        if (this.#kept < MiB) {
          this.#parts.push(buffer.slice(0, n));
          this.#kept += n;
        }
      }
    } catch {
      return "error";
    }
  }

  /** Everything received so far, as text (length prefixes included). */
  get text(): string {
    return new TextDecoder().decode(concat(this.#parts));
  }

  /** Everything received so far, as bytes. */
  get bytes(): Uint8Array {
    return concat(this.#parts);
  }

  /** Writes `bytes`; a server that hangs up mid-write is not an error here. */
  async write(bytes: Uint8Array): Promise<void> {
    try {
      await writeAll(this.conn, bytes);
    } catch {
      // refused mid-write: what the server said is checked by the case
    }
  }

  /** Waits until what was received matches `pattern`. */
  async waitFor(pattern: RegExp, ms = 10_000): Promise<RegExpMatchArray> {
    const deadline = Date.now() + ms;
    for (;;) {
      const match = this.text.match(pattern);
      if (match) return match;
      if (Date.now() > deadline) {
        throw new Error(`no ${pattern} within ${ms} ms; got ${this.text}`);
      }
      await delay(10);
    }
  }

  /** Resolves when the server has closed this connection; throws after `ms`. */
  async closedByServer(ms: number): Promise<void> {
    await within(
      this.ended,
      ms,
      `the server kept the connection past ${ms} ms`,
    );
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.conn);
    await this.ended.catch(() => {});
  }
}

/** One message in `framing`, from raw bytes. */
function frame(framing: FramingName, payload: Uint8Array): Uint8Array {
  return framing === "line"
    ? concat([payload, enc.encode("\n")])
    : encodeFrame(payload);
}

/** What the sender must get. */
type SenderOutcome =
  /** Still served: a later message goes through. */
  | { stays: true }
  /** Told (text matching) and disconnected. */
  | { closed: RegExp }
  /** It reset the connection itself: nothing to hear. */
  | { reset: true };

/** A hostile case. */
interface Case {
  name: string;
  /** Only for one framing. */
  framing?: FramingName;
  /**
   * What the hostile client does. A case that connects a client of its own
   * resolves with that client's name.
   */
  act(h: Hostile, t: Target, server: Server): Promise<string | void>;
  /** What it gets for it. */
  sender(t: Target): SenderOutcome;
  /** Echo servers: exactly the bytes that must come back to it. */
  echoed?(t: Target): Uint8Array;
  /** Chat servers: what the others see from it, in order, exactly once. */
  relayed?(t: Target, name: string): (string | RegExp)[];
  /** Chat servers: a notice the others must get. */
  notice?(name: string): RegExp;
}

const INVALID_UTF8 = Uint8Array.of(0xff, 0xfe, 0xc3, 0x28, 0x78);
const ESCAPES = "\x1b[2J\x1b]0;owned\x07\x1b[31mred";
/** 10,000 one-byte writes: the messages they make up. */
function tinyMessages(framing: FramingName): string[] {
  const size = framing === "line" ? 5 : 8; // "0042\n" or a prefix and "0042"
  return Array.from(
    { length: Math.floor(10_000 / size) },
    (_, i) => String(i).padStart(4, "0"),
  );
}

const left = (name: string) => new RegExp(`^\\* ${name} has left`);
const idleOrStays = (t: Target): SenderOutcome =>
  t.idle ? { closed: /idle for 1 s/ } : { stays: true };

const CASES: Case[] = [
  {
    name: "invalid UTF-8",
    act: (h, t) => h.write(frame(t.framing, INVALID_UTF8)),
    sender: () => ({ stays: true }),
    echoed: (t) => frame(t.framing, INVALID_UTF8),
    relayed: (_, name) => [`${name}: \ufffd\ufffd\ufffd(x`],
  },
  {
    name: "NUL bytes",
    act: (h, t) => h.write(frame(t.framing, enc.encode("a\0b\0"))),
    sender: () => ({ stays: true }),
    echoed: (t) => frame(t.framing, enc.encode("a\0b\0")),
    relayed: (_, name) => [`${name}: a^@b^@`],
  },
  {
    name: "a bare \\r",
    act: (h, t) => h.write(frame(t.framing, enc.encode("over\rwrite"))),
    sender: () => ({ stays: true }),
    echoed: (t) => frame(t.framing, enc.encode("over\rwrite")),
    relayed: (_, name) => [`${name}: over^Mwrite`],
  },
  {
    name: "terminal escape sequences",
    act: (h, t) => h.write(frame(t.framing, enc.encode(ESCAPES))),
    sender: () => ({ stays: true }),
    echoed: (t) => frame(t.framing, enc.encode(ESCAPES)),
    relayed: (_, name) => [`${name}: ^[[2J^[]0;owned^G^[[31mred`],
  },
  {
    name: "a 1-byte message",
    act: (h, t) => h.write(frame(t.framing, enc.encode("x"))),
    sender: () => ({ stays: true }),
    echoed: (t) => frame(t.framing, enc.encode("x")),
    relayed: (_, name) => [`${name}: x`],
  },
  {
    name: "a 10 MiB message",
    act: (h, t) => h.write(frame(t.framing, new Uint8Array(10 * MiB).fill(97))),
    sender: () => ({ closed: /(longer than|over) the maximum of 65536 bytes/ }),
    echoed: () => new Uint8Array(),
    relayed: () => [],
    notice: left,
  },
  {
    name: "10,000 one-byte writes",
    async act(h, t) {
      const bytes = concat(
        tinyMessages(t.framing).map((m) => FRAMINGS[t.framing].encode(m)),
      );
      for (const byte of bytes) await h.write(Uint8Array.of(byte));
    },
    sender: () => ({ stays: true }),
    echoed: (t) =>
      concat(tinyMessages(t.framing).map((m) => FRAMINGS[t.framing].encode(m))),
    relayed: (t, name) => tinyMessages(t.framing).map((m) => `${name}: ${m}`),
  },
  {
    name: "a client that connects and says nothing",
    act: () => Promise.resolve(),
    sender: idleOrStays,
    echoed: () => new Uint8Array(),
    relayed: () => [],
  },
  {
    name: "slowloris: half a message, then nothing",
    act: (h, t) =>
      h.write(frame(t.framing, enc.encode("half a message")).subarray(0, 9)),
    sender: idleOrStays,
    echoed: () => new Uint8Array(),
    relayed: () => [], // for a server that waits, the half joins "still here"
  },
  {
    name: "a reset (RST) in the middle of a message",
    async act(h, t, server) {
      // This connection leaves quietly; a Python client does the reset.
      closeQuietly(h.conn);
      const half = frame(t.framing, enc.encode("cut short")).subarray(0, 7);
      const greeting = await resetClient(server.port, half);
      return greeting.match(/welcome ((?:client|guest)-\d+)/)?.[1] ?? "";
    },
    sender: () => ({ reset: true }),
    relayed: () => [],
    notice: left,
  },
  {
    name: "200 clients that connect and reset (RST) at once",
    async act(h, _t, server) {
      // Some reset before accept() returns; on the iterative server, all of
      // them do, in the backlog behind this connection.
      await resetClient(server.port, new Uint8Array(), {
        first: "nothing",
        times: 200,
      });
      closeQuietly(h.conn);
    },
    sender: () => ({ reset: true }),
    relayed: () => [],
  },
  {
    name: "a length prefix of 1 GiB",
    framing: "length",
    act: (h) => h.write(Uint8Array.of(0x40, 0, 0, 0, 1, 2, 3)),
    sender: () => ({ closed: /frame of 1073741824 bytes is over the maximum/ }),
    relayed: () => [],
    notice: left,
  },
  {
    name: "a length prefix of 0xFFFFFFFF",
    framing: "length",
    act: (h) => h.write(Uint8Array.of(0xff, 0xff, 0xff, 0xff)),
    sender: () => ({ closed: /frame of 4294967295 bytes is over the maximum/ }),
    relayed: () => [],
    notice: left,
  },
  {
    name: "a truncated frame, then end of stream",
    framing: "length",
    async act(h) {
      await h.write(concat([Uint8Array.of(0, 0, 0, 100), new Uint8Array(10)]));
      await h.conn.closeWrite();
    },
    sender: () => ({ closed: /$/ }),
    relayed: () => [],
    notice: (name) =>
      new RegExp(
        `^\\* ${name} has left \\(stream ended in the middle of a frame: got 10 of 100`,
      ),
  },
];

/** Two bystanders chatting through a chat server. */
interface Bystanders {
  a: LineConn;
  b: LineConn;
  aName: string;
  bName: string;
  /** Lines `b` read while keeping the room alive, not yet checked. */
  held: string[];
}

/**
 * The others' view: `a` says a probe, `b` reads until it has the probe,
 * everything `relayed` from the hostile client, and the `notice`. Every
 * line `b` got is checked for raw control characters; the hostile client's
 * lines must be exactly `relayed`, in order.
 */
async function checkOthers(
  room: Bystanders,
  probe: string,
  expect: { name: string; relayed: (string | RegExp)[]; notice?: RegExp },
): Promise<void> {
  await room.a.send(probe);
  const fromHostile: string[] = [];
  let probed = false;
  let noticed = expect.notice === undefined;
  while (!probed || !noticed || fromHostile.length < expect.relayed.length) {
    const line = room.held.shift() ?? await room.b.line();
    assert(line !== null, "a bystander was disconnected");
    assertNotMatch(line, RAW_CONTROL, "a raw control character got through");
    if (line === `${room.aName}: ${probe}`) probed = true;
    else if (line.startsWith(`${expect.name}: `)) fromHostile.push(line);
    else if (expect.notice?.test(line)) noticed = true;
  }
  assertEquals(
    fromHostile.length,
    expect.relayed.length,
    `relayed lines: ${JSON.stringify(fromHostile)}`,
  );
  expect.relayed.forEach((want, i) =>
    typeof want === "string"
      ? assertEquals(fromHostile[i], want)
      : assertMatch(fromHostile[i], want)
  );
  // and back the other way, so a's side is read too
  await room.b.send(probe);
  await room.a.until(new RegExp(`^${room.bName}: ${probe}$`));
}

/** The bystanders exchange a line each way every 200 ms until `until`. */
async function keepTalking(
  room: Bystanders,
  until: Promise<unknown>,
): Promise<void> {
  let done = false;
  const stop = new AbortController();
  until.finally(() => {
    done = true;
    stop.abort();
  }).catch(() => {});
  for (let i = 0; !done; i++) {
    await room.a.send(`keep-alive ${i}`);
    for (;;) {
      const line = await room.b.line();
      if (line === `${room.aName}: keep-alive ${i}`) break;
      if (line === null) throw new Error("a bystander was disconnected");
      room.held.push(line); // checked by checkOthers
    }
    await room.b.send(`keep-alive ${i}`);
    await room.a.until(new RegExp(`^${room.bName}: keep-alive ${i}$`));
    await delay(200, { signal: stop.signal }).catch(() => {});
  }
}

/** The iterative server's view: the next client is greeted and served. */
async function checkNextClient(server: Server, probe: string): Promise<void> {
  using next = new LineConn(await connect(server.port));
  assertMatch((await next.line())!, /^\* hello /);
  await next.send(probe);
  assertEquals(await next.line(), probe);
}

async function runCase(
  server: Server,
  t: Target,
  c: Case,
  room: Bystanders | null,
  index: number,
): Promise<void> {
  await using h = new Hostile(await connect(server.port));
  const welcome = t.kind === "chat"
    ? /welcome ((?:client|guest)-\d+)/
    : /hello/;
  let name = (await h.waitFor(welcome))[1] ?? "";
  // Bystanders talk while the hostile client acts, or an idle timeout
  // would take them when acting is slow (a Python client starting, say).
  const acting = c.act(h, t, server);
  const [other] = await Promise.all([
    acting,
    room && keepTalking(room, acting),
  ]);
  if (other) name = other;

  const outcome = c.sender(t);
  const relayed = c.relayed?.(t, name) ?? [];
  if ("stays" in outcome) {
    // still served: a complete message afterwards goes through
    await h.write(FRAMINGS[t.framing].encode("still here"));
    if (t.kind === "chat") relayed.push(/still here$/);
    else await h.waitFor(/still here\n$/);
  } else if ("closed" in outcome) {
    // Bystanders talk meanwhile, or an idle timeout would take them too.
    await Promise.all([
      h.closedByServer(10_000),
      room && keepTalking(room, h.ended),
    ]);
    assertMatch(h.text, outcome.closed);
  }
  if (t.kind === "echo") {
    if (!("reset" in outcome)) await checkEchoed(h, c.echoed?.(t));
    closeQuietly(h.conn); // the next client waits for this one
    await checkNextClient(server, `probe ${index}`);
  } else {
    await checkOthers(room!, `probe ${index}`, {
      name,
      relayed,
      notice: c.notice?.(name),
    });
  }
}

/** The echo server's answer: its greeting, then exactly `echoed`. */
async function checkEchoed(
  h: Hostile,
  echoed: Uint8Array = new Uint8Array(),
): Promise<void> {
  const greeting = enc.encode((await h.waitFor(/^\* hello [^\n]*\n/))[0]);
  const want = concat([greeting, echoed]);
  assertEquals(h.bytes.subarray(0, want.length), want, "echoed bytes");
}

for (const t of TARGETS) {
  Deno.test({
    name:
      `hostile clients vs ${t.name}: senders told or served, server alive, others untouched, memory bounded`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(t.script, t.args);
      let room: Bystanders | null = null;
      if (t.kind === "chat") {
        const [a, aName] = await joinChat(server, t.framing);
        const [b, bName] = await joinChat(server, t.framing);
        room = { a, b, aName, bName, held: [] };
        await a.until(new RegExp(`^\\* ${bName} has joined`));
      }
      const before = await rssBytes(server.process.pid);
      try {
        const cases = CASES.filter((c) =>
          (c.framing ?? t.framing) === t.framing &&
          (HAVE_PYTHON || !c.name.includes("RST"))
        );
        if (!HAVE_PYTHON) {
          console.log(
            "  skipped the reset case: it needs python3 to send an RST",
          );
        }
        for (const [i, c] of cases.entries()) {
          try {
            await runCase(server, t, c, room, i);
          } catch (error) {
            throw new Error(
              `case "${c.name}": ${
                (error as Error).message
              }\nserver said:\n${server.stdout.text}\n${server.stderr.text}`,
              {
                cause: error,
              },
            );
          }
        }
        const after = await rssBytes(server.process.pid);
        if (before !== null && after !== null) {
          console.log(
            `  ${t.name}: RSS ${(before / MiB).toFixed(1)} -> ${
              (after / MiB).toFixed(1)
            } MiB over ${cases.length} hostile clients`,
          );
          assert(
            after - before < RSS_GROWTH_LIMIT,
            `server RSS grew by ${((after - before) / MiB).toFixed(1)} MiB`,
          );
        }
        assertNotMatch(server.stderr.text, /^\s+at /m, "a stack trace");
      } finally {
        if (room) {
          room.a[Symbol.dispose]();
          room.b[Symbol.dispose]();
        }
      }
    },
  });
}

// The basic server serves one client and exits: one server per case, and
// every byte comes back exactly, however it was sent.
const BASIC_CASES: [string, Uint8Array, number][] = [
  [
    "invalid UTF-8, NUL, bare \\r and escapes",
    concat([INVALID_UTF8, enc.encode(`a\0b\rc${ESCAPES}\r\n`)]),
    Infinity,
  ],
  ["a 10 MiB line", new Uint8Array(10 * MiB).fill(97), 64 * 1024],
  ["10,000 one-byte writes", new Uint8Array(10_000).fill(98), 1],
];

for (const [name, bytes, chunk] of BASIC_CASES) {
  Deno.test(`hostile clients vs basic: ${name} comes back byte for byte, memory bounded`, async () => {
    await using server = await startServer("basic/server.ts");
    const conn = await connect(server.port);
    const before = await rssBytes(server.process.pid);
    const reading = readAll(conn);
    for (let i = 0; i < bytes.length; i += chunk) {
      await writeAll(conn, bytes.subarray(i, i + chunk));
    }
    const after = await rssBytes(server.process.pid); // it exits once done
    await conn.closeWrite();
    const back = await reading;
    conn.close();
    assertEquals(back.length, bytes.length);
    assert(back.every((b, i) => b === bytes[i]), "bytes differ");
    assertEquals((await server.exited(5_000)).code, 0);
    if (before !== null && after !== null) {
      assert(after - before < RSS_GROWTH_LIMIT, "basic server RSS grew");
    }
  });
}

/** `t`'s arguments without `--idle-timeout`, for tests whose clients only listen. */
/** Two members of `server`'s chat, `a` and `b`, for round trips between them. */
async function twoMembers(
  server: Server,
  framing: FramingName,
): Promise<{ a: LineConn; b: LineConn } & Disposable> {
  const [a] = await joinChat(server, framing);
  try {
    const [b] = await joinChat(server, framing);
    return {
      a,
      b,
      [Symbol.dispose]() {
        a[Symbol.dispose]();
        b[Symbol.dispose]();
      },
    };
  } catch (error) {
    a[Symbol.dispose]();
    throw error;
  }
}

function withoutIdle(t: Target): string[] {
  const idle = t.args.indexOf("--idle-timeout");
  return idle === -1
    ? t.args
    : t.args.filter((_, i) => i !== idle && i !== idle + 1);
}

// A crowd that comes and goes (a connect-and-reset storm, gently): each join
// and leave would be one notice to everyone, N writes per connection. Past a
// burst they are counted instead; every one is still accounted for.
const CROWD = 300;

for (
  const t of TARGETS.filter((t) => t.kind === "chat" && t.framing === "line")
) {
  Deno.test({
    name:
      `a crowd of ${CROWD} joining and leaving ${t.name}: notices past a burst are summed up, every one accounted for`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      // The observer only listens: no idle timeout.
      await using server = await startServer(t.script, withoutIdle(t));
      const [observer] = await joinChat(server);
      using _ = observer;
      const chats = t.script.includes("threading") ? 2 : 1; // one per worker
      const started = Date.now();
      let [joins, leaves, oneByOne, summaries] = [0, 0, 0, 0];
      const counting = (async () => {
        while (joins < CROWD || leaves < CROWD) {
          const line = await observer.line(10_000);
          if (line === null) throw new Error("the server closed the observer");
          const summed = line.match(NOTICE_SUMMARY);
          if (/^\* (guest|client)-\d+ has (joined|left)/.test(line)) {
            oneByOne++;
            if (line.includes("has joined")) joins++;
            else leaves++;
          } else if (summed) {
            summaries++;
            joins += Number(summed[1] ?? 0);
            leaves += Number(summed[2] ?? 0);
          }
        }
      })();
      for (let i = 0; i < CROWD; i += 50) {
        await Promise.all(
          Array.from({ length: 50 }, async () => {
            const [member] = await joinChat(server);
            member[Symbol.dispose]();
          }),
        );
      }
      await within(
        counting,
        30_000,
        `accounted ${joins} joins, ${leaves} leaves`,
      );
      const seconds = (Date.now() - started) / 1000;
      assertEquals([joins, leaves], [CROWD, CROWD]);
      const budget = chats *
        (DEFAULT_NOTICE_BURST + DEFAULT_NOTICES_PER_SECOND * seconds);
      assert(
        oneByOne <= budget,
        `${oneByOne} notices one by one in ${seconds} s, past ${budget}`,
      );
      assert(summaries > 0, "no summary");
    },
  });
}

// Clients that ask and never read the answers: each answer is made for its
// asker alone (3 bytes of an unknown command buy 46 of answer), so the
// answers all clients leave unread have a server-wide bound, --max-replies.
// Each client's command budget comes first by default: lifted here (and
// below), the bounds behind it are what these tests try.
const ASKERS = 3;
const NO_COMMAND_BUDGET = ["--max-commands", "1000000000"];

for (
  const t of TARGETS.filter((t) => t.kind === "chat" && t.framing === "line")
) {
  Deno.test({
    name:
      `${ASKERS} clients asking and never reading the answers, ${t.name}: past --max-replies the one holding the most is cut off; the others chat on`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      // The bystanders only listen: no idle timeout.
      await using server = await startServer(t.script, [
        ...withoutIdle(t),
        ...NO_COMMAND_BUDGET,
        "--max-replies",
        "65536",
        "--outbox-limit", // so that no one outbox's own bound comes first
        String(64 << 20),
      ]);
      const [a, nameA] = await joinChat(server);
      const [b] = await joinChat(server);
      using _a = a;
      using _b = b;
      const askers = await Promise.all(
        Array.from({ length: ASKERS }, () => connect(server.port)),
      );
      // 6 MB of answers each: more than the kernel's buffers take for a
      // client that reads nothing, so the rest waits in the server.
      const asks = enc.encode("/x\n".repeat(140_000));
      const writes = askers.map((conn) => writeAll(conn, asks).catch(() => {}));
      const cut =
        /^\* (guest|client)-\d+ has left \(too slow: \d+ bytes of replies unread when the server was full\)$/;
      for (let i = 0; i < ASKERS; i++) await b.until(cut, 20_000);
      await within(Promise.all(writes), 10_000, "an asker was never cut off");
      await a.send("still here");
      await b.until(new RegExp(`^${nameA}: still here$`));
      askers.forEach(closeQuietly);
    },
  });
}

// The other side of --max-replies: answers to clients that read them leave
// within milliseconds, however many come at once; none is judged unread.
const WHO_STORM = 200;

for (
  const t of TARGETS.filter((t) => t.kind === "chat" && t.framing === "line")
) {
  Deno.test({
    name:
      `${WHO_STORM} clients sending /who at once to ${t.name} with the smallest --max-replies: every one is answered, none cut off`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(t.script, [
        ...withoutIdle(t),
        "--max-replies",
        "16384",
      ]);
      const members: LineConn[] = [];
      try {
        for (let i = 0; i < WHO_STORM; i++) {
          const [member] = await joinChat(server);
          members.push(member);
          const name = `member-${i}-`.padEnd(32, "x"); // the longest name
          await member.send(`/nick ${name}`);
          await member.until(new RegExp(`^\\* you are now ${name}$`));
        }
        // Some 7 KB of answer each: 1.4 MB at once, 85 times the bound.
        await Promise.all(members.map((m) => m.send("/who")));
        await Promise.all(
          members.map((m) => m.until(/^\* \d+ here: /, 20_000)),
        );
        assertNotMatch(server.stdout.text, /replies unread/);
      } finally {
        members.forEach((m) => m[Symbol.dispose]());
      }
    },
  });
}

// One read of short lines from a long name relays many times its size: 2
// bytes of "a\n" become 100 with 32 three-byte characters in front. Sent as
// one broadcast, 64 KiB of them pushed every reader past its bound at once;
// they go in pieces, paced, and every reader keeps up.
const AMPLIFIED = 131_072;

for (
  const [t, commands] of TARGETS.filter((t) => t.kind === "chat").flatMap((
    t,
  ) => [[t, false], [t, true]] as const)
) {
  Deno.test({
    name: `short lines from a long name${
      commands ? ", a command every 800" : ""
    }, ${t.name}: relayed in paced pieces, every reader gets all ${AMPLIFIED} and none is cut off`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(t.script, withoutIdle(t));
      const [a] = await joinChat(server, t.framing);
      const [b] = await joinChat(server, t.framing);
      const [sender] = await joinChat(server, t.framing);
      using _a = a;
      using _b = b;
      using _sender = sender;
      const name = "名".repeat(32);
      await sender.send(`/nick ${name}`);
      await sender.until(/^\* you are now /);
      const one = frame(t.framing, enc.encode("a"));
      // A command ends a batch: the lines between two must be paced too.
      const ask = commands
        ? frame(t.framing, enc.encode("/x"))
        : new Uint8Array();
      const every = 800;
      const all = new Uint8Array(
        one.length * AMPLIFIED + ask.length * Math.floor(AMPLIFIED / every),
      );
      for (let i = 0, at = 0; i < AMPLIFIED; i++) {
        all.set(one, at);
        at += one.length;
        if ((i + 1) % every === 0) {
          all.set(ask, at);
          at += ask.length;
        }
      }
      const writing = writeAll(sender.conn, all);
      const heard = `${name}: a`;
      const count = async (reader: LineConn): Promise<number> => {
        let got = 0;
        while (got < AMPLIFIED) {
          const line = await reader.line(10_000);
          if (line === null) {
            throw new Error(`a reader was cut off after ${got} lines`);
          }
          if (line === heard) got++;
        }
        return got;
      };
      const counts = await within(
        Promise.all([count(a), count(b)]),
        60_000,
        "the readers never got every line",
      );
      assertEquals(counts, [AMPLIFIED, AMPLIFIED]);
      await writing;
    },
  });
}

// Empty messages relay nothing, so a flood of them never waits on a write;
// their reads were all ready at once, and the event loop never turned for
// anyone else: every other client's line waited seconds.
const FLOODERS = 3;
const ROUND_TRIPS = 20;
const ROUND_TRIP_LIMIT_MS = 1_000;
/** Flooded before the round trips: the old loop held out for some 50 MB. */
const FLOOD_FIRST = 64 * MiB;

for (const t of TARGETS.filter((t) => t.kind === "chat")) {
  Deno.test({
    name:
      `${FLOODERS} clients flooding empty messages at ${t.name}: another client's line still arrives within ${ROUND_TRIP_LIMIT_MS} ms`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(t.script, withoutIdle(t));
      using members = await twoMembers(server, t.framing);
      const { a, b } = members;
      const blob = Flood.blob(frame(t.framing, new Uint8Array(0)));
      const flooders: Hostile[] = [];
      const floods: Flood[] = [];
      try {
        for (let i = 0; i < FLOODERS; i++) {
          const flooder = new Hostile(await connect(server.port));
          flooders.push(flooder);
          floods.push(new Flood(flooder.conn, blob));
        }
        const flooded = () => floods.reduce((sum, f) => sum + f.written, 0);
        await waitUntil(() => flooded() >= FLOOD_FIRST, 60_000, "the flood");
        await roundTrips(a, b, {
          count: ROUND_TRIPS,
          limitMs: ROUND_TRIP_LIMIT_MS,
        });
        // served slower, never cut off
        assertEquals(floods.map((f) => f.failed), floods.map(() => false));
      } finally {
        for (const flooder of flooders) await flooder[Symbol.asyncDispose]();
        for (const flood of floods) await flood[Symbol.asyncDispose]();
      }
    },
  });
}

// A client that asks (unknown commands: small answers) and never reads held
// its outbox between half its bound and the bound: the pacing took that for a
// slow reader and held every sender up for the stall time (500 ms), once per
// connection; cut, it came back. Its own answers no longer hold anyone up, a
// read of thousands of commands is answered in turns, and (portable) their
// bytes no longer hold the other clients' bytes back from the workers.
const NON_READERS = 2;
const ASKING_LIMIT_MS = 400;

for (const t of TARGETS.filter((t) => t.kind === "chat")) {
  Deno.test({
    name:
      `${NON_READERS} clients asking without reading at ${t.name}, back as soon as cut: another client's line still arrives within ${ASKING_LIMIT_MS} ms`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(t.script, [
        ...withoutIdle(t),
        ...NO_COMMAND_BUDGET,
      ]);
      using members = await twoMembers(server, t.framing);
      const { a, b } = members;
      const blob = Flood.blob(frame(t.framing, enc.encode("/x")));
      const open = new Set<Deno.Conn>();
      let asking = true;
      let cuts = 0;
      const askers = Array.from({ length: NON_READERS }, async () => {
        while (asking) {
          const conn = await connect(server.port);
          open.add(conn);
          try {
            for (;;) await writeAll(conn, blob);
          } catch {
            if (asking) cuts++;
          }
          open.delete(conn);
          closeQuietly(conn);
        }
      });
      try {
        await waitUntil(() => cuts >= NON_READERS, 20_000, "an asker cut off");
        await roundTrips(a, b, {
          count: ROUND_TRIPS,
          limitMs: ASKING_LIMIT_MS,
        });
      } finally {
        asking = false;
        open.forEach(closeQuietly);
        await Promise.all(askers);
      }
    },
  });
}

// A crowd that sends one burst of commands each and never reads: answered in
// full, 200 × 20,000 answers were seconds of the server's time, and every
// other client's line waited through them. Each client's command budget
// (100 at once, then 50 a second) leaves the rest unanswered, said once a read.
const BURSTERS = 200;
const BURST = 20_000;
const BURST_LIMIT_MS = 400;

for (const t of TARGETS.filter((t) => t.kind === "chat")) {
  Deno.test({
    name:
      `${BURSTERS} clients each sending ${BURST} commands at once to ${t.name}: about ${
        COMMANDS_PER_SECOND * 2
      } answered each, and another client's line arrives within ${BURST_LIMIT_MS} ms`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using server = await startServer(t.script, withoutIdle(t));
      using members = await twoMembers(server, t.framing);
      const { a, b } = members;
      const ask = frame(t.framing, enc.encode("/x"));
      const burst = Flood.blob(ask, BURST * ask.length);
      const bursters = await Promise.all(
        Array.from({ length: BURSTERS }, () => connect(server.port)),
      );
      try {
        await Promise.all(bursters.map((conn) => writeAll(conn, burst)));
        await roundTrips(a, b, { count: ROUND_TRIPS, limitMs: BURST_LIMIT_MS });
        // One that reads: its burst, then /quit, whose "bye" ends the count.
        const [asker] = await joinChat(server, t.framing);
        using _asker = asker;
        const started = performance.now();
        await writeAll(
          asker.conn,
          concat([burst, frame(t.framing, enc.encode("/quit"))]),
        );
        let answers = 0;
        let refusals = 0;
        for (;;) {
          const line = await asker.line();
          if (line === null) throw new Error("closed before its * bye");
          if (line === "* bye") break;
          if (line.startsWith("* unknown command /x")) answers++;
          else if (line.startsWith("* too many commands: ")) refusals++;
        }
        const seconds = (performance.now() - started) / 1000;
        const budget = 2 * COMMANDS_PER_SECOND +
          Math.ceil(seconds * COMMANDS_PER_SECOND);
        assert(
          answers >= 2 * COMMANDS_PER_SECOND && answers <= budget,
          `${answers} answers in ${seconds.toFixed(2)} s (budget ${budget})`,
        );
        assert(refusals >= 1, "told that the rest went unanswered");
      } finally {
        bursters.forEach(closeQuietly);
      }
    },
  });
}

/**
 * A TCP proxy to `port` that, once told to, flips a byte inside the next
 * TLS record the client sends: the server's read of it fails to decrypt.
 */
class Corrupter implements AsyncDisposable {
  readonly #listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly #conns: Deno.Conn[] = [];
  readonly #piping: Promise<void>;
  corrupt = false;

  constructor(port: number) {
    this.#piping = this.#serve(port);
  }

  get port(): number {
    return this.#listener.addr.port;
  }

  async #serve(port: number): Promise<void> {
    const client = await this.#listener.accept();
    const server = await Deno.connect({ hostname: "127.0.0.1", port });
    this.#conns.push(client, server);
    await Promise.all([
      this.#pipe(client, server, true),
      this.#pipe(server, client, false),
    ]);
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, up: boolean): Promise<void> {
    const buffer = new Uint8Array(64 * 1024);
    try {
      for (
        let n = await from.read(buffer);
        n !== null;
        n = await from.read(buffer)
      ) {
        const chunk = buffer.subarray(0, n);
        if (up && this.corrupt && n > 10) {
          chunk[10] ^= 0xff; // inside the record's ciphertext
          this.corrupt = false;
        }
        await writeAll(to, chunk);
      }
    } catch {
      // either side gone: the test says what should have happened
    } finally {
      closeQuietly(to);
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    closeQuietly(this.#listener);
    this.#conns.forEach(closeQuietly);
    await this.#piping.catch(() => {});
  }
}

for (
  const t of TARGETS.filter((t) => t.kind === "chat" && t.framing === "line")
) {
  Deno.test({
    name:
      `a TLS record that does not decrypt, at ${t.name} --tls: its sender leaves, the server and the others go on`,
    ignore: t.linuxOnly === true && Deno.build.os !== "linux",
    async fn() {
      await using files = await certificateDir();
      await using server = await startServer(t.script, [
        ...withoutIdle(t),
        ...tlsFlags(files),
      ]);
      const caCerts = [await Deno.readTextFile(files.cert)];
      const join = async (port: number): Promise<[LineConn, string]> => {
        const conn = new LineConn(
          await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts }),
        );
        const welcome = (await conn.line())!;
        return [conn, welcome.match(/^\* welcome (guest-\d+)/)![1]];
      };
      const members: LineConn[] = [];
      try {
        for (let i = 0; i < 4; i++) members.push((await join(server.port))[0]);
        await using corrupter = new Corrupter(server.port);
        const [hostile, name] = await join(corrupter.port);
        members.push(hostile);
        corrupter.corrupt = true;
        await hostile.send("this record will not decrypt");
        const left = new RegExp(`^\\* ${name} has left \\(TLS error: `);
        for (const member of members.slice(0, 4)) await member.until(left);
        await members[0].send("still here");
        for (const member of members.slice(1, 4)) {
          await member.until(/: still here$/);
        }
        assertNotMatch(server.stderr.text, /Uncaught|crashed/);
      } finally {
        members.forEach((m) => m[Symbol.dispose]());
      }
    },
  });
}
