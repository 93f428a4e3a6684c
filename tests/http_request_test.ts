import { assertEquals, assertRejects, assertThrows } from "./_assert.ts";
import {
  HttpError,
  parseHead,
  readRequest,
  writeResponse,
} from "../lib/http_request.ts";
import { writeAll } from "../lib/io.ts";

const enc = new TextEncoder();

function head(text: string): Uint8Array {
  return enc.encode(text);
}

Deno.test("parseHead: method, path without its query, headers by lower-case name", () => {
  const request = parseHead(
    head(
      "GET /chat?x=1 HTTP/1.1\r\nHost: a:5080\r\nX-Thing:  two words \r\n\r\n",
    ),
  );
  assertEquals(request.method, "GET");
  assertEquals(request.path, "/chat");
  assertEquals(request.headers.get("host"), "a:5080");
  assertEquals(request.headers.get("x-thing"), "two words");
});

Deno.test("parseHead: bare LF line ends are taken; HTTP/1.0 needs no Host; blank lines before the request line are skipped", () => {
  assertEquals(parseHead(head("GET / HTTP/1.0\n\n")).path, "/");
  assertEquals(parseHead(head("\r\nGET /x HTTP/1.0\r\n\r\n")).path, "/x");
});

Deno.test("parseHead: what is refused, and with which status", () => {
  const cases: [string, number, string][] = [
    ["GET /\r\n\r\n", 400, "bad request line"],
    ["GET / HTTP/1.1\r\nHost: a\r\r\n\r\n", 400, "bad header line"],
    ["GET / HTTP/2\r\nHost: a\r\n\r\n", 505, "HTTP/1.1 only"],
    ["GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"],
    ["G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "bad request line"],
    [
      "GET http://a/ HTTP/1.1\r\nHost: a\r\n\r\n",
      400,
      "the request target must be a path",
    ],
    ["GET / HTTP/1.1\r\n\r\n", 400, "no Host header"],
    [
      "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
      400,
      "more than one Host header",
    ],
    ["GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", 400, "bad header line"],
    ["GET / HTTP/1.1\r\nHost : a\r\n\r\n", 400, "bad header line"],
    ["GET / HTTP/1.1\r\nHost: a\x01\r\n\r\n", 400, "bad header line"],
    [
      "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n",
      400,
      "a request body is not accepted here",
    ],
    [
      "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
      400,
      "a request body is not accepted here",
    ],
  ];
  for (const [text, status, message] of cases) {
    const error = assertThrows(() => parseHead(head(text)), HttpError, message);
    assertEquals(error.status, status, JSON.stringify(text));
  }
});

async function pair(): Promise<[Deno.Conn, Deno.Conn] & Disposable> {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  return Object.assign([client, server] as [Deno.Conn, Deno.Conn], {
    [Symbol.dispose]() {
      for (const conn of [client, server]) {
        try {
          conn.close();
        } catch {
          // closed already
        }
      }
    },
  });
}

Deno.test("readRequest: a head sent byte by byte, and the bytes after it kept", async () => {
  using conns = await pair();
  const [client, server] = conns;
  const bytes = head("GET /chat HTTP/1.1\r\nHost: a\r\n\r\nEARLY");
  const last = bytes.indexOf(0x45) - 1; // the head's last byte goes with EARLY
  for (let i = 0; i < last; i++) {
    await writeAll(client, bytes.subarray(i, i + 1));
  }
  await writeAll(client, bytes.subarray(last));
  const request = await readRequest(server);
  assertEquals(request?.path, "/chat");
  assertEquals(new TextDecoder().decode(request?.rest), "EARLY");
});

Deno.test("readRequest: null when the client closes before a request", async () => {
  using conns = await pair();
  conns[0].close();
  assertEquals(await readRequest(conns[1]), null);
});

Deno.test("readRequest: a head too large is 431, a slow one 408", async () => {
  {
    using conns = await pair();
    await writeAll(conns[0], head(`GET / HTTP/1.1\r\nX: ${"x".repeat(5000)}`));
    const error = await assertRejects(
      () => readRequest(conns[1], { maxBytes: 4096 }),
      HttpError,
    );
    assertEquals(error.status, 431);
  }
  {
    using conns = await pair();
    await writeAll(conns[0], head("GET / HTTP/1.1\r\nHost: a\r\n"));
    const error = await assertRejects(
      () => readRequest(conns[1], { timeoutMs: 50 }),
      HttpError,
      "no complete request within 0.05 s",
    );
    assertEquals(error.status, 408);
  }
});

Deno.test("writeResponse: status line, headers, length, and Connection: close", async () => {
  using conns = await pair();
  const [client, server] = conns;
  await writeResponse(server, {
    status: 404,
    headers: new Headers({ "Content-Type": "text/plain" }),
    body: "not found\n",
  });
  server.close();
  const buffer = new Uint8Array(1024);
  let text = "";
  for (
    let n = await client.read(buffer);
    n !== null;
    n = await client.read(buffer)
  ) {
    text += new TextDecoder().decode(buffer.subarray(0, n));
  }
  assertEquals(
    text,
    "HTTP/1.1 404 Not Found\r\nconnection: close\r\ncontent-length: 10\r\ncontent-type: text/plain\r\n\r\nnot found\n",
  );
});
