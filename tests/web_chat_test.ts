import { Buffer } from "node:buffer";
import net from "node:net";
import {
  assert,
  assertEquals,
  assertMatch,
  assertStringIncludes,
} from "./_assert.ts";
import { closeQuietly, writeAll } from "../lib/io.ts";
import { DEFAULT_NOTICE_BURST } from "../lib/notice_budget.ts";
import { concat } from "../lib/std.ts";
import {
  REFUSALS_LOGGED_AT_ONCE,
  sayWebListening,
  upgradeProblem,
} from "../lib/web_chat.ts";
import { ChatPage, launchBrowser, PHONE, skipBrowser } from "./_browser.ts";
import {
  connect,
  Flood,
  joinChat,
  LineConn,
  roundTrips,
  waitUntil,
  within,
} from "./_helpers.ts";
import { guest, startWebServer, WsClient, wssFirstMessage } from "./_web.ts";
import { certificateDir, tlsFlags } from "./_certificate.ts";
import { clientFrame, RawClient, rawUpgrade } from "./_websocket.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Sends a raw HTTP request on a new connection; resolves with the response head. */
async function rawRequest(port: number, request: string): Promise<string> {
  const conn = await connect(port);
  try {
    await writeAll(conn, enc.encode(request));
    return await readHead(conn);
  } finally {
    conn.close();
  }
}

/** Reads up to the end of an HTTP response head (or of the stream). */
async function readHead(conn: Deno.Conn): Promise<string> {
  const buffer = new Uint8Array(4096);
  let head = "";
  while (!head.includes("\r\n\r\n")) {
    const n = await conn.read(buffer.subarray(0, 1)); // never past the head
    if (n === null) break;
    head += dec.decode(buffer.subarray(0, n));
  }
  return head;
}

/** A WebSocket handshake, written by hand. */
function handshake(
  port: number,
  headers: Record<string, string> = {},
): string {
  const lines = [
    "GET /chat HTTP/1.1",
    `Host: 127.0.0.1:${port}`,
    "Upgrade: websocket",
    "Connection: Upgrade",
    `Sec-WebSocket-Key: ${btoa("a test nonce 16b")}`,
    "Sec-WebSocket-Version: 13",
    ...Object.entries(headers).map(([name, value]) => `${name}: ${value}`),
  ];
  return `${lines.join("\r\n")}\r\n\r\n`;
}

// ---------------------------------------------------------------------------
// Who may open the WebSocket (no server needed)

Deno.test("web: upgradeProblem lets in the page's own origin, and clients without one", () => {
  const own = new Headers({
    host: "192.168.1.23:5080",
    origin: "http://192.168.1.23:5080",
  });
  assertEquals(upgradeProblem(own), null);
  assertEquals(upgradeProblem(new Headers({ host: "127.0.0.1:5080" })), null);
  assertEquals(
    upgradeProblem(
      new Headers({ host: "[::1]:5080", origin: "http://[::1]:5080" }),
    ),
    null,
  );
  for (const host of ["mybox:5080", "mybox.local:5080", "chat.lan"]) {
    assertEquals(
      upgradeProblem(new Headers({ host, origin: `http://${host}` })),
      null,
      host,
    );
  }
});

Deno.test("web: upgradeProblem refuses another site's page", () => {
  for (
    const origin of [
      "https://evil.example",
      "http://192.168.1.23:5081",
      "https://192.168.1.23:5080",
      "null",
    ]
  ) {
    const problem = upgradeProblem(
      new Headers({ host: "192.168.1.23:5080", origin }),
    );
    assertMatch(
      problem ?? "",
      /may not join a chat served at 192\.168\.1\.23:5080/,
    );
  }
});

Deno.test("web: upgradeProblem refuses a public name pointed at this machine (DNS rebinding)", () => {
  const headers = new Headers({
    host: "evil.example:5080",
    origin: "http://evil.example:5080",
  });
  assertMatch(upgradeProblem(headers) ?? "", /open it by IP address/);
  assertEquals(upgradeProblem(headers, { ownNames: ["evil.example"] }), null); // --host evil.example
  assertMatch(
    upgradeProblem(new Headers({ host: "a b" })) ?? "",
    /^bad Host header/,
  );
});

Deno.test("web: upgradeProblem refuses a Host whose port is no port", () => {
  const at = (host: string) => upgradeProblem(new Headers({ host }));
  assertMatch(at("192.168.1.23:99999") ?? "", /^bad Host header/);
  assertMatch(at("[::1]:65536") ?? "", /^bad Host header/);
  assertEquals(at("192.168.1.23:65535"), null);
  assertEquals(at("[::1]"), null);
});

