import { assert, assertEquals, assertMatch } from "./_assert.ts";
import {
  type ChatMember,
  ChatServer,
  RENAME_BURST,
  WHO_BURST,
} from "../lib/chat_server.ts";
import { type Framing, FRAMINGS } from "../lib/framing.ts";
import { LengthDecoder } from "../lib/length_decoder.ts";
import { LineDecoder } from "../lib/line_decoder.ts";
import { Roster } from "../lib/roster.ts";

/** A member that records every message it is sent, decoded. */
interface Fake extends ChatMember {
  got: string[];
  /** Bytes of the largest single message it was sent. */
  largest: number;
  closed: boolean;
  /** The messages it got as replies (made for it alone), not broadcasts. */
  replies: string[];
}

function fake(id: number, framing: Framing = FRAMINGS.line): Fake {
  const member: Fake = {
    id,
    name: `guest-${id}`,
    peer: `127.0.0.1:${50000 + id}`,
    framing,
    got: [],
    largest: 0,
    closed: false,
    replies: [],
    outbox: {
      reply(bytes) {
        const before = member.got.length;
        member.outbox.send(bytes);
        member.replies.push(...member.got.slice(before));
        return true;
      },
      send(bytes) {
        const decoder = framing.name === "line"
          ? new LineDecoder({ maxLength: Infinity })
          : new LengthDecoder({ maxLength: 2 ** 31 });
        for (const message of decoder.push(bytes)) {
          member.largest = Math.max(member.largest, message.length);
          member.got.push(new TextDecoder().decode(message));
        }
        return true;
      },
    },
    close(last) {
      if (last) member.outbox.send(last);
      member.closed = true;
      return Promise.resolve();
    },
  };
  return member;
}

function room(
  count: number,
  options: {
    maxMessage?: number;
    framing?: Framing;
    maxBatch?: number;
    pace?: () => Promise<void> | undefined;
    maxCommands?: number;
    notices?: { now: () => number };
  } = {},
): [ChatServer<Fake>, Fake[]] {
  const { framing: _, ...chatOptions } = options;
  const chat = new ChatServer<Fake>(chatOptions);
  const members = Array.from(
    { length: count },
    (_, i) => fake(i + 1, options.framing),
  );
  for (const member of members) chat.enter(member);
  for (const member of members) {
    member.got.length = member.replies.length = 0; // welcomes, joins
  }
  return [chat, members];
}

Deno.test("ChatServer: a welcome to the newcomer, a join notice to the others", () => {
  const chat = new ChatServer<Fake>();
  const [a, b] = [fake(1), fake(2)];
  chat.enter(a);
  chat.enter(b);
  assertEquals(a.got, [
    "* welcome guest-1: 0 others here; /nick NAME to pick a name, /help for commands",
    "* guest-2 has joined",
  ]);
  assertEquals(b.got, [
    "* welcome guest-2: 1 other here; /nick NAME to pick a name, /help for commands",
  ]); // The welcome is a reply (for one client alone), the notice a broadcast.
  assertEquals(a.replies, [a.got[0]]);
  assertEquals(b.replies, b.got);
});

Deno.test("ChatServer: the messages of one read go to the others in one batch, in order", () => {
  const [chat, [a, b, c]] = room(3);
  const sent: number[] = [];
  const send = b.outbox.send;
  b.outbox.send = (bytes) => sent.push(bytes.length) > 0 && send(bytes);
  chat.receive(a, ["one", "two", "three"]);
  assertEquals(b.got, ["guest-1: one", "guest-1: two", "guest-1: three"]);
  assertEquals(c.got, b.got);
  assertEquals(a.got, []);
  assertEquals(sent.length, 1);
});

