/**
 * Sandbox chat server: the playground's experiments as flags and commands.
 *
 * - Framing: `--framing line` (text lines, the default) or `--framing
 *   length` (a 4-byte big-endian length, then the message).
 * - Commands: `/nick NAME`, `/who`, `/quit [message]`, `/help`.
 * - Timeouts: `--idle-timeout SECONDS` disconnects a silent client.
 * - Limits: `--max-clients N`, `--max-frame BYTES`, `--max-unfinished BYTES`,
 *   `--max-replies BYTES`, `--max-commands N` (a second, per client).
 * - LAN: `--host 0.0.0.0` listens on every interface and prints the
 *   addresses other machines can use.
 *
 * One thread serves every client: each socket call is asynchronous, so
 * while one client's read waits, the event loop serves the others (Deno's
 * answer to Python's `setblocking(False)` + `select`). The read loop and the
 * bounded output queue come from `lib/` (`read_loop.ts`, `outbox.ts`): they
 * do what basic/ showed by hand, plus the bounds a server on a network needs.
 *
 * Try it:
 *   deno run -A sandbox/server.ts                      # terminal A
 *   deno run -A sandbox/client.ts                      # terminals B, C
 *   deno run -A sandbox/server.ts --framing length     # then: client.ts --framing length
 *
 * @module
 */

import {
  type ChatMember,
  ChatServer,
  MAX_COMMANDS_FLAG,
} from "../lib/chat_server.ts";
import { type CliOptions, parseCliOrExit } from "../lib/cli.ts";
import { DEFAULT_MAX_MESSAGE } from "../lib/decoder.ts";
import { FRAMINGS, guardFraming } from "../lib/framing.ts";
import { log, warn } from "../lib/log.ts";
import {
  accepted,
  addressOf,
  lanAddresses,
  listenOrExit,
  sayListening,
} from "../lib/net.ts";
import { guestName } from "../lib/nick.ts";
import {
  DEFAULT_OUTBOX_LIMIT,
  MAX_REPLIES_FLAG,
  Outbox,
  outboxLimitProblem,
  Pacer,
  repliesLimit,
} from "../lib/outbox.ts";
import { DEFAULT_PENDING_LIMIT, PendingLimit } from "../lib/pending_limit.ts";
import { endReason, readLoop } from "../lib/read_loop.ts";
import { Roster } from "../lib/roster.ts";
import { decodeLines, decodeText } from "../lib/sanitize.ts";
import { onShutdown } from "../lib/shutdown.ts";
import { acceptHandshake } from "../lib/tls.ts";
import {
  listenTlsOrExit,
  serverTlsOrExit,
  TLS_SERVER_FLAGS,
} from "../lib/tls_options.ts";
import { WIRE_FLAG, type WireLog, wireLogFor } from "../lib/wire.ts";
import { wireAccepted } from "../lib/wire_conn.ts";
import { serveWebOrExit, WEB_FLAG, type WebChat } from "../lib/web_chat.ts";

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
    description: "largest message accepted or sent, in bytes",
    placeholder: "BYTES",
    min: 64,
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
  maxUnfinished: {
    type: "integer",
    description:
      "bytes of unfinished messages held for all clients together; " +
      "past it, the client holding the most is disconnected",
    placeholder: "BYTES",
    min: 1024,
    default: DEFAULT_PENDING_LIMIT,
  },
  maxReplies: MAX_REPLIES_FLAG,
  maxCommands: MAX_COMMANDS_FLAG,
  ...TLS_SERVER_FLAGS,
  wire: WIRE_FLAG,
  web: WEB_FLAG,
} as const;

type Options = CliOptions<typeof FLAGS>;

async function main(): Promise<void> {
  const options = parseCliOrExit(Deno.args, {
    script: "sandbox/server.ts",
    summary:
      "chat playground server: framing, commands, timeouts, limits, LAN.",
    role: "server",
    defaultPort: DEFAULT_PORT,
    flags: FLAGS,
    example: "--host 0.0.0.0 --framing length --idle-timeout 60",
    check: (o) =>
      outboxLimitProblem(o.outboxLimit, {
        bytes: o.maxFrame,
        flag: "--max-frame",
        times: 2,
      }),
  });
  const server = new SandboxServer(options);
  const certificate = await serverTlsOrExit(options); // --tls

  // Ctrl+C is handled before we listen, so no client ever meets a server
  // that dies without a goodbye.
  let listener: Deno.Listener | undefined = undefined;
  let web: WebChat | undefined = undefined;
  onShutdown(async (signal) => {
    log(`${signal}: telling every client, then stopping`);
    listener?.close();
    await server.chat.shutdown();
    await web?.shutdown(); // after the chat told every browser why
    log("bye");
    Deno.exit(0);
  });

  // socket() + bind() + listen(), with TLS on top when asked
  if (certificate) {
    listener = listenTlsOrExit(options, certificate);
    sayListening(listener.addr, " (TLS)");
  } else {
    listener = listenOrExit(options);
  }
  log(`framing: ${options.framing}; largest message ${options.maxFrame} bytes`);
  const { port } = listener.addr as Deno.NetAddr;
  for (const line of lanAddresses(options.host, port)) log(line);
  if (options.web !== undefined) {
    web = await serveWebOrExit(server.chat, {
      ...options,
      port: options.web,
      newId: () => server.newId(),
      pacer: server.pacer,
      replies: server.replies,
      pending: server.pending,
      tls: certificate && { cert: certificate.cert, key: certificate.key },
    });
  }

  // accept() forever; each client is served concurrently on this one thread.
  // (--wire: every socket call and its bytes on stderr, messages marked.)
  const wire = wireLogFor(options.wire, { framing: options.framing });
  for await (const conn of accepted(listener)) void server.serve(conn, wire);
}