// ---------------------------------------------------------------------------
// HTTP: three things and nothing else

Deno.test("web: HTTP serves the page, its script and the WebSocket, nothing else", async (t) => {
  await using server = await startWebServer();
  const url = server.url;

  await t.step(
    "GET / is the page, UTF-8 HTML, with protective headers",
    async () => {
      const response = await fetch(url);
      const body = await response.text();
      assertEquals(response.status, 200);
      assertEquals(
        response.headers.get("content-type"),
        "text/html; charset=utf-8",
      );
      assertStringIncludes(body, '<script type="module" src="/chat.js">');
      assertEquals(response.headers.get("x-content-type-options"), "nosniff");
      assertEquals(response.headers.get("cache-control"), "no-store");
      assertEquals(response.headers.get("referrer-policy"), "no-referrer");
      const csp = response.headers.get("content-security-policy") ?? "";
      assertStringIncludes(csp, "default-src 'none'");
      assertStringIncludes(csp, "script-src 'self'");
      assertStringIncludes(
        csp,
        `connect-src 'self' ws://127.0.0.1:${server.web}`,
      );
      assertStringIncludes(csp, "frame-ancestors 'none'");
      // The inline style sheet is allowed by its hash, and nothing else is.
      const style = body.match(/<style>([\s\S]*?)<\/style>/)![1];
      const digest = new Uint8Array(
        await crypto.subtle.digest("SHA-256", enc.encode(style)),
      );
      const hash = btoa(String.fromCharCode(...digest));
      assertStringIncludes(csp, `style-src 'sha256-${hash}'`);
    },
  );

  await t.step("GET /chat.js is the script", async () => {
    const response = await fetch(new URL("/chat.js", url));
    const body = await response.text();
    assertEquals(response.status, 200);
    assertEquals(
      response.headers.get("content-type"),
      "text/javascript; charset=utf-8",
    );
    assertEquals(response.headers.get("x-content-type-options"), "nosniff");
    assertStringIncludes(body, "// @ts-check");
  });

  await t.step("HEAD / has the headers and no body", async () => {
    const response = await fetch(url, { method: "HEAD" });
    assertEquals(response.status, 200);
    assertEquals(await response.text(), "");
    assertEquals(
      response.headers.get("content-type"),
      "text/html; charset=utf-8",
    );
  });

  await t.step("an unknown path is 404, in plain text", async () => {
    for (const path of ["/nope", "/index.html", "/web/chat.js", "/deno.json"]) {
      const response = await fetch(new URL(path, url));
      assertEquals(response.status, 404, path);
      assertEquals(await response.text(), "not found\n");
      assertEquals(
        response.headers.get("content-type"),
        "text/plain; charset=utf-8",
      );
      assertEquals(response.headers.get("x-content-type-options"), "nosniff");
    }
  });

  await t.step("another method is 405, with Allow", async () => {
    for (
      const [method, path] of [["POST", "/"], ["PUT", "/chat.js"], [
        "DELETE",
        "/",
      ]]
    ) {
      const response = await fetch(new URL(path, url), { method });
      assertEquals(response.status, 405, `${method} ${path}`);
      assertEquals(response.headers.get("allow"), "GET, HEAD");
      await response.body?.cancel();
    }
    const post = await fetch(new URL("/chat", url), { method: "POST" });
    assertEquals(post.status, 405);
    assertEquals(post.headers.get("allow"), "GET");
    await post.body?.cancel();
  });

  await t.step(
    "a path that climbs out is 404 (sent raw: fetch would tidy it)",
    async () => {
      for (
        const path of [
          "/../deno.json",
          "/%2e%2e/deno.json",
          "/%2E%2E/%2e%2e/etc/passwd",
          "/chat.js/../../deno.json",
          "/..%2fdeno.json",
          "/..%5cdeno.json",
          "//deno.json",
        ]
      ) {
        const head = await rawRequest(
          server.web,
          `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n`,
        );
        assertMatch(head, /^HTTP\/1\.1 404 /, path);
      }
    },
  );

  await t.step("GET /chat without an upgrade is 426", async () => {
    const response = await fetch(new URL("/chat", url));
    assertEquals(response.status, 426);
    assertEquals(response.headers.get("upgrade"), "websocket");
    await response.body?.cancel();
  });
});

// ---------------------------------------------------------------------------
// The WebSocket: who may open it

