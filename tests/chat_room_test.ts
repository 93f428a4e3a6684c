import { assertEquals } from "./_assert.ts";
import {
  chatMessage,
  ChatRoom,
  helpLines,
  isQuit,
  type Member,
  notice,
  Outgoing,
  parseChatInput,
} from "../lib/chat_room.ts";
import { FRAMINGS } from "../lib/framing.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";

function member(
  id: number,
  name: string,
  { accept = true, framing = FRAMINGS.line } = {},
): Member & { got: Uint8Array[] } {
  const got: Uint8Array[] = [];
  return {
    id,
    name,
    framing,
    got,
    outbox: {
      send: (bytes) => accept && got.push(bytes) > 0,
      reply: (bytes) => accept && got.push(bytes) > 0,
    },
  };
}

Deno.test("ChatRoom: broadcast reaches everyone but the sender; counts deliveries", () => {
  const room = new ChatRoom();
  const [a, b, c] = [
    member(1, "a"),
    member(2, "b"),
    member(3, "c", { accept: false }),
  ];
  for (const m of [a, b, c]) room.join(m);
  const message = Outgoing.of(["x"]);
  assertEquals(room.broadcast(message, 1), 1); // c refuses
  assertEquals([a.got.length, b.got.length], [0, 1]);
  assertEquals(room.broadcast(message), 2);
});

Deno.test("ChatRoom: each member gets its own framing; each framing is encoded once", () => {
  const room = new ChatRoom();
  const [a, b, c] = [
    member(1, "a"),
    member(2, "b", { framing: FRAMINGS.length }),
    member(3, "c", { framing: FRAMINGS.length }),
  ];
  for (const m of [a, b, c]) room.join(m);
  room.broadcast(Outgoing.of(["x: 1", "x: 2"]));
  assertEquals(new TextDecoder().decode(a.got[0]), "x: 1\nx: 2\n");
  const frames = new LengthDecoder().push(b.got[0]);
  assertEquals(frames.map((f) => new TextDecoder().decode(f)), [
    "x: 1",
    "x: 2",
  ]);
  assertEquals(b.got[0], c.got[0]); // the very same bytes
});

Deno.test("ChatRoom: join, leave, get, members in join order", () => {
  const room = new ChatRoom();
  room.join(member(1, "Alice"));
  room.join(member(2, "bob"));
  assertEquals([...room.members()].map((m) => m.name), ["Alice", "bob"]);
  assertEquals(room.leave(1)?.name, "Alice");
  assertEquals(room.leave(1), undefined);
  assertEquals(room.size, 1);
  assertEquals(room.get(2)?.name, "bob");
});

Deno.test("chatMessage and notice: the wire text the README shows", () => {
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

Deno.test("Outgoing: one block per framing, encoded on first use", () => {
  const out = Outgoing.of(["a: 1", "a: 2"]);
  assertEquals(out.count, 2);
  assertEquals(
    new TextDecoder().decode(out.bytes(FRAMINGS.line)),
    "a: 1\na: 2\n",
  );
  assertEquals(out.bytes(FRAMINGS.line), out.bytes(FRAMINGS.line));
  const frames = Outgoing.of(["x", "y\nz"]).bytes(FRAMINGS.length);
  const decoded = new LengthDecoder().push(frames).map((f) =>
    new TextDecoder().decode(f)
  );
  assertEquals(decoded, ["x", "y\nz"]);
});

Deno.test("Outgoing: lines relayed already encoded are re-framed when asked", () => {
  const relayed = Outgoing.encoded(
    "line",
    new TextEncoder().encode("b: hi\n* bye\n"),
  );
  const frames = new LengthDecoder().push(relayed.bytes(FRAMINGS.length));
  assertEquals(frames.map((f) => new TextDecoder().decode(f)), [
    "b: hi",
    "* bye",
  ]);
});

Deno.test("isQuit: true exactly where parseChatInput names the command /quit", () => {
  for (
    const text of [
      "/quit",
      "/quit see you",
      "/quit ",
      "/quitter",
      "/quit\tx",
      "//quit",
      "quit",
      "/QUIT",
      "",
    ]
  ) {
    const input = parseChatInput(text);
    assertEquals(
      isQuit(text),
      input.kind === "command" && input.name === "/quit",
      JSON.stringify(text),
    );
  }
});