Deno.test("ChatServer: a read that relays past maxBatch goes as several broadcasts, paced between, in order", async () => {
  let waits = 0;
  let open: () => void = () => {};
  const [chat, [a, b]] = room(2, {
    maxBatch: 100,
    // the first wait is for real; the others find no one behind
    pace: () =>
      waits++ === 0
        ? new Promise<void>((resolve) => (open = resolve))
        : undefined,
  });
  const sent: number[] = [];
  const send = b.outbox.send;
  b.outbox.send = (bytes) => sent.push(bytes.length) > 0 && send(bytes);
  const texts = Array.from({ length: 12 }, (_, i) => `line ${i}`);
  const received = chat.receive(a, texts);
  assert(received instanceof Promise, "the room was paced: receive waits");
  assertEquals(sent, [80], "5 lines (19 bytes counted each), then the wait");
  open();
  await received;
  assertEquals(b.got, texts.map((text) => `guest-1: ${text}`));
  assertEquals(sent, [80, 80, 34]); // "line 10" and "line 11" are longer
  assertEquals(waits, 2, "no wait after the last piece: the caller paces");
  // a line longer than maxBatch goes alone; UTF-8 is counted, not UTF-16
  b.got.length = sent.length = 0;
  chat.receive(a, ["x", "名".repeat(40), "y"]);
  assertEquals(b.got.length, 3);
  assertEquals(sent, [11, 130, 11]);
});

Deno.test("ChatServer: a read within maxBatch is one broadcast, whatever its characters", () => {
  const [chat, [a, b]] = room(2, { maxBatch: 1000, pace: () => undefined });
  const sent: number[] = [];
  const send = b.outbox.send;
  b.outbox.send = (bytes) => sent.push(bytes.length) > 0 && send(bytes);
  chat.receive(a, Array.from({ length: 20 }, () => "名".repeat(10))); // 40 bytes each
  assertEquals(sent, [800]);
});

for (const framing of Object.values(FRAMINGS)) {
  Deno.test(`ChatServer (${framing.name}): an empty or blank message is not relayed; the rest of the read is`, () => {
    const [chat, [a, b]] = room(2, { framing });
    chat.receive(a, ["", "one", " ", "\t \u3000", "  two", "\u200b"]);
    assertEquals(b.got, [
      "guest-1: one",
      "guest-1:   two",
      "guest-1: <U+200B>",
    ]);
    chat.receive(a, ["", "   "]);
    assertEquals(b.got.length, 3, "a read of blank lines sends nothing");
    assertEquals(a.got, [], "and tells the sender nothing");
  });
}

Deno.test("ChatServer: a command between messages keeps the sender's order", () => {
  const [chat, [a, b]] = room(2);
  chat.receive(a, ["before", "/nick alice", "after"]);
  assertEquals(b.got, [
    "guest-1: before",
    "* guest-1 is now alice",
    "alice: after",
  ]);
  assertEquals(a.got, ["* you are now alice"]);
  assertEquals([a.replies, b.replies], [a.got, []]); // answers are replies
});

Deno.test("ChatServer: text is sanitized, invisible characters escaped, emoji kept", () => {
  const [chat, [a, b]] = room(2);
  chat.receive(a, ["\x1b[2J hi\u200b there \u202e 👨‍👩‍👧"]);
  assertEquals(b.got, ["guest-1: ^[[2J hi<U+200B> there <U+202E> 👨‍👩‍👧"]);
});

for (const framing of [FRAMINGS.line, FRAMINGS.length]) {
  Deno.test(`ChatServer (${framing.name}): what would outgrow the largest message once relayed is refused`, () => {
    const max = 64 * 1024;
    const [chat, [a, b]] = room(2, { maxMessage: max, framing });
    const worst = [
      "x".repeat(65_530), // fits as sent; the name prefix pushes it over
      "\x1b".repeat(40_000), // ESC becomes ^[: 80,000 bytes
      "\ufffd".repeat(65_000), // 65,000 bytes 0xFF come in as U+FFFD, 3 bytes each
      "\u202e".repeat(20_000), // 3 bytes in, 8 out
    ];
    for (const text of worst) chat.receive(a, [text]);
    assertEquals(b.got, []);
    assertEquals(a.got.length, worst.length);
    for (const notice of a.got) {
      assertMatch(
        notice,
        /^\* message not sent: it would be \d+ bytes once relayed \(your name and escapes included\); the limit is 65536$/,
      );
    }
    const fits = "y".repeat(max - "guest-1: ".length);
    chat.receive(a, [fits]);
    assertEquals(b.got, [`guest-1: ${fits}`]);
    assertEquals(b.largest, max);
  });
}

Deno.test("ChatServer: /who fits in one message, however many are here", () => {
  const chat = new ChatServer<Fake>({ maxMessage: 200 });
  const members = Array.from({ length: 50 }, (_, i) => fake(i + 1));
  for (const member of members) chat.enter(member);
  members[0].got.length = 0;
  chat.receive(members[0], ["/who"]);
  const [reply] = members[0].got;
  assert(new TextEncoder().encode(reply).length <= 200, reply);
  assertMatch(reply, /^\* 50 here: guest-1, guest-2, .*, … and \d+ more$/);
});

