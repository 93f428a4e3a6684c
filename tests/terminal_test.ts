import { assertEquals } from "./_assert.ts";
import {
  type Console,
  isQuit,
  type Reader,
  readLines,
  runTerminal,
} from "../lib/terminal.ts";
import { readAll } from "./_helpers.ts";
import { writeAll } from "../lib/io.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A console fed from a list; `hold` keeps input open until released. */
class FakeConsole implements Console {
  shown = "";
  closed = false;
  interrupted = false;
  release: () => void = () => {};
  readonly #held: Promise<void>;

  constructor(readonly input: string[], hold = false) {
    this.#held = hold
      ? new Promise((resolve) => (this.release = resolve))
      : Promise.resolve();
  }

  async *lines(): AsyncGenerator<Uint8Array> {
    for (const line of this.input) yield enc.encode(line);
    await this.#held;
  }

  show(bytes: Uint8Array): Promise<void> {
    this.shown += dec.decode(bytes);
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
  }
}

/** A connected pair of sockets on loopback. */
async function socketPair(): Promise<[Deno.TcpConn, Deno.TcpConn]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const pair = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return pair;
}

/** The far end: echoes, upper-cased, after a delay, until end of stream. */
async function slowUpperEcho(conn: Deno.Conn): Promise<string> {
  const received = dec.decode(await readAll(conn));
  await new Promise((resolve) => setTimeout(resolve, 50)); // replies due after our EOF
  await writeAll(conn, enc.encode(received.toUpperCase()));
  conn.close();
  return received;
}

Deno.test("runTerminal: end of input half-closes and still shows every reply due", async () => {
  const [client, server] = await socketPair();
  const console = new FakeConsole(["one\n", "two"]);
  const [end, received] = await Promise.all([
    runTerminal(client, { console }),
    slowUpperEcho(server),
  ]);
  client.close();
  assertEquals(end, "input-ended");
  assertEquals(received, "one\ntwo");
  assertEquals(console.shown, "ONE\nTWO");
  assertEquals(console.closed, true);
});

Deno.test("runTerminal: 'quit' is not sent and ends the session", async () => {
  const [client, server] = await socketPair();
  const console = new FakeConsole(["a\n", " quit \r\n", "b\n"], true);
  const [end, received] = await Promise.all([
    runTerminal(client, { console }),
    slowUpperEcho(server),
  ]);
  client.close();
  assertEquals(end, "quit");
  assertEquals(received, "a\n");
  assertEquals(console.shown, "A\n");
});

Deno.test("runTerminal: the server closing first is reported as server-closed", async () => {
  const [client, server] = await socketPair();
  const console = new FakeConsole(["hi\n"], true);
  const running = runTerminal(client, { console });
  await writeAll(server, enc.encode("bye\n"));
  server.close();
  assertEquals(await running, "server-closed");
  assertEquals(console.shown, "bye\n");
  console.release();
  client.close();
});

Deno.test("runTerminal: encode and render shape what is sent and shown", async () => {
  const [client, server] = await socketPair();
  const console = new FakeConsole(["x\n"]);
  const [, received] = await Promise.all([
    runTerminal(client, {
      console,
      encode: (line) => enc.encode(`[${dec.decode(line).trim()}]`),
      render: (chunk) => enc.encode(`<${dec.decode(chunk)}>`),
    }),
    slowUpperEcho(server),
  ]);
  client.close();
  assertEquals(received, "[x]");
  assertEquals(console.shown, "<[X]>");
});

Deno.test("readLines: lines keep their ends; a last partial line is kept", async () => {
  const chunks = [enc.encode("a\nb"), enc.encode("c\r\nd")];
  const reader: Reader = {
    read(p) {
      const chunk = chunks.shift();
      if (!chunk) return Promise.resolve(null);
      p.set(chunk);
      return Promise.resolve(chunk.length);
    },
  };
  const lines = (await Array.fromAsync(readLines(reader))).map((l) =>
    dec.decode(l)
  );
  assertEquals(lines, ["a\n", "bc\r\n", "d"]);
});

Deno.test("isQuit: the word alone, any line end, not inside other text", () => {
  assertEquals(isQuit(enc.encode("quit"), "quit"), true);
  assertEquals(isQuit(enc.encode("quit\r\n"), "quit"), true);
  assertEquals(isQuit(enc.encode("quit now\n"), "quit"), false);
  assertEquals(isQuit(enc.encode("quit\n"), null), false);
});
