/**
 * Sandbox chat server: the playground's experiments as flags and commands.
 *
 * - Framing: `--framing line` (text lines, the default) or `--framing
 *   length` (a 4-byte big-endian length, then the message).
 * - Commands: `/nick NAME`, `/who`, `/quit [message]`, `/help`.
 * - Timeouts: `--idle-timeout SECONDS` disconnects a silent client.
 * - Limits: `--max-clients N`, `--max-frame BYTES`.
 * - LAN: `--host 0.0.0.0` listens on every interface and prints the
 *   addresses other machines can use.
 *
 * One thread serves every client: each socket call is asynchronous, so
 * while one client's read waits, the event loop serves the others (Deno's
 * answer to Python's `setblocking(False)` + `select`).
 *
 * Try it:
 *   deno run -A sandbox/server.ts                      # terminal A
 *   deno run -A sandbox/client.ts                      # terminals B, C
 *   deno run -A sandbox/server.ts --framing length     # then: client.ts --framing length
 *
 * @module
 */

import {
  chatMessage,
  ChatRoom,
  helpLines,
  type Member,
  MessageBatch,
  notice,
  parseChatInput,
} from "../lib/chat_room.ts";
import { type CliOptions, parseCliOrExit } from "../lib/cli.ts";
import { describePeerError } from "../lib/errors.ts";
import { type Decoder, DEFAULT_MAX_MESSAGE, FramingError } from "../lib/decoder.ts";
import { type Framing, FRAMINGS } from "../lib/framing.ts";
import { log, warn } from "../lib/log.ts";
import {
  accepted,
  addressOf,
  lanAddresses,
  listenOrExit,
  sayListening,
} from "../lib/net.ts";
import { DEFAULT_OUTBOX_LIMIT, Outbox, Pacer } from "../lib/outbox.ts";
import { readLoop } from "../lib/read_loop.ts";
import { decodeLines, decodeText, sanitizeText } from "../lib/sanitize.ts";
import { onShutdown } from "../lib/shutdown.ts";

const DEFAULT_PORT = 5003;

const FLAGS = {
  framing: {
    type: "string",
    description: "message framing: text lines, or 4-byte length prefixes",
    choices: ["line", "length"],
    default: "line",
  },
  maxFrame: {
    type: "integer",
    description: "largest message accepted, in bytes",
    placeholder: "BYTES",
    min: 1,
    default: DEFAULT_MAX_MESSAGE,
  },
  idleTimeout: {
    type: "seconds",
    description: "disconnect a client that completes no message for SECONDS",
    default: 0,
  },
  maxClients: {
    type: "integer",
    description: "refuse connections beyond N clients (default: no limit)",
    min: 1,
  },
  outboxLimit: {
    type: "integer",
    description:
      "bytes queued for a client that stops reading before it is cut off",
    placeholder: "BYTES",
    min: 1024,
    default: DEFAULT_OUTBOX_LIMIT,
  },
} as const;

type Options = CliOptions<typeof FLAGS>;

const HELP = helpLines([
  ["/nick NAME", "change your name (1-32 printable characters, no spaces)"],
  ["/who", "who is here"],
  ["/quit [message]", "leave, with a last word for the others"],
  ["/help", "this list"],
  ["//text", "send text that starts with /"],
]);

/** A client of the room. */
interface Client extends Member {
  readonly outbox: Outbox;
  readonly peer: string;
  /** Set once it left the room. */
  left?: boolean;
}

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "sandbox/server.ts",
    summary:
      "chat playground server: framing, commands, timeouts, limits, LAN.",
    role: "server",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--host 0.0.0.0 --framing length --idle-timeout 60",
  });
  const framing = FRAMINGS[options.framing];

  // We say we listen once Ctrl+C is handled too.
  const listener = listenOrExit(options, { quiet: true });
  const server = new SandboxServer(options, framing);
  onShutdown(async (signal) => {
    log(`${signal}: telling every client, then stopping`);
    listener.close();
    await server.shutdown();
    log("bye");
    Deno.exit(0);
  });
  sayListening(listener.addr);
  log(`framing: ${framing.name}; max frame ${options.maxFrame} bytes`);
  for (const line of lanAddresses(options.host, listener.addr.port)) log(line);

  // accept() forever; each client is served concurrently on this one thread.
  for await (const conn of accepted(listener)) void server.serve(conn);
}