Deno.test("web: with --tls the page is HTTPS and the chat WSS, verified with the server's certificate", async () => {
  await using files = await certificateDir();
  await using server = await startWebServer(tlsFlags(files));
  assertEquals(server.url, `https://127.0.0.1:${server.web}/`);
  using client = Deno.createHttpClient({
    caCerts: [await Deno.readTextFile(files.cert)],
  });
  const page = await fetch(server.url, { client });
  assertEquals(page.status, 200);
  assertStringIncludes(await page.text(), "<script");
  assertMatch(
    await wssFirstMessage(server.web, files.cert),
    /^\* welcome guest-1: 0 others here;/,
  );
});

// Anyone may repeat a refused upgrade at will: the log says the first few,
// then one a second with a count of the rest, not a line each.
Deno.test("web: refused WebSockets are logged one by one up to a burst, then counted", async () => {
  await using server = await startWebServer();
  const refused = () =>
    rawRequest(
      server.web,
      handshake(server.web, { Origin: "http://evil.example" }),
    );
  const ATTEMPTS = 3 * REFUSALS_LOGGED_AT_ONCE;
  const started = performance.now();
  for (let i = 0; i < ATTEMPTS; i++) {
    assertMatch(await refused(), /^HTTP\/1\.1 403 /);
  }
  const seconds = (performance.now() - started) / 1000;
  const logged = () =>
    server.stdout.lines.filter((line) => line.includes(" refused: a page from"))
      .length;
  await waitUntil(
    () => logged() >= REFUSALS_LOGGED_AT_ONCE,
    5_000,
    "the burst",
  );
  assert(
    logged() <= REFUSALS_LOGGED_AT_ONCE + Math.ceil(seconds),
    `${logged()} of ${ATTEMPTS} logged in ${seconds.toFixed(2)} s`,
  );
  // A refusal once the budget has a token again says how many went unlogged.
  const deadline = Date.now() + 5_000;
  while (!server.stdout.text.includes("more refused since")) {
    assert(Date.now() < deadline, "no count of the refusals not logged");
    await refused();
  }
  assertMatch(
    server.stdout.text,
    /refused: a page from http:\/\/evil\.example may not join.* \(and \d+ more refused since the last one logged\)/,
  );
});

Deno.test("web: a WebSocket from another site's page is refused with 403", async () => {
  await using server = await startWebServer();
  const foreign = await rawRequest(
    server.web,
    handshake(server.web, { Origin: "http://evil.example" }),
  );
  assertMatch(foreign, /^HTTP\/1\.1 403 /);
  await server.stdout.waitFor(
    /refused: a page from http:\/\/evil\.example may not join/,
  );
  const rebound = await rawRequest(
    server.web,
    handshake(server.web, { Origin: "http://evil.example" }).replace(
      `Host: 127.0.0.1:${server.web}`,
      `Host: evil.example:${server.web}`,
    ),
  );
  assertMatch(rebound, /^HTTP\/1\.1 403 /);
  // The page's own origin, and a client without one, are let in.
  const allowed: Record<string, string>[] = [
    { Origin: `http://127.0.0.1:${server.web}` },
    {},
  ];
  for (const headers of allowed) {
    const head = await rawRequest(server.web, handshake(server.web, headers));
    assertMatch(head, /^HTTP\/1\.1 101 /);
  }
});

// ---------------------------------------------------------------------------
// The WebSocket: the same rules as TCP

Deno.test("web: one WebSocket message is one line, sanitized like a TCP client's", async () => {
  await using server = await startWebServer();
  using tcp = await guest(server);
  await using ws = await WsClient.open(server.web);
  assertMatch((await ws.next())!, /^\* welcome guest-2: 1 other here;/);
  assertEquals(await tcp.line(), "* guest-2 has joined");
  ws.send("a\x1b[2Jb\u200bc");
  ws.send("two\nlines");
  assertEquals(await tcp.line(), "guest-2: a^[[2Jb<U+200B>c");
  assertEquals(await tcp.line(), "guest-2: two^Jlines");
  await tcp.send("hi\x07 web");
  assertEquals(await ws.next(), "guest-1: hi^G web");
  ws.send("/nick webby");
  assertEquals(await ws.next(), "* you are now webby");
  assertEquals(await tcp.line(), "* guest-2 is now webby");
  ws.send("/who");
  assertEquals(await ws.next(), "* 2 here: guest-1, webby");
  ws.send("/frobnicate");
  assertMatch((await ws.next())!, /^\* unknown command \/frobnicate;/);
});

Deno.test("web: a binary message is refused with a notice; the session goes on", async () => {
  await using server = await startWebServer();
  using tcp = await guest(server);
  await using ws = await WsClient.open(server.web);
  await ws.next();
  await tcp.line();
  ws.send(Uint8Array.of(1, 2, 3));
  assertEquals(
    await ws.next(),
    "* binary messages are not accepted; send text",
  );
  ws.send("still here");
  assertEquals(await tcp.line(), "guest-2: still here");
});

