/**
 * The terminal side of a client: what the user types goes to the server,
 * and what the server sends is printed, both at once.
 *
 * {@linkcode runTerminal} runs two loops side by side on one connection:
 *
 * - **up**: each line typed (or piped in) is sent. `quit`, or the end of
 *   input (Ctrl+D, or the end of a pipe), shuts down our write side
 *   (`shutdown(SHUT_WR)`): the server sees end-of-stream, while replies
 *   still due keep arriving.
 * - **down**: every chunk received is shown, until the server closes.
 *
 * On a terminal it shows a prompt, and text from the server is printed
 * above the line being typed, which is then redrawn (raw mode and a small
 * line editor). Piped, there is no prompt and output is byte-exact.
 *
 * @example
 * ```ts ignore
 * import { runTerminal, stdioConsole } from "./terminal.ts";
 *
 * const conn = await Deno.connect({ port: 5000 });
 * const end = await runTerminal(conn, { console: stdioConsole() });
 * Deno.exit(end === "server-closed" ? 1 : 0);
 * ```
 *
 * @module
 */

import { exitWithError, explainNetError } from "./errors.ts";
import { closeQuietly, READ_BUFFER_SIZE, writeAll, type Writer } from "./io.ts";
import { LineDecoder } from "./line_decoder.ts";
import { CLEAR_LINE, LineEditor } from "./line_editor.ts";

/**
 * Where the user's lines come from and where received text goes: the real
 * terminal ({@linkcode stdioConsole}) or, in tests, anything else.
 */
export interface Console {
  /** The user's lines, each with its `\n` if it had one; ends at end of input. */
  lines(): AsyncIterable<Uint8Array>;
  /** Shows bytes received, without disturbing the line being typed. */
  show(bytes: Uint8Array): Promise<void>;
  /** True once the user pressed Ctrl+C (raw mode). */
  readonly interrupted: boolean;
  /** Restores the terminal. */
  close(): void;
}

/** How a terminal session ended. */
export type TerminalEnd =
  /** End of input (Ctrl+D or end of pipe); every reply was shown. */
  | "input-ended"
  /** The user typed the quit word; every reply was shown. */
  | "quit"
  /** The user pressed Ctrl+C. */
  | "interrupted"
  /** The server closed the connection while the user could still type. */
  | "server-closed";

/** Options of {@linkcode runTerminal}. */
export interface TerminalOptions {
  /** The user's side; see {@linkcode stdioConsole}. */
  console: Console;
  /** A line that ends the session instead of being sent (default `quit`; `null`: none). */
  quitWord?: string | null;
  /** Turns a typed line (with its `\n`, if any) into bytes to send (default: as typed). */
  encode?: (line: Uint8Array) => Uint8Array;
  /** Turns bytes received into bytes to show (default: as received). */
  render?: (chunk: Uint8Array) => Uint8Array;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/**
 * Whether a typed line is the quit word, ignoring `\r\n` and spaces.
 *
 * @example
 * ```ts
 * import { isQuit } from "./terminal.ts";
 * isQuit(new TextEncoder().encode("quit\n"), "quit"); // true
 * ```
 */
export function isQuit(line: Uint8Array, quitWord: string | null): boolean {
  return quitWord !== null && line.length <= quitWord.length + 8 &&
    textDecoder.decode(line).trim() === quitWord;
}

/**
 * Runs the session until the user or the server ends it. Errors of the
 * connection (reset, …) are thrown to the caller, which explains them.
 *
 * @example
 * ```ts ignore
 * import { runTerminal, stdioConsole } from "./terminal.ts";
 * const conn = await Deno.connect({ port: 5000 });
 * await runTerminal(conn, { console: stdioConsole({ prompt: "> " }) });
 * ```
 */
export async function runTerminal(
  conn: Deno.Conn,
  options: TerminalOptions,
): Promise<TerminalEnd> {
  const { console, encode, render } = options;
  const quitWord = options.quitWord === undefined ? "quit" : options.quitWord;
  let upDone = false;

  async function up(): Promise<TerminalEnd> {
    for await (const line of console.lines()) {
      if (isQuit(line, quitWord)) return "quit";
      await writeAll(conn, encode ? encode(line) : line);
    }
    return console.interrupted ? "interrupted" : "input-ended";
  }

  async function down(): Promise<void> {
    const buffer = new Uint8Array(READ_BUFFER_SIZE);
    for (
      let n = await conn.read(buffer);
      n !== null;
      n = await conn.read(buffer)
    ) {
      const chunk = buffer.subarray(0, n);
      await console.show(render ? render(chunk) : chunk);
    }
  }

  const received = down();
  const sent = up().then((end) => {
    upDone = true;
    return end;
  });
  // Errors surface through the race below; these only keep a late failure
  // of the losing side from going unhandled.
  received.catch(() => {});
  sent.catch(() => {});
  try {
    // Whichever side ends first decides how the session ends.
    const first = await Promise.race([
      sent,
      received.then(() => "server" as const),
    ]);
    if (first === "server") return upDone ? await sent : "server-closed";
    if (first === "interrupted") {
      closeQuietly(conn);
      await received.catch(() => {});
      return first;
    }
    await conn.closeWrite().catch(() => {}); // closed by the server already: fine
    await received;
    return first;
  } finally {
    console.close();
  }
}

/**
 * Ends a client program after its session: closes the connection and exits
 * 0 when the user ended it, 130 after Ctrl+C, and 1, saying why, when the
 * server closed first or the connection failed (reset, ...).
 *
 * @example
 * ```ts ignore
 * import { finishSession, runTerminal, stdioConsole } from "./terminal.ts";
 * const endpoint = { host: "127.0.0.1", port: 5000 };
 * const conn = await Deno.connect({ hostname: endpoint.host, port: endpoint.port });
 * await finishSession(runTerminal(conn, { console: stdioConsole() }), { conn, endpoint });
 * ```
 */
export async function finishSession(
  session: Promise<TerminalEnd>,
  options: { conn: Deno.Conn; endpoint: { host: string; port: number } },
): Promise<never> {
  let end: TerminalEnd;
  try {
    end = await session;
  } catch (error) {
    exitWithError(
      explainNetError(error, { action: "transfer", ...options.endpoint }),
    );
  }
  closeQuietly(options.conn);
  if (end === "server-closed") {
    exitWithError("the server closed the connection.");
  }
  Deno.exit(end === "interrupted" ? 130 : 0);
}

/** Options of {@linkcode stdioConsole}. */
export interface StdioConsoleOptions {
  /** Shown before the line being typed, on a terminal only (default `> `). */
  prompt?: string;
}

/**
 * The process's own stdin and stdout as a {@linkcode Console}. On a
 * terminal (stdin and stdout both), raw mode and a line editor; otherwise
 * plain byte-exact reading and writing.
 *
 * @example
 * ```ts ignore
 * import { stdioConsole } from "./terminal.ts";
 * const console = stdioConsole({ prompt: "> " });
 * for await (const line of console.lines()) await console.show(line);
 * console.close();
 * ```
 */
export function stdioConsole(options: StdioConsoleOptions = {}): Console {
  const interactive = Deno.stdin.isTerminal() && Deno.stdout.isTerminal();
  return interactive
    ? new RawConsole(options.prompt ?? "> ", Deno.stdin, Deno.stdout)
    : new PipedConsole(Deno.stdin, Deno.stdout);
}

/** Something bytes can be read from, like `Deno.stdin`. */
export interface Reader {
  /** Reads into `p`; resolves to the count, or `null` at end of input. */
  read(p: Uint8Array): Promise<number | null>;
}

/**
 * Lines of bytes read from `reader`, each with its `\n` if it had one;
 * lines are not bounded in length (the user is typing them).
 *
 * @example
 * ```ts ignore
 * import { readLines } from "./terminal.ts";
 * for await (const line of readLines(Deno.stdin)) console.log(line.length);
 * ```
 */
export async function* readLines(reader: Reader): AsyncGenerator<Uint8Array> {
  const decoder = new LineDecoder({ keepEnds: true, maxLength: Infinity });
  const buffer = new Uint8Array(READ_BUFFER_SIZE);
  for (
    let n = await reader.read(buffer);
    n !== null;
    n = await reader.read(buffer)
  ) {
    for (const line of decoder.push(buffer.subarray(0, n))) yield line.slice();
  }
  const last = decoder.end();
  if (last !== null) yield last;
}

/** Piped stdin and stdout: no prompt, bytes as they are. */
class PipedConsole implements Console {
  readonly interrupted = false;

