/**
 * The rules of the chat, written once for every server that hosts it (the
 * sandbox's one thread, each worker of the threaded server): joining,
 * leaving, relaying each read's messages as one batch, and the commands
 * `/nick`, `/who`, `/quit`, `/help` (plus any a server adds).
 *
 * A server's own code carries bytes: it accepts connections, reads,
 * decodes, and hands each read's texts to {@linkcode ChatServer.receive};
 * the chat decides who gets what. Everything relayed is sanitized
 * (`sanitize.ts`) and bounded: a message that would grow past the largest
 * message once its sender's name and escapes are added is refused with a
 * notice, so the server never sends what its own clients would refuse.
 * Join, leave and rename notices go out one by one within a budget
 * (`notice_budget.ts`); past it they are counted and summed up. Each member
 * has a budget of commands, of renames and of `/who` too (`token_bucket.ts`),
 * and a member cut off as too slow gets nothing more answered.
 *
 * @example
 * ```ts
 * import { ChatServer } from "./chat_server.ts";
 * import { FRAMINGS } from "./framing.ts";
 *
 * const chat = new ChatServer();
 * const sent: string[] = [];
 * const send = (b: Uint8Array) => sent.push(new TextDecoder().decode(b)) > 0;
 * const member = (id: number) => ({
 *   id, name: `guest-${id}`, peer: "127.0.0.1", framing: FRAMINGS.line,
 *   outbox: { send, reply: send },
 *   close: () => Promise.resolve(),
 * });
 * const [a, b] = [member(1), member(2)];
 * chat.enter(a);
 * chat.enter(b);
 * chat.receive(a, ["hello"]); // b gets "guest-1: hello"
 * ```
 *
 * @module
 */

import {
  chatMessage,
  ChatRoom,
  helpLines,
  isCommand,
  isQuit,
  type Member,
  notice,
  Outgoing,
  parseChatInput,
} from "./chat_room.ts";
import { DEFAULT_MAX_MESSAGE } from "./decoder.ts";
import { cooperate } from "./coop.ts";
import { utf8Length } from "./encoders.ts";
import { LeaveCollector } from "./leave_collector.ts";
import { nickProblem } from "./nick.ts";
import { NoticeBudget, type NoticeBudgetOptions } from "./notice_budget.ts";
import { type Directory, Roster } from "./roster.ts";
import { sanitizeText } from "./sanitize.ts";
import { TokenBucket } from "./token_bucket.ts";
import type { NumberFlag } from "./cli.ts";

/** The most bytes one broadcast carries by default: 128 KiB. */
export const DEFAULT_MAX_BATCH = 128 * 1024;

/** Commands answered between two looks at whether the event loop is due a turn. */
const COMMANDS_PER_LOOK = 64;

/** A relayed line's bytes beyond its text: a 4-byte prefix at most ("\n": 1). */
const LINE_OVERHEAD = 4;

function lineBytes(sum: number, line: string): number {
  return sum + utf8Length(line) + LINE_OVERHEAD;
}

/** A client in the chat, whatever carries its bytes. */
export interface ChatMember extends Member {
  /** Its address, for the log. */
  readonly peer: string;
  /** Sends what is queued, then `last` (if any), then closes the connection. */
  close(last?: Uint8Array): Promise<void>;
  /** Set once it left the chat, with why. */
  left?: string;
}

/** A command a server adds to the chat's own, e.g. `/stats`. */
export interface ChatCommand {
  /** How it is typed, for `/help`: `/stats`. */
  readonly usage: string;
  /** What it does, for `/help`. */
  readonly help: string;
  /** The reply: notice lines for the member who asked. */
  run(member: ChatMember, arg: string): string[];
}

/**
 * Renames a member may try at once; after them, one a second (each is told
 * to everyone, so a rename flood would bury the chat).
 */
export const RENAME_BURST = 5;

/**
 * `/who` a member may ask at once; after them, one a second (each answer
 * costs the server a pass over everyone's name, and its size in bytes).
 */
export const WHO_BURST = 5;

/**
 * Commands a member may send a second, after twice as many at once. Past
 * that budget a command is not answered, and the member is told at most
 * once a second: answering a flood of commands costs the server, and
 * everyone else, no more than this rate (`/quit` is always answered).
 */
export const COMMANDS_PER_SECOND = 50;