Deno.test("web: a message over --max-frame gets a notice, then a 1009 close", async () => {
  await using server = await startWebServer(["--max-frame", "100"]);
  using tcp = await guest(server);
  await using ws = await WsClient.open(server.web);
  await ws.next();
  await tcp.line();
  ws.send("é".repeat(45)); // 90 bytes, 99 once relayed: fine
  assertEquals(await tcp.line(), `guest-2: ${"é".repeat(45)}`);
  ws.send("é".repeat(50) + "!");
  assertEquals(
    await ws.next(),
    "* message over the maximum of 100 bytes; disconnecting",
  );
  const closed = await ws.closed;
  assertEquals([closed.code, closed.reason], [1009, "message too big"]);
  assertEquals(
    await tcp.line(),
    "* guest-2 has left (message over the maximum of 100 bytes)",
  );
});

Deno.test("web: --max-clients counts TCP clients and browsers together", async () => {
  await using server = await startWebServer(["--max-clients", "1"]);
  {
    using _tcp = await guest(server);
    await using ws = await WsClient.open(server.web);
    assertEquals(
      await ws.next(),
      "* server full (1 client); try again later",
    );
    assertEquals((await ws.closed).code, 1013);
  }
  await server.stdout.waitFor(/guest-1 left/);
  await using ws = await WsClient.open(server.web);
  assertMatch((await ws.next())!, /^\* welcome guest-3: 0 others here/);
  using tcp = new LineConn(await connect(server.port));
  assertEquals(await tcp.line(), "* server full (1 client); try again later");
});

Deno.test("web: a browser refused as server full that answers our close frame is let go at once", async () => {
  await using server = await startWebServer(["--max-clients", "1"]);
  using _tcp = await guest(server);
  using raw = await rawUpgrade(server.web);
  assertEquals(await raw.text(), "* server full (1 client); try again later");
  const close = await raw.frame();
  assertEquals(close?.opcode, 0x8);
  await raw.write(clientFrame(0x8, close!.payload)); // the answer, as browsers do
  const answered = Date.now();
  assertEquals(await within(raw.frame(), 5000, "never closed"), null);
  // read by the server: no close wait (1 s)
  const took = Date.now() - answered;
  assertMatch(String(took < 500), /true/, `closed after ${took} ms`);
});

Deno.test("web: --idle-timeout disconnects a silent browser", async () => {
  await using server = await startWebServer(["--idle-timeout", "1"]);
  await using ws = await WsClient.open(server.web);
  await ws.next();
  assertEquals(await ws.next(3000), "* idle for 1 s; disconnecting");
  assertEquals((await ws.closed).code, 1000);
  await server.stdout.waitFor(/guest-1 left \(idle for 1 s\)/);
});

Deno.test("web: /quit says bye and closes normally", async () => {
  await using server = await startWebServer();
  using tcp = await guest(server);
  await using ws = await WsClient.open(server.web);
  await ws.next();
  await tcp.line();
  ws.send("/quit gone fishing");
  assertEquals(await ws.next(), "* bye");
  assertEquals((await ws.closed).code, 1000);
  assertEquals(await tcp.line(), "* guest-2 has left (quit: gone fishing)");
});

Deno.test("web: on SIGTERM browsers get a notice and a close frame; the server exits 0", async () => {
  await using server = await startWebServer();
  await using ws = await WsClient.open(server.web);
  await ws.next();
  server.kill("SIGTERM");
  assertEquals(await ws.next(), "* server shutting down");
  const closed = await ws.closed;
  assertEquals([closed.code, closed.reason], [1001, "server shutting down"]);
  assertEquals((await server.exited(10_000)).code, 0);
  assertStringIncludes(server.stdout.text, "bye");
});