Deno.test("ChatServer: a quit message is cut to 200 characters; the leave notice fits", () => {
  const [chat, [a, b]] = room(2, { maxMessage: 1024 });
  chat.receive(a, [`/quit ${"z".repeat(5000)}`]);
  assert(a.closed);
  assertEquals(a.got, ["* bye"]);
  assertEquals(b.got, [`* guest-1 has left (quit: ${"z".repeat(200)}…)`]);
});

Deno.test("ChatServer: names are unique by key; guest-N and invisible names are refused", () => {
  const [chat, [a, b]] = room(2);
  chat.receive(a, ["/nick Alice"]);
  for (const name of ["alice", "ALİCE", "Ａｌｉｃｅ", "álice"]) {
    chat.receive(b, [`/nick ${name}`]);
  }
  chat.receive(b, ["/nick guest-1", "/nick al\u200bice", "/nick Alice"]);
  assertEquals(
    b.got.filter((l) => l.startsWith("* cannot") || l.startsWith("* you")),
    [
      '* cannot use that name: "alice" is taken',
      '* cannot use that name: "ALİCE" is taken',
      '* cannot use that name: "Ａｌｉｃｅ" is taken',
      '* cannot use that name: "álice" is taken',
      "* cannot use that name: guest-N names are given by the server",
      "* cannot use that name: no spaces, invisible or format characters",
      '* cannot use that name: "Alice" is taken',
    ],
  );
  chat.receive(a, ["/nick Alice"]);
  assertEquals(a.got.at(-1), "* you are Alice already");
});

Deno.test("ChatServer: a member renames 5 times at once, then once a second; the rest is refused to it alone", () => {
  let now = 0;
  const chat = new ChatServer<Fake>({ notices: { now: () => now } });
  const [a, b] = [1, 2].map((id) => fake(id));
  for (const member of [a, b]) chat.enter(member);
  const told = () => b.got.filter((line) => / is now /.test(line)).length;
  const refused = () =>
    a.got.filter((line) => line.startsWith("* too many name changes")).length;
  chat.receive(a, Array.from({ length: 8 }, (_, i) => `/nick a${i}`));
  assertEquals([told(), refused()], [RENAME_BURST, 3]);
  chat.receive(a, ["/nick guest-9"]); // refused for what it is, as ever
  assertEquals(
    a.got.at(-1),
    "* cannot use that name: guest-N names are given by the server",
  );
  now += 1000; // one more
  chat.receive(a, ["/nick later", "/nick later2"]);
  assertEquals([told(), refused()], [RENAME_BURST + 1, 4]);
  assertEquals(
    a.got.at(-1),
    "* too many name changes: 5 at once, then one a second; try again in a moment",
  );
});

Deno.test("ChatServer: every rename that asks the directory counts, taken names too", () => {
  let now = 0;
  const chat = new ChatServer<Fake>({ notices: { now: () => now } });
  const [a, b] = [1, 2].map((id) => fake(id));
  for (const member of [a, b]) chat.enter(member);
  chat.receive(a, ["/nick ada"]);
  chat.receive(b, Array.from({ length: RENAME_BURST }, () => "/nick ada"));
  chat.receive(b, ["/nick bob"]);
  assertEquals(
    b.got.at(-1),
    "* too many name changes: 5 at once, then one a second; try again in a moment",
  );
  now += 1000;
  chat.receive(b, ["/nick bob"]);
  assertEquals(b.got.at(-1), "* you are now bob");
});

Deno.test("ChatServer: rename notices are within the notices' budget (a member that reconnects has a new rename budget)", async () => {
  const chat = new ChatServer<Fake>({
    notices: { burst: 3, perSecond: 0, summaryMs: 60_000 },
  });
  const [a, b] = [1, 2].map((id) => fake(id));
  for (const member of [a, b]) chat.enter(member); // two of the three
  chat.receive(a, ["/nick ada"]);
  assertEquals(b.got.at(-1), "* guest-1 is now ada");
  chat.receive(b, ["/nick bob"]);
  assertEquals(b.got.at(-1), "* you are now bob");
  assert(!a.got.includes("* guest-2 is now bob"), "counted, not told");
  await chat.shutdown();
});

