import { assert, assertEquals, assertMatch, assertRejects } from "./_assert.ts";
import {
  CLOSE_CODES,
  SocketWriter,
  type TextSocket,
  WebMember,
} from "../lib/web_member.ts";

const enc = new TextEncoder();

/**
 * A WebSocket as the writer sees it: what was sent, how it was closed, and
 * a `bufferedAmount` that a test scripts poll by poll.
 */
class FakeSocket extends EventTarget implements TextSocket {
  readyState = 1;
  sent: string[] = [];
  closedWith: [number | undefined, string | undefined] | null = null;
  polls = 0;
  /** What `bufferedAmount` says at each poll (the last value repeats). */
  buffered: number[] = [0];
  /** Called at each poll, with its number (from 1). */
  onPoll: (poll: number) => void = () => {};

  get bufferedAmount(): number {
    this.polls++;
    this.onPoll(this.polls);
    return this.buffered[Math.min(this.polls, this.buffered.length) - 1];
  }

  send(text: string): void {
    this.sent.push(text);
  }

  close(code?: number, reason?: string): void {
    this.closedWith = [code, reason];
    this.readyState = 3;
    this.dispatchEvent(new Event("close"));
  }
}

Deno.test("SocketWriter: each line of a write is one text message", async () => {
  const socket = new FakeSocket();
  const writer = new SocketWriter(socket);
  const bytes = enc.encode("* welcome guest-1\nalice: hi\n\nbob: ünïcødé\n");
  assertEquals(await writer.write(bytes), bytes.length);
  assertEquals(socket.sent, [
    "* welcome guest-1",
    "alice: hi",
    "",
    "bob: ünïcødé",
  ]);
});

Deno.test("SocketWriter: a last piece without a line end is a message too", async () => {
  const socket = new FakeSocket();
  await new SocketWriter(socket).write(enc.encode("a\nb"));
  assertEquals(socket.sent, ["a", "b"]);
});

Deno.test("SocketWriter: a write waits while the socket is behind, then resolves", async () => {
  const socket = new FakeSocket();
  socket.buffered = [100_000, 100_000, 100_000, 10];
  const writer = new SocketWriter(socket, { highWater: 1000, pollMs: 1 });
  await writer.write(enc.encode("hello\n"));
  assertEquals(socket.polls, 4); // resolved at the first poll under the mark
  assertEquals(socket.sent, ["hello"]);
});

Deno.test("SocketWriter: a waiting write rejects once the writer is closed", async () => {
  const socket = new FakeSocket();
  socket.buffered = [100_000];
  const writer = new SocketWriter(socket, {
    highWater: 1000,
    pollMs: 1,
    closing: () => ({ code: CLOSE_CODES.policy, reason: "too slow" }),
  });
  socket.onPoll = (poll) => {
    if (poll === 3) writer.close();
  };
  await assertRejects(
    () => writer.write(enc.encode("x\n")),
    Deno.errors.BrokenPipe,
  );
  assertEquals(socket.closedWith, [1008, "too slow"]);
  await assertRejects(
    () => writer.write(enc.encode("y\n")),
    Deno.errors.BrokenPipe,
  );
  assertEquals(socket.sent, ["x"]);
});

Deno.test("SocketWriter: the close reason is cut to 123 bytes of UTF-8", () => {
  const socket = new FakeSocket();
  const writer = new SocketWriter(socket, {
    closing: () => ({ code: 1000, reason: "é".repeat(100) }),
  });
  writer.close();
  writer.close(); // once
  assertEquals(socket.closedWith, [1000, "é".repeat(61)]);
});

Deno.test("WebMember: a browser that stops reading is cut off as too slow", async () => {
  const socket = new FakeSocket();
  socket.buffered = [Number.MAX_SAFE_INTEGER]; // never catches up
  let overflowed = 0;
  const member = new WebMember(socket, {
    id: 4,
    peer: "test",
    name: "guest-4",
    outboxLimit: 4096,
    onOverflow: (queued) => (overflowed = queued),
  });
  const line = enc.encode(`${"x".repeat(999)}\n`);
  let accepted = 0;
  while (member.outbox.send(line)) accepted++;
  // What the socket has not taken counts, the write in progress included.
  assertEquals(accepted, 4);
  assertEquals(overflowed, 5000);
  assertEquals(member.outbox.reason, "too slow: 5000 bytes unread");
  assertEquals(socket.closedWith, [1008, "too slow: 5000 bytes unread"]);
  await member.close(); // the pending write ends too
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
    const socket = new FakeSocket();
    const member = new WebMember(socket, { id: 1, peer: "test", name: "a" });
    prepare(member);
    await member.close(enc.encode("* last words\n"));
    assertEquals(socket.sent, ["* last words"]);
    assertEquals(socket.closedWith, [code, reason]);
  }
});

Deno.test("WebMember: close waits for the browser's answer, but not for ever", async () => {
  const socket = new FakeSocket();
  socket.close = (code, reason) => {
    socket.closedWith = [code, reason]; // and never a close event
  };
  const member = new WebMember(socket, {
    id: 1,
    peer: "test",
    name: "a",
    closeWaitMs: 50,
  });
  const started = Date.now();
  await member.close();
  const waited = Date.now() - started;
  assert(waited >= 45 && waited < 1000, `waited ${waited} ms`);
  assertMatch(String(socket.closedWith?.[0]), /^1001$/);
});