Deno.test("web: a client that stops reading is cut off; the others go on", async () => {
  // A raw TCP client does the WebSocket handshake by hand and then never
  // reads: the kernel's buffers fill, then its outbox, as with a browser
  // whose tab stopped reading.
  await using server = await startWebServer();
  using sender = await guest(server); // guest-1
  using reader = await guest(server); // guest-2
  await using watcher = await WsClient.open(server.web); // guest-3
  const stuck = await connect(server.web);
  try {
    await writeAll(stuck, enc.encode(handshake(server.web)));
    assertMatch(await readHead(stuck), /^HTTP\/1\.1 101 /);
    await reader.until(/^\* guest-4 has joined$/);

    const line = "x".repeat(32 * 1024);
    let flooding = true;
    let sent = 0;
    const flood = (async () => {
      while (flooding && sent < 256 * 1024 * 1024) {
        await sender.send(line);
        sent += line.length + 1;
      }
    })();
    const left = await reader.until(/^\* guest-4 has left/, 60_000);
    flooding = false;
    await flood;
    assertMatch(left, /^\* guest-4 has left \(too slow: \d+ bytes unread\)$/);
    console.log(`  cut off after ${(sent / 2 ** 20).toFixed(1)} MiB sent`);

    await sender.send("still here");
    await reader.until(/^guest-1: still here$/, 30_000);
    await watcher.until(/^guest-1: still here$/, 30_000);
    await server.stdout.waitFor(/guest-4 left \(too slow: \d+ bytes unread\)/);
  } finally {
    stuck.close();
  }
});

Deno.test("web: a message past --max-frame in fragments is refused at the fragment that passes it; the server lives", async () => {
  // Before, a message was held whole whatever its fragments: 600 MiB ended
  // the process. Here the second fragment only announces 1 GiB.
  await using server = await startWebServer(["--max-frame", "1000"]);
  using tcp = await guest(server);
  using raw = await rawUpgrade(server.web);
  assertMatch(await raw.text(), /^\* welcome guest-2/);
  await tcp.until(/^\* guest-2 has joined$/);
  await raw.write(clientFrame(0x1, "x".repeat(900), { fin: false }));
  await raw.write(
    clientFrame(0x0, "", { announce: 1 << 30 }).subarray(0, 14),
  );
  assertEquals(
    await raw.text(),
    "* message over the maximum of 1000 bytes; disconnecting",
  );
  const close = await raw.frame();
  assertEquals(close?.opcode, 0x8);
  assertEquals(close!.payload.subarray(0, 2), new Uint8Array([0x03, 0xf1])); // 1009
  assertEquals(
    await tcp.line(),
    "* guest-2 has left (message over the maximum of 1000 bytes)",
  );
  await tcp.send("still here");
  await using browser = await WsClient.open(server.web);
  await browser.until(/^\* welcome guest-3/);
});

Deno.test("web: a browser that never answers the close frame still loses its connection", async () => {
  // Cut off as idle, it reads our close frame and never answers: the
  // server closes its side after the close wait (1 s), as for every cut.
  await using server = await startWebServer(["--idle-timeout", "0.5"]);
  using raw = await rawUpgrade(server.web);
  await raw.text(); // the welcome
  assertEquals(await raw.text(), "* idle for 0.5 s; disconnecting");
  const close = await raw.frame();
  assertEquals(close?.opcode, 0x8);
  const started = Date.now();
  assertEquals(
    await within(raw.frame(), 5000, "the server never closed its side"),
    null,
  );
  const waited = Date.now() - started;
  assertMatch(
    String(waited >= 800 && waited < 5000),
    /true/,
    `closed after ${waited} ms`,
  );
});

Deno.test("web: every message a browser sent before its close frame is relayed, then it leaves", async () => {
  await using server = await startWebServer();
  using tcp = await guest(server);
  using raw = await rawUpgrade(server.web);
  await raw.text();
  await tcp.until(/^\* guest-2 has joined$/);
  const frames = Array.from(
    { length: 200 },
    (_, i) => clientFrame(0x1, `m${i}`),
  );
  await raw.write(
    concat([...frames, clientFrame(0x8, new Uint8Array([0x03, 0xe8]))]),
  );
  for (let i = 0; i < 200; i++) {
    assertEquals(await tcp.line(), `guest-2: m${i}`);
  }
  assertEquals(await tcp.line(), "* guest-2 has left");
});

// RFC 6455, 5.5.1: the answer to a close frame echoes its code; "no code"
// (an empty close frame, 1005 to the reader) may not be sent, so 1000.
for (
  const [sent, echoed] of [
    [new Uint8Array([0x03, 0xe9]), 1001], // going away: a tab closed
    [new Uint8Array([0x0f, 0xa0]), 4000], // an application's own code
    [new Uint8Array(0), 1000],
  ] as const
) {
  Deno.test(
    `web: a browser's close frame (${
      sent.length ? (sent[0] << 8) | sent[1] : "no code"
    }) is answered with ${echoed}`,
    async () => {
      await using server = await startWebServer();
      using raw = await rawUpgrade(server.web);
      await raw.text(); // the welcome
      await raw.write(clientFrame(0x8, sent));
      let frame = await raw.frame();
      while (frame !== null && frame.opcode !== 0x8) frame = await raw.frame();
      assert(frame !== null, "no close frame came back");
      assertEquals((frame.payload[0] << 8) | frame.payload[1], echoed);
    },
  );
}

