import { assertEquals } from "./_assert.ts";
import { type ChatMember, ChatServer } from "../lib/chat_server.ts";
import { Outgoing } from "../lib/chat_room.ts";
import { FRAMINGS } from "../lib/framing.ts";
import { FanOutRoom } from "../multiclientsusingthreading/fan_out_room.ts";
import type { FromWorker } from "../multiclientsusingthreading/messages.ts";

const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

/**
 * What a portable worker says to the main thread, in order, as one log:
 * the room's posts, and each client's own sends and replies (`send ID: …`, `reply ID: …`).
 * Members with an id of 100 or more hold their own socket (browsers).
 */
function world() {
  const log: string[] = [];
  const record = (message: FromWorker) => {
    switch (message.type) {
      case "broadcast":
        log.push(`broadcast except ${message.except}: ${text(message.bytes)}`);
        return;
      case "entered":
      case "exited":
        log.push(`${message.type} ${message.id}`);
        return;
      default:
        log.push(message.type);
    }
  };
  const room = new FanOutRoom<ChatMember>({
    post: record,
    forwarded: (member) => member.id < 100,
  });
  const member = (id: number): ChatMember => ({
    id,
    name: `guest-${id}`,
    peer: "127.0.0.1",
    framing: FRAMINGS.line,
    outbox: {
      send: (bytes) => log.push(`send ${id}: ${text(bytes)}`) > 0,
      reply: (bytes) => log.push(`reply ${id}: ${text(bytes)}`) > 0,
    },
    close: () => Promise.resolve(),
  });
  return { log, room, member };
}

Deno.test("FanOutRoom: one broadcast post for the forwarded clients; the members whose socket is here get theirs here", () => {
  const { log, room, member } = world();
  room.join(member(1));
  room.join(member(2));
  room.join(member(100)); // a browser
  room.join(member(101));
  assertEquals(log, ["entered 1", "entered 2"]);
  log.length = 0;
  room.broadcast(Outgoing.of(["guest-1: hi"]), 1);
  assertEquals(log, [
    "broadcast except 1: guest-1: hi\n",
    "send 100: guest-1: hi\n",
    "send 101: guest-1: hi\n",
  ]);
  log.length = 0;
  room.broadcast(Outgoing.of(["guest-100: yo"]), 100);
  assertEquals(log, [
    "broadcast except 100: guest-100: yo\n",
    "send 101: guest-100: yo\n",
  ]);
});

Deno.test("FanOutRoom: what another worker relayed goes only to the members whose socket is here", () => {
  const { log, room, member } = world();
  room.join(member(1));
  room.join(member(100));
  log.length = 0;
  room.here(Outgoing.encoded("line", new TextEncoder().encode("guest-9: x\n")));
  assertEquals(log, ["send 100: guest-9: x\n"]);
});

Deno.test("FanOutRoom: leaving says exited for a forwarded client only, once", () => {
  const { log, room, member } = world();
  room.join(member(1));
  room.join(member(100));
  log.length = 0;
  room.leave(100);
  room.leave(1);
  room.leave(1);
  assertEquals(log, ["exited 1"]);
  assertEquals(room.size, 0);
});

Deno.test("FanOutRoom in a chat: entered after the welcome, before the join notice; exited before the leave notice", () => {
  const { log, room, member } = world();
  const chat = new ChatServer<ChatMember>({ room });
  const [a, b] = [member(1), member(2)];
  chat.enter(a);
  chat.enter(b);
  assertEquals(log, [
    "reply 1: * welcome guest-1: 0 others here; /nick NAME to pick a name, /help for commands\n",
    "entered 1",
    "broadcast except 1: * guest-1 has joined\n",
    "reply 2: * welcome guest-2: 1 other here; /nick NAME to pick a name, /help for commands\n",
    "entered 2",
    "broadcast except 2: * guest-2 has joined\n",
  ]);
  log.length = 0;
  chat.receive(a, ["one", "two"]);
  chat.leave(b, "quit");
  assertEquals(log, [
    "broadcast except 1: guest-1: one\nguest-1: two\n",
    "exited 2",
    "broadcast except undefined: * guest-2 has left (quit)\n",
  ]);
});