  constructor(readonly input: Reader, readonly output: Writer) {}

  lines(): AsyncIterable<Uint8Array> {
    return readLines(this.input);
  }

  show(bytes: Uint8Array): Promise<void> {
    return writeAll(this.output, bytes);
  }

  close(): void {}
}

/** A terminal in raw mode, with a line editor and a redrawn prompt. */
class RawConsole implements Console {
  readonly #editor: LineEditor;
  readonly #prompt: string;
  readonly #decoder = new TextDecoder();
  #interrupted = false;
  #raw = false;

  constructor(
    prompt: string,
    readonly input: Reader & { setRaw(mode: boolean): void },
    readonly output: Writer,
  ) {
    this.#prompt = prompt;
    this.#editor = new LineEditor(prompt);
  }

  get interrupted(): boolean {
    return this.#interrupted;
  }

  async *lines(): AsyncGenerator<Uint8Array> {
    this.input.setRaw(true);
    this.#raw = true;
    await this.#redraw();
    const buffer = new Uint8Array(1024);
    try {
      for (
        let n = await this.input.read(buffer);
        n !== null;
        n = await this.input.read(buffer)
      ) {
        for (const event of this.#editor.feed(buffer.subarray(0, n))) {
          if (event.kind === "line") {
            // The typed line stays on screen, as a terminal would leave it.
            await this.#print(`${CLEAR_LINE}${this.#prompt}${event.text}\r\n`);
            yield textEncoder.encode(`${event.text}\n`);
            continue;
          }
          if (event.kind === "interrupt") this.#interrupted = true;
          await this.#print(`${CLEAR_LINE}`);
          return;
        }
        await this.#redraw();
      }
    } finally {
      this.close();
    }
  }

  async show(bytes: Uint8Array): Promise<void> {
    if (!this.#raw) return await writeAll(this.output, bytes);
    let text = this.#decoder.decode(bytes, { stream: true });
    if (!text.endsWith("\n")) text += "\n";
    await this.#print(CLEAR_LINE + text.replaceAll(/\r?\n/g, "\r\n"));
    await this.#redraw();
  }

  async #print(text: string): Promise<void> {
    await writeAll(this.output, textEncoder.encode(text));
  }

  #redraw(): Promise<void> {
    return this.#print(this.#editor.render(columns()));
  }

  close(): void {
    if (!this.#raw) return;
    this.#raw = false;
    this.input.setRaw(false);
  }
}

/** The terminal's width; 80 where it is unknown (0 on a bare pseudo-terminal). */
function columns(): number {
  try {
    return Deno.consoleSize().columns || 80;
  } catch {
    return 80;
  }
}