Deno.test("web: connections that never finish their request are closed, oldest first, past 256; the page is still served", async () => {
  await using server = await startWebServer();
  const dawdlers: Deno.Conn[] = [];
  try {
    for (let i = 0; i < 300; i++) {
      const conn = await connect(server.web);
      await writeAll(
        conn,
        enc.encode("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-a: "),
      );
      dawdlers.push(conn);
    }
    const page = await fetch(server.url);
    assertEquals(page.status, 200);
    await page.body?.cancel();
    // the first ones were closed to make room, unanswered
    assertEquals(
      await within(dawdlers[0].read(new Uint8Array(1)), 5000, "never closed"),
      null,
    );
  } finally {
    dawdlers.forEach((conn) => conn.close());
  }
});

Deno.test({
  name:
    "web: past 256 dawdling connections from one address, a slow request from another is still answered",
  ignore: Deno.build.os !== "linux", // 127.0.0.2 is loopback on Linux only
  async fn() {
    await using server = await startWebServer();
    // node:net, for its localAddress: Deno.connect cannot pick a source.
    const slow = net.connect({
      host: "127.0.0.1",
      port: server.web,
      localAddress: "127.0.0.2",
    });
    const closed = new Promise((resolve) => slow.once("close", resolve));
    const answer: Buffer[] = [];
    slow.on("data", (chunk: Buffer) => answer.push(chunk));
    const dawdlers: Deno.Conn[] = [];
    try {
      await new Promise((resolve) => slow.once("connect", resolve));
      slow.write("GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n");
      for (let i = 0; i < 300; i++) {
        const conn = await connect(server.web);
        await writeAll(conn, enc.encode("GET / HTTP/1.1\r\nX-a: "));
        dawdlers.push(conn);
      }
      // the first dawdler was closed to make room, not the other address
      assertEquals(
        await within(dawdlers[0].read(new Uint8Array(1)), 5000, "never closed"),
        null,
      );
      slow.write("\r\n");
      await within(closed, 5000, "the slow request was never answered");
      assertMatch(Buffer.concat(answer).toString(), /^HTTP\/1\.1 200 /);
    } finally {
      slow.destroy();
      await closed;
      dawdlers.forEach((conn) => conn.close());
    }
  },
});

// Pings relay nothing and a pong waits for none: their reads were all ready
// at once, and the event loop never turned for anyone else.
for (
  const [name, script] of [
    ["sandbox", "sandbox/server.ts"],
    ["threaded", "multiclientsusingthreading/server.ts"],
  ]
) {
  Deno.test(`web, ${name}: three browsers flooding pings do not hold up the others' lines`, async () => {
    await using server = await startWebServer([], 0, script);
    const [a] = await joinChat(server);
    const [b] = await joinChat(server);
    using _a = a;
    using _b = b;
    const blob = Flood.blob(clientFrame(0x9, "x".repeat(125)));
    const pingers: RawClient[] = [];
    const floods: Flood[] = [];
    try {
      for (let i = 0; i < 3; i++) {
        const pinger = await rawUpgrade(server.web);
        pingers.push(pinger);
        floods.push(new Flood(pinger.conn, blob));
      }
      const flooded = () => floods.reduce((sum, f) => sum + f.written, 0);
      await waitUntil(() => flooded() >= 64 * 1024 * 1024, 60_000, "the flood");
      await roundTrips(a, b, { count: 20, limitMs: 1000 });
      assertEquals(floods.map((f) => f.failed), floods.map(() => false));
    } finally {
      pingers.forEach((pinger) => pinger[Symbol.dispose]());
      for (const flood of floods) await flood[Symbol.asyncDispose]();
    }
  });
}

// ---------------------------------------------------------------------------
// The page, in a real browser