Deno.test("ChatServer: /who 5 times at once, then once a second; the rest is refused without asking the directory", () => {
  let now = 0;
  let asked = 0;
  const roster = new Roster();
  const chat = new ChatServer<Fake>({
    notices: { now: () => now },
    directory: {
      join: (n) => roster.join(n),
      rename: (id, name) => roster.rename(id, name),
      names: () => (asked++, roster.names()),
      leave: (id, reason) => roster.leave(id, reason),
    },
  });
  const [a, b] = [1, 2].map((id) => fake(id));
  for (const member of [a, b]) chat.enter(member);
  const answered = () => a.replies.filter((l) => / here: /.test(l)).length;
  chat.receive(a, Array.from({ length: 8 }, () => "/who"));
  assertEquals([answered(), asked], [WHO_BURST, WHO_BURST]);
  assertEquals(
    a.replies.at(-1),
    "* too many /who: 5 at once, then one a second; try again in a moment",
  );
  chat.receive(b, ["/who"]); // a budget of its own
  assertEquals(b.replies.at(-1), "* 2 here: guest-1, guest-2");
  now += 1000;
  chat.receive(a, ["/who", "/who"]);
  assertEquals([answered(), asked], [WHO_BURST + 1, WHO_BURST + 2]);
});

Deno.test("ChatServer: past its command budget a member's commands go unanswered, said at most once a second; its lines and /quit still go", () => {
  let now = 0;
  const [chat, [a, b]] = room(2, {
    maxCommands: 2,
    notices: { now: () => now },
  });
  const refusal =
    "* too many commands: 4 at once, then 2 a second; the rest went unanswered, try again in a moment";
  const unknown = (i: number | string) =>
    `* unknown command /x${i}; /help lists the commands`;
  chat.receive(a, [
    ...Array.from({ length: 20 }, (_, i) => `/x${i}`),
    "after the commands",
    "/help",
  ]);
  assertEquals(a.got, [
    ...Array.from({ length: 4 }, (_, i) => unknown(i)),
    refusal,
  ]);
  assertEquals(b.got, ["guest-1: after the commands"]);
  chat.receive(b, ["/x"]);
  assertEquals(b.got.at(-1), unknown(""));
  // Reads of one command each are not told again within the second.
  for (let i = 0; i < 10; i++) chat.receive(a, ["/x"]);
  assertEquals(a.got.length, 5, "no notice per read");
  now += 1000; // two tokens, and the notice once more
  chat.receive(a, ["/x", "/x", "/x"]);
  assertEquals(a.got.slice(5), [unknown(""), unknown(""), refusal]);
  chat.receive(a, ["/quit done"]);
  assertEquals([a.got.at(-1), a.closed], ["* bye", true]);
});

Deno.test("ChatServer: once a member's outbox refuses a reply (cut off), the rest of its read is not handled", () => {
  const [chat, [a, b]] = room(2);
  let taken = 0;
  let refused = 0;
  const reply = a.outbox.reply;
  (a as { outbox: Fake["outbox"] }).outbox = {
    send: a.outbox.send,
    reply: (bytes) => taken < 3 ? (taken++, reply(bytes)) : (refused++, false),
  };
  b.got.length = 0;
  chat.receive(a, [
    "before",
    ...Array.from({ length: 1000 }, () => "/x"),
    "after",
  ]);
  assertEquals([taken, refused], [3, 1]);
  assertEquals(b.got, ["guest-1: before"]);
});

Deno.test("ChatServer: thousands of commands in one read are answered in turns: a timer fires before the last, all in order", async () => {
  // no command budget: the turns alone
  const [chat, [a]] = room(2, { maxCommands: 1e9 });
  const COUNT = 100_000;
  a.got.length = 0;
  let answeredAtTimer = -1;
  const timer = new Promise<void>((resolve) =>
    setTimeout(() => {
      answeredAtTimer = a.got.length;
      resolve();
    }, 0)
  );
  const texts = Array.from({ length: COUNT }, (_, i) => `/x${i}`);
  const done = chat.receive(a, texts);
  assert(done instanceof Promise, "a long run yields");
  await done;
  await timer;
  assert(
    answeredAtTimer >= 0 && answeredAtTimer < COUNT,
    `the timer fired after ${answeredAtTimer} of ${COUNT} answers`,
  );
  assertEquals(a.got.length, COUNT);
  assertEquals(
    a.got.at(-1),
    `* unknown command /x${COUNT - 1}; /help lists the commands`,
  );
});