/** A client of this server: a chat member with its own connection. */
interface Client extends ChatMember {
  readonly outbox: Outbox;
}

/** One connection's life in the chat: enter, read and relay, leave. */
class SandboxServer {
  readonly chat: ChatServer<Client>;
  readonly #framing;
  /** Unfinished messages, TCP clients' and browsers' (see pending_limit.ts). */
  readonly pending: PendingLimit;
  /** The replies waiting in every outbox, and their bound (see outbox.ts). */
  readonly replies: PendingLimit;
  /** Pacing: senders wait while a client's outbox is congested (see outbox.ts). */
  readonly pacer: Pacer;
  #nextId = 1;

  /** The next client id: TCP and browsers count together. */
  newId(): number {
    return this.#nextId++;
  }

  constructor(readonly options: Options) {
    this.#framing = FRAMINGS[options.framing];
    this.chat = new ChatServer<Client>({
      directory: new Roster({ log }),
      maxMessage: options.maxFrame,
      maxCommands: options.maxCommands,
      // a read of short lines from a long name relays many times its size
      maxBatch: options.outboxLimit / 8,
      pace: () => this.pacer.wait(),
    });
    this.pending = new PendingLimit(options.maxUnfinished);
    this.replies = repliesLimit(options.maxReplies);
    this.pacer = new Pacer(() =>
      [...this.chat.room.members()].map((client) => client.outbox)
    );
  }

  async serve(accepted: Deno.Conn, wire?: WireLog): Promise<void> {
    const peer = addressOf(accepted.remoteAddr);
    // TLS: the handshake first; nothing is said to a client before it.
    const failure = await acceptHandshake(accepted);
    if (failure) return log(`${peer} ${failure}`);
    const conn = wireAccepted(accepted, wire);
    const id = this.#nextId++;
    const outbox = new Outbox(conn, {
      limit: this.options.outboxLimit,
      replies: this.replies,
    });
    const client: Client = {
      id,
      name: guestName(id),
      peer,
      framing: this.#framing,
      outbox,
      close: (last) => outbox.close(last),
    };
    const max = this.options.maxClients;
    if (max !== undefined && this.chat.room.size >= max) {
      log(
        `${peer} refused: server full (${max} client${max === 1 ? "" : "s"})`,
      );
      this.chat.tell(
        client,
        `server full (${max} client${max === 1 ? "" : "s"}); try again later`,
      );
      return await outbox.close();
    }

    this.chat.enter(client);
    const idle = this.options.idleTimeout;
    // Lines come in runs (one view of all the lines a read completed),
    // decoded in one call; length frames one by one.
    const lines = this.#framing.name === "line";
    const end = await readLoop(conn, {
      decoder: guardFraming(
        this.#framing.decoder(this.options.maxFrame, { runs: lines }),
        this.#framing.name,
      ),
      onMessages: (messages) => {
        const texts = lines
          ? messages.flatMap(decodeLines)
          : messages.map(decodeText);
        // Relay only while no receiver is behind, checked just before: so
        // many senders at once cannot push a reader past its bound.
        return this.pacer.run(() => this.chat.receive(client, texts));
      },
      idleTimeoutMs: idle * 1000,
      onIdle: () => this.chat.drop(client, `idle for ${idle} s`),
      pending: this.pending,
      onEvicted: (held) =>
        this.chat.drop(
          client,
          `held ${held} bytes of an unfinished message when the server was full`,
        ),
      lost: () => outbox.reason !== undefined,
    });
    if (end.kind === "framing") {
      warn(`${peer}: ${end.error.message}`);
      return await this.chat.drop(client, end.error.message);
    }
    this.chat.leave(client, outbox.reason ?? endReason(end));
    await outbox.close();
  }
}

if (import.meta.main) await main();
