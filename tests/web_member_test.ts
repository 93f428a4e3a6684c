import { assert, assertEquals, assertMatch } from "./_assert.ts";
import { CLOSE_CODES, WebMember } from "../lib/web_member.ts";
import { wsPair } from "./_websocket.ts";

const enc = new TextEncoder();

function closeOf(payload: Uint8Array): [number, string] {
  return [
    (payload[0] << 8) | payload[1],
    new TextDecoder().decode(payload.subarray(2)),
  ];
}

Deno.test("WebMember: each line it is sent is one text message", async () => {
  using pair = await wsPair({ closeWaitMs: 50 });
  const member = new WebMember(pair.ws, { id: 1, peer: "test", name: "a" });
  member.outbox.send(enc.encode("* welcome guest-1\nalice: hi\n"));
  assertEquals(await pair.client.text(), "* welcome guest-1");
  assertEquals(await pair.client.text(), "alice: hi");
  member.left = "quit";
  await member.close();
});

Deno.test("WebMember: a browser that stops reading is cut off as too slow, and its connection closed", async () => {
  using pair = await wsPair({ closeWaitMs: 100 });
  let overflowed = 0;
  const member = new WebMember(pair.ws, {
    id: 4,
    peer: "test",
    name: "guest-4",
    outboxLimit: 64 * 1024,
    onOverflow: (queued) => (overflowed = queued),
  });
  // The kernel's buffers take some megabytes first; then the outbox fills.
  const line = enc.encode(`${"x".repeat(9999)}\n`);
  let sent = 0;
  while (member.outbox.send(line)) {
    if (++sent % 100 === 0) await new Promise((r) => setTimeout(r, 0));
    assert(sent < 100_000, "never cut off");
  }
  assert(overflowed > 64 * 1024, `overflowed at ${overflowed}`);
  assertMatch(member.outbox.reason ?? "", /^too slow: \d+ bytes unread$/);
  await member.close(); // the close wait, then the connection closes
  for (let frame = await pair.client.frame(); frame;) {
    frame = await pair.client.frame(); // what the kernel held, then the end
  }
});

Deno.test("WebMember: the close code says why: shutdown 1001, quit 1000, or as given", async () => {
  const cases: [(member: WebMember) => void, number, string][] = [
    [() => {}, CLOSE_CODES.goingAway, "server shutting down"],
    [(member) => (member.left = "quit"), CLOSE_CODES.normal, "bye"],
    [
      (member) => member.closeWith(CLOSE_CODES.tooBig, "message too big"),
      1009,
      "message too big",
    ],
  ];
  for (const [prepare, code, reason] of cases) {
    using pair = await wsPair({ closeWaitMs: 50 });
    const member = new WebMember(pair.ws, { id: 1, peer: "test", name: "a" });
    prepare(member);
    await member.close(enc.encode("* last words\n"));
    assertEquals(await pair.client.text(), "* last words");
    const frame = await pair.client.frame();
    assertEquals(frame?.opcode, 0x8);
    assertEquals(closeOf(frame!.payload), [code, reason]);
  }
});