/**
 * `--max-commands N`: each client's command budget, {@linkcode COMMANDS_PER_SECOND}
 * unless told.
 *
 * @example
 * ```ts
 * import { MAX_COMMANDS_FLAG } from "./chat_server.ts";
 * const FLAGS = { maxCommands: MAX_COMMANDS_FLAG } as const;
 * ```
 */
export const MAX_COMMANDS_FLAG = {
  type: "integer",
  description: "commands a client may send a second, after twice as many at " +
    "once; past it they go unanswered",
  placeholder: "N",
  min: 1,
  default: COMMANDS_PER_SECOND,
} as const satisfies NumberFlag;

/** Options of {@linkcode ChatServer}. */
export interface ChatServerOptions<M extends ChatMember = ChatMember> {
  /**
   * The room of local members (default: a new {@linkcode ChatRoom}); a host
   * whose members' bytes travel elsewhere may pass one that delivers its own way.
   */
  room?: ChatRoom<M>;
  /** Names and `/who` (default: a {@linkcode Roster} of this server alone). */
  directory?: Directory;
  /** The largest message sent, in bytes, name and escapes included (default 64 KiB). */
  maxMessage?: number;
  /** Where this chat runs, shown in the welcome (e.g. `worker 2`). */
  where?: string;
  /** Sends what the room broadcasts to the rest of the chat (other workers). */
  relay?: (message: Outgoing) => void;
  /** Commands besides `/nick`, `/who`, `/quit` and `/help`. */
  commands?: readonly ChatCommand[];
  /** Called with the number of chat messages relayed, per batch. */
  onRelayed?: (count: number) => void;
  /**
   * The most bytes one broadcast carries (default 128 KiB: an eighth of the
   * default outbox bound). A read of short lines from a long name relays
   * many times its size: it goes as several broadcasts, with `pace` between.
   */
  maxBatch?: number;
  /** The server's pacing, awaited between the broadcasts of one read (`undefined`: go on now). */
  pace?: () => Promise<void> | undefined;
  /**
   * How many join, leave and rename notices are said one by one (see
   * `notice_budget.ts`); its clock (`now`) times each member's renames and
   * `/who` too.
   */
  notices?: Omit<NoticeBudgetOptions, "say">;
  /**
   * Commands each member may send a second, after twice as many at once
   * (default {@linkcode COMMANDS_PER_SECOND}), timed on `notices.now`.
   */
  maxCommands?: number;
}

/**
 * The chat's rules over one room of local members.
 *
 * @example
 * ```ts
 * import { ChatServer } from "./chat_server.ts";
 * import { Roster } from "./roster.ts";
 * const chat = new ChatServer({ directory: new Roster({ log: console.log }) });
 * chat.room.size; // 0
 * ```
 */
export class ChatServer<M extends ChatMember = ChatMember> {
  /** The members served here. */
  readonly room: ChatRoom<M>;
  readonly #directory: Directory;
  readonly #maxMessage: number;
  readonly #maxBatch: number;
  readonly #options: ChatServerOptions<M>;
  readonly #help: Outgoing;
  /** Memory back once a crowd left (see leave_collector.ts); stopped at shutdown. */
  readonly #collector = new LeaveCollector();
  /** Set by {@linkcode ChatServer.shutdown}: nothing more is relayed. */
  #closing = false;
  /** Join, leave and rename notices past a burst are counted, not said one by one. */
  readonly #notices: NoticeBudget;
  /** Each member's budgets for what costs the others (see `#budget`). */
  readonly #budgets = new WeakMap<M, Budgets>();
  /** Members whose outbox refused a reply (cut off as too slow): nothing more is done for them. */
  readonly #full = new WeakSet<M>();
  readonly #maxCommands: number;
  /** The notice past a member's command budget. */
  readonly #tooManyCommands: string;

