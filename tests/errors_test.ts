import { assertEquals, assertStringIncludes } from "./_assert.ts";
import {
  explainNetError,
  formatAddress,
  isDisconnect,
  type NetErrorContext,
  readFailure,
  ServerClosedError,
} from "../lib/errors.ts";

const LISTEN: NetErrorContext = {
  action: "listen",
  host: "127.0.0.1",
  port: 5000,
};
const CONNECT: NetErrorContext = {
  action: "connect",
  host: "127.0.0.1",
  port: 5000,
};

const CASES: [string, unknown, NetErrorContext, string[]][] = [
  [
    "address in use",
    new Deno.errors.AddrInUse("Address already in use (os error 98)"),
    LISTEN,
    [
      "cannot listen on 127.0.0.1:5000: address already in use",
      "--port",
    ],
  ],
  [
    "connection refused",
    new Deno.errors.ConnectionRefused("Connection refused (os error 111)"),
    CONNECT,
    [
      "cannot connect to 127.0.0.1:5000: connection refused",
      "start the server first",
    ],
  ],
  [
    "low port",
    new Deno.errors.PermissionDenied("Permission denied (os error 13)"),
    { ...LISTEN, port: 80 },
    [
      "permission denied",
      "below 1024",
    ],
  ],
  [
    "permission denied elsewhere",
    new Deno.errors.PermissionDenied("denied"),
    LISTEN,
    ["firewall"],
  ],
  [
    "no Deno permission",
    new Deno.errors.NotCapable("Requires net access"),
    LISTEN,
    ["--allow-net"],
  ],
  ["address not available", new Deno.errors.AddrNotAvailable("os error 99"), {
    ...LISTEN,
    host: "192.168.1.23",
  }, [
    "192.168.1.23 is not an address of this machine",
    "0.0.0.0",
  ]],
  [
    "host not found",
    new Error(
      "failed to lookup address information: Name or service not known",
    ),
    {
      ...CONNECT,
      host: "no.such.host",
    },
    ['host "no.such.host" not found'],
  ],
  ["invalid host", new URIError("invalid host 'a b'"), {
    ...LISTEN,
    host: "a b",
  }, ["not a valid host"]],
  ["timed out", new Deno.errors.TimedOut("timed out"), CONNECT, [
    "timed out",
    "firewall",
  ]],
  [
    "connect timed out (the signal's TimeoutError), with the limit",
    new DOMException(
      "The operation was aborted due to timeout",
      "TimeoutError",
    ),
    { ...CONNECT, connectTimeout: 10 },
    ["cannot connect to 127.0.0.1:5000: timed out after 10 s", "firewall"],
  ],
  [
    "no route to host (Deno's plain Error with code EHOSTUNREACH)",
    Object.assign(new Error("No route to host (os error 113)"), {
      code: "EHOSTUNREACH",
    }),
    { ...CONNECT, host: "192.168.1.23" },
    [
      "cannot connect to 192.168.1.23:5000: no route to host",
      "No machine answered at 192.168.1.23: it may be off or asleep",
      "check the address",
      "same network",
    ],
  ],
  ["reset", new Deno.errors.ConnectionReset("reset"), {
    ...CONNECT,
    action: "transfer",
  }, [
    "connection with 127.0.0.1:5000 failed: connection reset",
  ]],
  ["unknown", new Error("something odd"), CONNECT, [
    "cannot connect to 127.0.0.1:5000: something odd",
  ]],
];

for (const [name, error, context, parts] of CASES) {
  Deno.test(`explainNetError: ${name}`, () => {
    const text = explainNetError(error, context);
    for (const part of parts) assertStringIncludes(text, part);
    assertEquals(
      text.includes("os error"),
      false,
      "the OS's terse text is replaced",
    );
  });
}

Deno.test("explainNetError: the server closing is said as it is", () => {
  assertEquals(
    explainNetError(new ServerClosedError(), {
      ...CONNECT,
      action: "transfer",
    }),
    "the server closed the connection.",
  );
});

Deno.test("formatAddress: brackets IPv6 only", () => {
  assertEquals(formatAddress("::1", 5003), "[::1]:5003");
  assertEquals(formatAddress("127.0.0.1", 5000), "127.0.0.1:5000");
});

Deno.test("isDisconnect: peer-gone errors only", () => {
  assertEquals(isDisconnect(new Deno.errors.ConnectionReset("x")), true);
  assertEquals(isDisconnect(new Deno.errors.BrokenPipe("x")), true);
  assertEquals(isDisconnect(new Deno.errors.AddrInUse("x")), false);
  assertEquals(isDisconnect(new Error("x")), false);
});

Deno.test("readFailure: what a read threw, as a leave reason; null where we closed it", () => {
  assertEquals(
    readFailure(new Deno.errors.ConnectionReset("x")),
    "connection reset",
  );
  assertEquals(
    readFailure(new Deno.errors.InvalidData("cannot decrypt peer's message")),
    "TLS error: cannot decrypt peer's message",
  );
  assertEquals(readFailure(new Deno.errors.BrokenPipe("x")), "connection lost");
  assertEquals(readFailure(new Error("anything else")), "connection lost");
  assertEquals(readFailure(new Deno.errors.BadResource("x")), null);
  assertEquals(readFailure(new Deno.errors.Interrupted("x")), null);
});
