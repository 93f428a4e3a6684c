import { assertEquals } from "./_assert.ts";
import {
  chatMessage,
  ChatRoom,
  helpLines,
  type Member,
  MessageBatch,
  notice,
  parseChatInput,
} from "../lib/chat_room.ts";
import { FRAMINGS } from "../lib/framing.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";

function member(
  id: number,
  name: string,
  accept = true,
): Member & { got: Uint8Array[] } {
  const got: Uint8Array[] = [];
  return {
    id,
    name,
    got,
    outbox: { send: (bytes) => accept && got.push(bytes) > 0 },
  };
}

Deno.test("ChatRoom: broadcast reaches everyone but the sender; counts deliveries", () => {
  const room = new ChatRoom();
  const [a, b, c] = [member(1, "a"), member(2, "b"), member(3, "c", false)];
  for (const m of [a, b, c]) room.join(m);
  const bytes = Uint8Array.of(1);
  assertEquals(room.broadcast(bytes, 1), 1); // c refuses
  assertEquals([a.got.length, b.got.length], [0, 1]);
  assertEquals(room.broadcast(bytes), 2);
});

Deno.test("ChatRoom: join, leave, get, byName ignores case, members in join order", () => {
  const room = new ChatRoom();
  room.join(member(1, "Alice"));
  room.join(member(2, "bob"));
  assertEquals(room.byName("alice")?.id, 1);
  assertEquals([...room.members()].map((m) => m.name), ["Alice", "bob"]);
  assertEquals(room.leave(1)?.name, "Alice");
  assertEquals(room.leave(1), undefined);
  assertEquals(room.size, 1);
  assertEquals(room.get(2)?.name, "bob");
});

Deno.test("chatMessage and notice: the wire text of PROTOCOLS.md", () => {
  assertEquals(chatMessage("alice", "hi"), "alice: hi");
  assertEquals(notice("alice has joined"), "* alice has joined");
});

Deno.test("parseChatInput: messages, commands with and without an argument, the // escape", () => {
  assertEquals(parseChatInput("hello"), { kind: "message", text: "hello" });
  assertEquals(parseChatInput("/who"), {
    kind: "command",
    name: "/who",
    arg: "",
  });
  assertEquals(parseChatInput("/quit  see you "), {
    kind: "command",
    name: "/quit",
    arg: "see you",
  });
  assertEquals(parseChatInput("//not a command"), {
    kind: "message",
    text: "/not a command",
  });
  assertEquals(parseChatInput(""), { kind: "message", text: "" });
});

Deno.test("helpLines: aligned notices", () => {
  assertEquals(helpLines([["/a", "first"], ["/long", "second"]]), [
    "* commands:",
    "*   /a     first",
    "*   /long  second",
  ]);
});

Deno.test("MessageBatch: one block per framing, emptied by take", () => {
  const lines = new MessageBatch(FRAMINGS.line);
  assertEquals(lines.take(), null);
  lines.add("a: 1");
  lines.add("a: 2");
  assertEquals(lines.size, 2);
  assertEquals(new TextDecoder().decode(lines.take()!), "a: 1\na: 2\n");
  assertEquals(lines.size, 0);
  const frames = new MessageBatch(FRAMINGS.length);
  frames.add("x");
  frames.add("y\nz");
  const decoded = new LengthDecoder().push(frames.take()!).map((f) =>
    new TextDecoder().decode(f)
  );
  assertEquals(decoded, ["x", "y\nz"]);
});