/** The room and the rules of the sandbox. */
class SandboxServer {
  readonly room = new ChatRoom<Client>();
  /** Pacing: senders wait while a client's outbox is congested (see outbox.ts). */
  readonly #pacer = new Pacer(() =>
    [...this.room.members()].map((client) => client.outbox)
  );
  #nextId = 1;

  constructor(readonly options: Options, readonly framing: Framing) {}

  /** Encodes one notice in this server's framing. */
  #notice(text: string): Uint8Array {
    return this.framing.encode(notice(text));
  }

  /** Tells everyone but `exceptId`. */
  #announce(text: string, exceptId?: number): void {
    this.room.broadcast(this.#notice(text), exceptId);
  }

  async serve(conn: Deno.TcpConn): Promise<void> {
    const id = this.#nextId++;
    const peer = addressOf(conn.remoteAddr);
    let gone = "";
    const outbox = new Outbox(conn, {
      limit: this.options.outboxLimit,
      onOverflow: (queued) => (gone = `too slow: ${queued} bytes unread`),
      onError: (error) => (gone = describePeerError(error)),
    });
    const max = this.options.maxClients;
    if (max !== undefined && this.room.size >= max) {
      log(`${peer} refused: server full (${max} clients)`);
      await outbox.close(
        this.#notice(`server full (${max} clients); try again later`),
      );
      return;
    }

    const client: Client = { id, name: `guest-${id}`, peer, outbox };
    this.#enter(client);
    const idle = this.options.idleTimeout;
    // Lines come in runs (one view of all the lines a read completed),
    // decoded in one call; length frames one by one.
    const lines = this.framing.name === "line";
    const decoder = new MismatchGuard(
      this.framing.decoder(this.options.maxFrame, { runs: lines }),
      this.framing,
    );
    const end = await readLoop(conn, {
      decoder,
      onMessages: (messages) => {
        this.#handle(
          client,
          lines ? messages.flatMap(decodeLines) : messages.map(decodeText),
        );
        return this.#pacer.wait();
      },
      idleTimeoutMs: idle * 1000,
      onIdle: () => {
        this.#leave(client, `idle for ${idle} s`);
        return outbox.close(this.#notice(`idle for ${idle} s; disconnecting`));
      },
    });
    switch (end.kind) {
      case "framing": {
        const reason = end.error.message;
        this.#leave(client, reason);
        warn(`${peer}: ${reason}`);
        await outbox.close(this.#notice(`${reason}; disconnecting`));
        return;
      }
      case "reset":
        gone = describePeerError(end.error);
        break;
    }
    this.#leave(client, gone);
    await outbox.close();
  }

  #enter(client: Client): void {
    const others = this.room.size;
    this.room.join(client);
    log(`${client.name} joined from ${client.peer}`);
    client.outbox.send(this.#notice(
      `welcome ${client.name}: ${others} other${
        others === 1 ? "" : "s"
      } here; ` +
        `/nick NAME to pick a name, /help for commands`,
    ));
    this.#announce(`${client.name} has joined`, client.id);
  }

  #leave(client: Client, reason: string): void {
    if (client.left) return;
    client.left = true;
    this.room.leave(client.id);
    log(`${client.name} left${reason ? ` (${reason})` : ""}`);
    this.#announce(`${client.name} has left${reason ? ` (${reason})` : ""}`);
  }

  /** The messages of one read: chat goes out as one block; commands are answered. */
  #handle(client: Client, texts: string[]): void {
    const batch = new MessageBatch(this.framing);
    const flush = (): void => {
      const block = batch.take();
      if (block) this.room.broadcast(block, client.id);
    };
    for (const text of texts) {
      if (client.left) break;
      // Commands are read raw (a nickname with control characters is refused,
      // not escaped); everything relayed is sanitized.
      const input = parseChatInput(text);
      if (input.kind === "message") {
        batch.add(chatMessage(client.name, sanitizeText(input.text)));
        continue;
      }
      flush(); // keep this client's messages and commands in order
      this.#command(client, input.name, input.arg);
    }
    flush();
  }

  #command(client: Client, name: string, arg: string): void {
    const reply = (text: string): void =>
      void client.outbox.send(this.#notice(text));
    switch (name) {
      case "/nick":
        return this.#nick(client, arg, reply);
      case "/who": {
        const names = [...this.room.members()].map((m) => m.name);
        return reply(`${names.length} here: ${names.join(", ")}`);
      }
      case "/quit":
        this.#leave(client, arg ? `quit: ${sanitizeText(arg)}` : "quit");
        void client.outbox.close(this.#notice("bye"));
        return;
      case "/help":
        for (const line of HELP) client.outbox.send(this.framing.encode(line));
        return;
      default:
        reply(
          `unknown command ${sanitizeText(name)}; /help lists the commands`,
        );
    }
  }

  #nick(client: Client, name: string, reply: (text: string) => void): void {
    const problem = nickProblem(name);
    if (problem) return reply(`cannot use that name: ${problem}`);
    const holder = this.room.byName(name);
    if (holder && holder.id !== client.id) {
      return reply(`cannot use that name: "${name}" is taken`);
    }
    const old = client.name;
    client.name = name;
    log(`${old} is now ${name}`);
    reply(`you are now ${name}`);
    this.#announce(`${old} is now ${name}`, client.id);
  }

  /** Every client gets a last notice, then the connections close. */
  async shutdown(): Promise<void> {
    const bye = this.#notice("server shutting down");
    await Promise.all(
      [...this.room.members()].map((client) => client.outbox.close(bye)),
    );
  }
}

