import { assertEquals } from "./_assert.ts";
import { accepted, addressOf } from "../lib/net.ts";
import { HAVE_PYTHON, resetClient, runScript } from "./_helpers.ts";

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

Deno.test({
  name:
    "accepted: clients that reset before accept() are skipped; it ends when the listener closes",
  ignore: !HAVE_PYTHON,
  async fn() {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    // Nobody accepts yet: these connect and reset in the backlog.
    await resetClient(listener.addr.port, new Uint8Array(), {
      first: "nothing",
      times: 5,
    });
    const client = await Deno.connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
    });
    const connections = accepted(listener);
    const first = await connections.next();
    assertEquals(first.done, false);
    assertEquals(
      (first.value as Deno.TcpConn).remoteAddr.port,
      client.localAddr.port,
    );
    (first.value as Deno.TcpConn).close();
    client.close();
    listener.close();
    assertEquals((await connections.next()).done, true);
  },
});