  /** A chat; see {@linkcode ChatServerOptions}. */
  constructor(options: ChatServerOptions<M> = {}) {
    this.#options = options;
    this.room = options.room ?? new ChatRoom<M>();
    this.#directory = options.directory ?? new Roster();
    this.#maxMessage = options.maxMessage ?? DEFAULT_MAX_MESSAGE;
    this.#maxBatch = options.maxBatch ?? DEFAULT_MAX_BATCH;
    this.#maxCommands = options.maxCommands ?? COMMANDS_PER_SECOND;
    this.#tooManyCommands = `too many commands: ${2 * this.#maxCommands} ` +
      `at once, then ${this.#maxCommands} a second; the rest went ` +
      "unanswered, try again in a moment";
    this.#notices = new NoticeBudget({
      ...options.notices,
      say: (text) => {
        if (!this.#closing) this.#announce(text);
      },
    });
    this.#help = Outgoing.of(helpLines([
      ["/nick NAME", "change your name (1-32 visible characters, no spaces)"],
      ["/who", "who is here"],
      ...(options.commands ?? []).map((c) => [c.usage, c.help] as const),
      ["/quit [message]", "leave, with a last word for the others"],
      ["/help", "this list"],
      ["//text", "send text that starts with /"],
    ]));
  }

  /** Welcomes `member`, and tells everyone else. */
  enter(member: M): void | Promise<void> {
    const others = this.#directory.join({
      id: member.id,
      name: member.name,
      peer: member.peer,
      where: this.#options.where,
    });
    if (typeof others !== "number") {
      return others.then((count) => this.#entered(member, count));
    }
    this.#entered(member, others);
  }

  #entered(member: M, others: number): void {
    const where = this.#options.where ? ` (${this.#options.where})` : "";
    this.#reply(member, [
      `welcome ${member.name}${where}: ${others} other${
        others === 1 ? "" : "s"
      } here; /nick NAME to pick a name, /help for commands`,
    ]);
    this.room.join(member);
    if (this.#notices.joined(member.id)) {
      this.#announce(`${member.name} has joined`, member.id);
    }
  }

  /**
   * The texts one read brought, in order: chat messages go out as one
   * batch (empty or blank ones are dropped) or, past `maxBatch` bytes,
   * several, paced; commands are answered. Resolves (when a command had to
   * ask another thread, or the room was paced) once every text was handled.
   */
  receive(member: M, texts: readonly string[], from = 0): void | Promise<void> {
    if (this.#closing) return; // shutting down: the goodbyes go out alone
    this.#collector.busy(); // traffic: no collection now
    let batch: string[] = [];
    // UTF-16 units times 3 bound the bytes, so most reads are never counted.
    let units = 0;
    let bytes = -1; // counted exactly once `units` no longer settles it
    let commands = 0;
    let refused = false; // past the budget: this read's commands go unanswered
    for (let i = from; i < texts.length; i++) {
      if (this.#gone(member)) break;
      const text = texts[i];
      if (refused && isCommand(text) && !isQuit(text)) continue; // no clock, no parse
      const input = parseChatInput(text);
      if (input.kind === "message") {
        if (blank(input.text)) continue; // Enter on an empty prompt says nothing
        const line = this.#relayable(member, input.text);
        if (line === null) continue;
        units += line.length + LINE_OVERHEAD;
        if (units * 3 > this.#maxBatch) {
          if (bytes < 0) bytes = batch.reduce(lineBytes, 0);
          bytes = lineBytes(bytes, line);
          if (bytes > this.#maxBatch && batch.length > 0) {
            this.#send(member, batch);
            // this line again, once no receiver is behind
            const paced = this.#options.pace?.();
            if (paced) return paced.then(() => this.receive(member, texts, i));
            batch = [];
            units = line.length + LINE_OVERHEAD;
            bytes = -1;
          }
        }
        batch.push(line);
        continue;
      }
      if (batch.length > 0) {
        this.#send(member, batch); // keep this member's lines in order
        batch = [];
        units = 0;
        bytes = -1;
        // this command, once no receiver is behind: lines between commands
        // must not go as many broadcasts with no pacing between them
        const paced = this.#options.pace?.();
        if (paced) return paced.then(() => this.receive(member, texts, i));
      }
      // Past its budget, the read's commands are not answered (said at most
      // once a second, however small the reads): a flood of them costs the
      // server a glance each. /quit ends a session whatever came before it.
      const budgets = this.#budget(member);
      if (!isQuit(text) && !budgets.commands.take()) {
        if (budgets.refusals.take()) {
          this.#reply(member, [this.#tooManyCommands]);
        }
        refused = true;
        continue;
      }
      const asked = this.#command(member, input.name, input.arg);
      if (asked) return asked.then(() => this.receive(member, texts, i + 1));
      // A read may hold thousands of commands: every so many, the rest wait
      // for the event loop's turn once it is due, so other clients are read
      // meanwhile (a person's few commands are answered at once).
      if (++commands % COMMANDS_PER_LOOK === 0) {
        const turn = cooperate();
        if (turn) return turn.then(() => this.receive(member, texts, i + 1));
      }
    }
    this.#send(member, batch);
  }

  /** Removes `member` (once) and tells everyone else why (`reason` may be empty). */
  leave(member: M, reason: string): void {
    if (member.left !== undefined) return;
    member.left = reason;
    this.room.leave(member.id);
    this.#collector.left();
    if (this.#closing) return; // at a shutdown everyone goes: no one is told
    this.#directory.leave(member.id, reason);
    if (!this.#notices.left(member.id)) return; // counted, for the summary
    this.#announce(
      this.#fit(`${member.name} has left${reason ? ` (${reason})` : ""}`),
    );
  }

  /** Removes `member`, tells it `reason` (`* REASON; disconnecting`), and closes it. */
  drop(member: M, reason: string): Promise<void> {
    this.leave(member, reason);
    return member.close(this.#encoded(member, `${reason}; disconnecting`));
  }

  /** Says `text` to `member` alone, as a `* ` notice. */
  tell(member: M, text: string): void {
    this.#reply(member, [text]);
  }

  /**
   * Every member here gets a last notice, then its connection closes;
   * nothing sent meanwhile is relayed, so the goodbyes go out unhurried.
   */
  async shutdown(): Promise<void> {
    this.#closing = true;
    this.#collector.stop();
    this.#notices.stop();
    await Promise.all(
      [...this.room.members()].map((member) =>
        member.close(this.#encoded(member, "server shutting down"))
      ),
    );
  }

  /** `NAME: TEXT` sanitized, or `null` (and a notice) if it would not fit. */
  #relayable(member: M, text: string): string | null {
    const line = chatMessage(member.name, sanitizeText(text));
    // UTF-8 takes at most 3 bytes per UTF-16 unit: most lines need no count.
    if (line.length * 3 <= this.#maxMessage) return line;
    const size = utf8Length(line);
    if (size <= this.#maxMessage) return line;
    this.#reply(member, [
      `message not sent: it would be ${size} bytes once relayed (your name ` +
      `and escapes included); the limit is ${this.#maxMessage}`,
    ]);
    return null;
  }

  /** Runs a command; returns a promise when it must wait for an answer. */
  #command(member: M, name: string, arg: string): Promise<void> | undefined {
    switch (name) {
      case "/nick":
        return this.#nick(member, arg);
      case "/who": {
        if (!this.#budget(member).who.take()) {
          return this.#reply(member, [tooMany("/who", WHO_BURST)]);
        }
        const names = this.#directory.names();
        if (Array.isArray(names)) return void this.#who(member, names);
        return names.then((list) => this.#who(member, list));
      }
      case "/quit": {
        const last = arg ? `quit: ${clip(sanitizeText(arg), 200)}` : "quit";
        this.leave(member, last);
        void member.close(this.#encoded(member, "bye"));
        return;
      }
      case "/help":
        return void this.#replied(member, this.#help.bytes(member.framing));
    }
    const extra = this.#options.commands?.find((c) => c.usage === name);
    if (extra) return this.#reply(member, extra.run(member, arg));
    this.#reply(member, [
      this.#fit(
        `unknown command ${
          clip(sanitizeText(name), 40)
        }; /help lists the commands`,
      ),
    ]);
  }

  #nick(member: M, name: string): Promise<void> | undefined {
    const problem = nickProblem(name);
    if (problem) {
      return this.#reply(member, [`cannot use that name: ${problem}`]);
    }
    // Every try that asks the directory counts (another thread, in the
    // threaded server), taken names too.
    if (!this.#budget(member).renames.take()) {
      return this.#reply(member, [tooMany("name changes", RENAME_BURST)]);
    }
    const renamed = (result: string): void => {
      if (result === "taken") {
        return this.#reply(member, [
          `cannot use that name: "${name}" is taken`,
        ]);
      }
      if (result === "unchanged") {
        return this.#reply(member, [`you are ${name} already`]);
      }
      const old = member.name;
      member.name = name;
      this.#reply(member, [`you are now ${name}`]);
      // within the notices' budget: a member that reconnects has a new
      // rename budget, so renames are budgeted for everyone too
      if (this.#notices.renamed(member.id)) {
        this.#announce(`${old} is now ${name}`, member.id);
      }
    };
    const result = this.#directory.rename(member.id, name);
    if (typeof result === "string") return void renamed(result);
    return result.then(renamed);
  }

  /** `member`'s budgets, made at its first use of one. */
  #budget(member: M): Budgets {
    let budgets = this.#budgets.get(member);
    if (budgets === undefined) {
      const now = this.#options.notices?.now;
      budgets = {
        commands: new TokenBucket({
          burst: 2 * this.#maxCommands,
          perSecond: this.#maxCommands,
          now,
        }),
        refusals: new TokenBucket({ burst: 1, perSecond: 1, now }),
        renames: new TokenBucket({ burst: RENAME_BURST, perSecond: 1, now }),
        who: new TokenBucket({ burst: WHO_BURST, perSecond: 1, now }),
      };
      this.#budgets.set(member, budgets);
    }
    return budgets;
  }

  /** `N here: a, b, …`, as many names as fit in one message. */
  #who(member: M, names: string[]): void {
    if (this.#gone(member)) return;
    let shown = `${names.length} here: `;
    let bytes = utf8Length(notice(shown));
    for (let i = 0; i < names.length; i++) {
      const next = `${i === 0 ? "" : ", "}${names[i]}`;
      const more = `${i === 0 ? "" : ", "}… and ${names.length - i} more`;
      // Room for this name, and for saying how many more there would be.
      const after = bytes + utf8Length(next);
      const rest = names.length - i - 1;
      const tail = rest > 0 ? utf8Length(`, … and ${rest} more`) : 0;
      if (after + tail > this.#maxMessage) {
        shown += more;
        break;
      }
      shown += next;
      bytes = after;
    }
    this.#reply(member, [shown]);
  }

  /** Sends a batch of chat lines from `member` to everyone else. */
  #send(member: M, batch: string[]): void {
    if (batch.length === 0) return;
    const message = Outgoing.of(batch);
    this.room.broadcast(message, member.id);
    this.#options.relay?.(message);
    this.#options.onRelayed?.(batch.length);
  }

  /** Tells everyone but `exceptId`, on every worker. */
  #announce(text: string, exceptId?: number): void {
    const message = Outgoing.of([notice(text)]);
    this.room.broadcast(message, exceptId);
    this.#options.relay?.(message);
  }

  #reply(member: M, texts: string[]): undefined {
    this.#replied(member, Outgoing.of(texts.map(notice)).bytes(member.framing));
    return undefined;
  }

  /** Queues a reply; an outbox that refuses it cut its client off. */
  #replied(member: M, bytes: Uint8Array): void {
    if (!member.outbox.reply(bytes)) this.#full.add(member);
  }

  /**
   * Whether `member` left, or can take no more: the rest of what it sent
   * is not handled (a command flood would otherwise be answered in full to
   * a client already cut off).
   */
  #gone(member: M): boolean {
    return member.left !== undefined || this.#full.has(member);
  }

  #encoded(member: M, text: string): Uint8Array {
    return Outgoing.of([notice(text)]).bytes(member.framing);
  }

  /** `text`, cut (with `…`) so that its notice fits in one message. */
  #fit(text: string): string {
    const room = this.#maxMessage - 2; // "* "
    if (text.length * 3 <= room || utf8Length(text) <= room) return text;
    const chars = [...text];
    let bytes = utf8Length(text);
    while (chars.length > 0 && bytes + 3 > room) {
      bytes -= utf8Length(chars.pop()!);
    }
    return `${chars.join("")}…`;
  }
}

/** What a member may do that costs the others, each in a budget of its own. */
interface Budgets {
  commands: TokenBucket;
  /** The notice that commands went unanswered: once a second at most. */
  refusals: TokenBucket;
  renames: TokenBucket;
  who: TokenBucket;
}

/** The refusal past a member's budget of `what`. */
function tooMany(what: string, burst: number): string {
  return `too many ${what}: ${burst} at once, then one a second; try again in a moment`;
}

/** Empty, or only spaces: nothing for the others to read. */
function blank(text: string): boolean {
  return text.length === 0 || (/^\s/.test(text) && text.trim().length === 0);
}

/** At most `max` UTF-16 units of `text`, with `…` if cut (never inside a pair). */
function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const cut = /[\ud800-\udbff]/.test(text[max - 1]) ? max - 1 : max;
  return `${text.slice(0, cut)}…`;
}