Deno.test({
  name: "web page: two browsers and a TCP client chat in one room",
  ignore: skipBrowser(),
  fn: async () => {
    await using server = await startWebServer();
    using tcp = await guest(server); // guest-1
    await using browser = await launchBrowser();
    const a = await ChatPage.open(browser, server.url); // guest-2
    await a.waitForLine(/^\* welcome guest-2: 1 other here;/);
    await a.waitForState("online");
    assertEquals(await tcp.line(), "* guest-2 has joined");
    const b = await ChatPage.open(browser, server.url, PHONE); // guest-3
    await b.waitForLine(/^\* welcome guest-3: 2 others here;/);
    assertEquals(await tcp.line(), "* guest-3 has joined");
    await a.waitForLine(/^\* guest-3 has joined$/);

    // Names: a browser's /nick is seen by the terminal, and the reverse.
    await a.send("/nick alice");
    assertEquals(await a.input(), ""); // Enter sent it and cleared the line
    assertEquals(await tcp.line(), "* guest-2 is now alice");
    await b.waitForLine(/^\* guest-2 is now alice$/);
    await a.waitForLine(/^\* you are now alice$/); // the page reads it, then renames
    assertEquals(await a.myName(), "alice");
    await tcp.send("/nick carol");
    assertEquals(await tcp.line(), "* you are now carol");
    await a.waitForLine(/^\* guest-1 is now carol$/);
    await b.waitForLine(/^\* guest-1 is now carol$/);

    // Messages, each to everyone else, in order.
    const plans = ["lunch at noon?", "the usual place", "I'll book a table"];
    for (const text of plans) await a.send(text);
    for (const text of plans) assertEquals(await tcp.line(), `alice: ${text}`);
    await b.waitForLine(/^alice: I'll book a table$/);
    await tcp.send("count me in (typed in nc)");
    await a.waitForLine(/^carol: count me in \(typed in nc\)$/);
    await b.waitForLine(/^carol: count me in \(typed in nc\)$/);
    await b.send("/nick bob");
    assertEquals(await tcp.line(), "* guest-3 is now bob");
    await a.waitForLine(/^\* guest-3 is now bob$/);
    await b.waitForLine(/^\* you are now bob$/);
    await b.send("on my way, from my phone");
    assertEquals(await tcp.line(), "bob: on my way, from my phone");
    await a.waitForLine(/^bob: on my way, from my phone$/);

    // Who is here, from the /who the page asked for and the notices since.
    assertEquals((await a.people()).sort(), ["alice", "bob", "carol"]);
    assertEquals((await b.people()).sort(), ["alice", "bob", "carol"]);
    assertEquals(await b.myName(), "bob");

    const shots = await Deno.makeTempDir({ prefix: "web_chat_screens_" });
    await a.page.screenshot({ path: `${shots}/desktop.png` });
    await b.page.screenshot({ path: `${shots}/phone.png` });
    console.log(`  screenshots in ${shots}`);

    await b.send("/quit see you there");
    assertEquals(await tcp.line(), "* bob has left (quit: see you there)");
    await b.waitForState("left");
    await a.waitForLine(/^\* bob has left \(quit: see you there\)$/);
    await a.send("see you");
    // The next thing the terminal hears: no join came before it, so the
    // page that quit did not reconnect.
    assertEquals(await tcp.line(), "alice: see you");

    const welcome = (await a.lines())[0];
    assertEquals(await a.lines(), [
      welcome,
      "* guest-3 has joined",
      "* you are now alice",
      "* guest-1 is now carol",
      "alice: lunch at noon?",
      "alice: the usual place",
      "alice: I'll book a table",
      "carol: count me in (typed in nc)",
      "* guest-3 is now bob",
      "bob: on my way, from my phone",
      "* bob has left (quit: see you there)",
      "alice: see you",
    ]);
    assertEquals((await b.lines()).slice(1), [
      "* guest-2 is now alice",
      "* guest-1 is now carol",
      "alice: lunch at noon?",
      "alice: the usual place",
      "alice: I'll book a table",
      "carol: count me in (typed in nc)",
      "* you are now bob",
      "bob: on my way, from my phone",
      "* bye",
    ]);
  },
});

Deno.test({
  name:
    "web page: Enter on an empty or blank line sends nothing and leaves the line empty",
  ignore: skipBrowser(),
  fn: async () => {
    await using server = await startWebServer();
    using tcp = await guest(server); // guest-1
    await using browser = await launchBrowser();
    const page = await ChatPage.open(browser, server.url); // guest-2
    await page.waitForLine(/^\* welcome guest-2/);
    await page.waitForState("online");
    assertEquals(await tcp.line(), "* guest-2 has joined");
    await page.send("");
    await page.send("   ");
    assertEquals(await page.input(), "");
    await page.send("after the blanks");
    assertEquals(await tcp.line(), "guest-2: after the blanks");
    assertEquals((await page.lines()).slice(1), ["guest-2: after the blanks"]);
  },
});

Deno.test({
  name: "web page: HTML in a message or a name is shown as text",
  ignore: skipBrowser(),
  fn: async () => {
    await using server = await startWebServer();
    using tcp = await guest(server);
    await using browser = await launchBrowser();
    const page = await ChatPage.open(browser, server.url);
    await page.waitForLine(/^\* welcome/);
    await tcp.line();
    const nick = "<img/src=x/onerror=top.pwned=1>";
    await tcp.send(`/nick ${nick}`);
    assertEquals(await tcp.line(), `* you are now ${nick}`);
    const message =
      `<img src=x onerror="top.pwned=2"><script>top.pwned=3</script><b>bold</b>`;
    await tcp.send(message);
    await page.waitForLine(/<script>/);

    assertEquals((await page.lines()).slice(-2), [
      `* guest-1 is now ${nick}`,
      `${nick}: ${message}`,
    ]);
    assertEquals((await page.people()).sort(), [nick, "guest-2"].sort());
    const injected = await page.page.$$eval(
      "body img, body script, body b",
      (found) => found.length,
    );
    assertEquals(injected, 0);
    assertEquals(await page.page.evaluate("typeof top.pwned"), "undefined");
  },
});

// Past the notices' burst a crowd is summed up, not named: the page asks
// /who (at most every 2 s) so its list and count stay true.
const CROWD = DEFAULT_NOTICE_BURST + 20;

Deno.test({
  name:
    `web page: ${CROWD} joining at once are summed up; the page's list still counts them all`,
  ignore: skipBrowser(),
  fn: async () => {
    await using server = await startWebServer();
    await using browser = await launchBrowser();
    const page = await ChatPage.open(browser, server.url);
    await page.waitForLine(/^\* welcome/);
    const crowd = await Promise.all(
      Array.from({ length: CROWD }, () => connect(server.port)),
    );
    try {
      await page.waitForLine(/ joined just now \(too many to announce/);
      const total = String(CROWD + 1);
      await page.page.waitForFunction(
        `document.getElementById("count").textContent === "${total}"`,
        { timeout: 10_000 },
      );
      assertEquals((await page.people()).length, CROWD + 1);
      const shown = await page.lines();
      assertEquals(
        shown.filter((line) => /^\* \d+ here: /.test(line)),
        [],
        "the page's own /who is not shown",
      );
    } finally {
      crowd.forEach(closeQuietly);
    }
  },
});

Deno.test({
  name: "web page: reconnects after the server restarts, and keeps its name",
  ignore: skipBrowser(),
  fn: async () => {
    const first = await startWebServer();
    const port = first.web;
    await using browser = await launchBrowser();
    let page: ChatPage;
    try {
      page = await ChatPage.open(browser, first.url);
      await page.waitForLine(/^\* welcome guest-1/);
      await page.send("/nick dana");
      await page.waitForLine(/^\* you are now dana$/);
      first.kill("SIGTERM");
      await page.waitForLine(/^\* server shutting down$/);
      await page.waitForState("reconnecting");
      assertMatch(await page.stateText(), /^reconnecting/);
      assertEquals((await first.exited(10_000)).code, 0);
    } finally {
      await first[Symbol.asyncDispose]();
    }

    await using second = await startWebServer([], port);
    await page.waitForState("online", 30_000);
    await page.page.waitForFunction(
      `[...document.querySelectorAll("#log .line")].filter((item) =>
        item.textContent === "* you are now dana").length === 2`,
      { polling: "mutation", timeout: 10_000 },
    );
    assertEquals(await page.myName(), "dana");
    using tcp = await guest(second);
    await tcp.send("/who");
    assertEquals(await tcp.line(), `* 2 here: dana, ${tcp.name}`);
    await tcp.send("welcome back");
    await page.waitForLine(new RegExp(`^${tcp.name}: welcome back$`));
  },
});

Deno.test("upgradeProblem: behind TLS the page's own origin is https", () => {
  const headers = (origin: string) =>
    new Headers({ host: "192.168.1.23:5080", origin });
  assertEquals(
    upgradeProblem(headers("https://192.168.1.23:5080"), { tls: true }),
    null,
  );
  assertMatch(
    upgradeProblem(headers("http://192.168.1.23:5080"), { tls: true }) ?? "",
    /may not join/,
  );
});

Deno.test("sayWebListening: on every interface, this machine's page is said at its loopback address, not at 0.0.0.0", () => {
  const said: string[] = [];
  const log = console.log;
  console.log = (line: string) => said.push(line.replace(/^\S+ /, ""));
  try {
    sayWebListening({ hostname: "0.0.0.0", port: 5080 });
    sayWebListening({ hostname: "::", port: 5080, tls: true });
    sayWebListening({ hostname: "127.0.0.1", port: 5080 });
  } finally {
    console.log = log;
  }
  const pages = said.filter((line) => line.startsWith("web page on"));
  assertEquals(pages, [
    "web page on http://127.0.0.1:5080/ (this machine)",
    "web page on https://[::1]:5080/ (this machine)",
    "web page on http://127.0.0.1:5080/",
  ]);
});