/**
 * A decoder that recognizes a client speaking the other framing, from its
 * first bytes, and says so instead of a puzzling error: length frames start
 * with NUL bytes (a short message's length), text starts with letters.
 */
class MismatchGuard implements Decoder {
  #first = true;

  constructor(readonly inner: Decoder, readonly framing: Framing) {}

  get buffered(): number {
    return this.inner.buffered;
  }

  push(chunk: Uint8Array): Uint8Array[] {
    if (this.#first && chunk.length > 0) {
      this.#first = false;
      if (this.framing.name === "line" && chunk[0] === 0) {
        throw new FramingError(
          "this server uses line framing (text ending in \\n) but got binary data: " +
            "is the client using --framing length?",
        );
      }
      try {
        return this.inner.push(chunk);
      } catch (error) {
        const prefix = error instanceof FramingError ? error.prefix : undefined;
        if (prefix && prefix.every((b) => b >= 0x20 && b < 0x7f)) {
          throw new FramingError(
            "this server uses length-prefixed framing (4-byte big-endian length, then " +
              `the message) but got text ("${
                new TextDecoder().decode(prefix)
              }..."): ` +
              "is the client using --framing line?",
          );
        }
        throw error;
      }
    }
    return this.inner.push(chunk);
  }

  end(): Uint8Array | null {
    return this.inner.end();
  }
}

/**
 * Why `name` cannot be a nickname, or `null` if it can: 1–32 printable
 * characters, no spaces, no control characters.
 */
export function nickProblem(name: string): string | null {
  const length = [...name].length;
  if (length === 0) return "give one, e.g. /nick alice";
  if (length > 32) return `${length} characters; 32 at most`;
  // deno-lint-ignore no-control-regex -- control characters are what is refused
  if (/[\s\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/.test(name)) {
    return "no spaces or control characters";
  }
  if (name.startsWith("*") || name.startsWith("/")) {
    return "it may not start with * or /";
  }
  return null;
}

if (import.meta.main) await main();