Deno.test("ChatServer: lines between commands go as paced broadcasts: the pacing is asked before a command that follows a batch", async () => {
  let go: () => void = () => {};
  let asked = 0;
  const [chat, [a, b]] = room(2, {
    pace: () => {
      asked++;
      return new Promise<void>((resolve) => (go = resolve));
    },
  });
  b.got.length = 0;
  a.got.length = 0;
  const done = chat.receive(a, ["one", "/x", "two", "/x", "three"]);
  assert(done instanceof Promise);
  assertEquals([b.got, asked], [["guest-1: one"], 1]);
  go();
  await new Promise((resolve) => setTimeout(resolve, 0));
  assertEquals([b.got, asked], [["guest-1: one", "guest-1: two"], 2]);
  go();
  await done;
  assertEquals(b.got, ["guest-1: one", "guest-1: two", "guest-1: three"]);
  assertEquals(a.got.length, 2, "both commands answered once");
});

Deno.test("ChatServer: an answer from another thread is awaited before the next line", async () => {
  let answer: (names: string[]) => void = () => {};
  const roster = new Roster();
  const chat = new ChatServer<Fake>({
    directory: {
      join: (n) => roster.join(n),
      rename: (id, name) => roster.rename(id, name),
      names: () => new Promise((resolve) => (answer = resolve)),
      leave: (id, reason) => roster.leave(id, reason),
    },
  });
  const [a, b] = [fake(1), fake(2)];
  chat.enter(a);
  chat.enter(b);
  b.got.length = 0;
  const done = chat.receive(a, ["/who", "after"]);
  assert(done instanceof Promise);
  assertEquals(b.got, []); // "after" waits for the answer
  answer(["guest-1", "guest-2"]);
  await done;
  assertEquals(a.got.at(-1), "* 2 here: guest-1, guest-2");
  assertEquals(b.got, ["guest-1: after"]);
});

Deno.test("ChatServer: leave is said once; drop tells the member why and closes it", async () => {
  const [chat, [a, b, c]] = room(3);
  chat.leave(a, "connection reset");
  chat.leave(a, "again");
  await chat.drop(b, "idle for 5 s");
  assertEquals(c.got, [
    "* guest-1 has left (connection reset)",
    "* guest-2 has left (idle for 5 s)",
  ]);
  assertEquals(b.got, [
    "* guest-1 has left (connection reset)",
    "* idle for 5 s; disconnecting",
  ]);
  assert(b.closed);
  assertEquals(chat.room.size, 1);
});

Deno.test("ChatServer: past a burst, joins and leaves are counted, not said one by one, and summed up after a while", async () => {
  const said = Promise.withResolvers<void>();
  const chat = new ChatServer<Fake>({
    notices: { burst: 2, perSecond: 0, summaryMs: 10 },
  });
  const [a, b, c, d] = [1, 2, 3, 4].map((id) => fake(id));
  for (const member of [a, b, c, d]) chat.enter(member);
  const { send } = a.outbox;
  a.outbox.send = (bytes) => (said.resolve(), send(bytes));
  chat.leave(d, ""); // counted: its join was
  chat.leave(c, ""); // counted: no budget left
  assertEquals(a.got.slice(1), ["* guest-2 has joined"]);
  const alive = setTimeout(() => {}, 5_000); // the summary's timer is unref'd
  await said.promise;
  clearTimeout(alive);
  const summed =
    "* 2 joined and 2 left just now (too many to announce one by one; /who lists who is here)";
  assertEquals(a.got.slice(1), ["* guest-2 has joined", summed]);
  assertEquals(b.got.slice(1), [summed]);
  chat.leave(b, "");
  await chat.shutdown();
});

Deno.test("ChatServer: an extra command is listed in /help and answered", () => {
  const chat = new ChatServer<Fake>({
    commands: [{ usage: "/stats", help: "counters", run: () => ["stats: 1"] }],
  });
  const a = fake(1);
  chat.enter(a);
  chat.receive(a, ["/help", "/stats", "/nope"]);
  assert(
    a.got.some((l) => /^\* {3}\/stats +counters$/.test(l)),
    a.got.join("\n"),
  );
  assertEquals(a.got.slice(-2), [
    "* stats: 1",
    "* unknown command /nope; /help lists the commands",
  ]);
});
