import { assertEquals } from "../lib/std.ts";
import { addressOf } from "../lib/net.ts";
import { runScript } from "./_helpers.ts";

Deno.test("addressOf: host:port, IPv6 in brackets", () => {
  assertEquals(
    addressOf({ transport: "tcp", hostname: "127.0.0.1", port: 5000 }),
    "127.0.0.1:5000",
  );
  assertEquals(
    addressOf({ transport: "tcp", hostname: "::1", port: 5000 }),
    "[::1]:5000",
  );
});

Deno.test("listenOrExit: an address that is not this machine's is explained, exit 1", async () => {
  // 192.0.2.1 is TEST-NET-1: never assigned to a host, so binding fails locally (no traffic).
  const result = await runScript("basic/server.ts", [
    "--host",
    "192.0.2.1",
    "--port",
    "0",
  ]);
  assertEquals(result.code, 1);
  assertEquals(
    result.stderr.includes("not an address of this machine"),
    true,
    result.stderr,
  );
});
