/**
 * The user's side of a client: the lines typed (or piped in), and a place
 * to show what the server sends, both at once, without one mangling the
 * other. The client script keeps the socket calls; a {@linkcode Console}
 * carries the terminal mechanics.
 *
 * The rules every client follows (said in `--help` by {@linkcode quitNotes}):
 *
 * - `/quit` or Ctrl+D (end of input) ends the session; Ctrl+C too, at once
 *   (exit status 130). A chat client sends `/quit [message]` to the
 *   server, which says goodbye to the others and closes; an echo client
 *   does not send it. Either way the client then shuts down its write side
 *   and shows every reply still due.
 * - On a terminal (stdin and stdout both), the line being typed sits on a
 *   prompt row: text from the server is printed above it and the row
 *   redrawn (also at a new width when the window is resized); a status or
 *   error line gets a cleared row of its own, after raw mode is left.
 * - Text from the server reaching a terminal has its control characters
 *   escaped (ESC shows as `^[`), line breaks and tabs kept, so a server
 *   cannot clear the screen or retitle the window. Piped output is
 *   byte-exact.
 * - A closed stdout (`client | head -c 100`) ends the program quietly,
 *   exit status 0: nobody reads any more, and the network is not to blame.
 *
 * @example
 * ```ts ignore
 * import { stdioConsole } from "./terminal.ts";
 * import { writeAll } from "./io.ts";
 *
 * const conn = await Deno.connect({ port: 5000 });
 * const console = stdioConsole({ prompt: "> ", quit: "end" });
 * const receiving = (async () => {
 *   const buffer = new Uint8Array(65536);
 *   for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
 *     await console.show(buffer.subarray(0, n));
 *   }
 * })();
 * for await (const line of console.lines({ until: receiving })) {
 *   await writeAll(conn, line);
 * }
 * await conn.closeWrite();
 * await receiving;
 * conn.close();
 * ```
 *
 * @module
 */

import { exitWithError, ServerClosedError } from "./errors.ts";
import { READ_BUFFER_SIZE, writeAll, type Writer } from "./io.ts";
import { LineDecoder } from "./line_decoder.ts";
import { CLEAR_LINE, LineEditor } from "./line_editor.ts";
import { sanitizeText } from "./sanitize.ts";

/**
 * What `/quit` does: `end` ends the session without sending it (echo
 * clients); `send` sends it, then ends (chat: the server says goodbye to
 * the others, then closes).
 */
export type QuitMode = "end" | "send";

/** Options of {@linkcode Console.lines}. */
export interface LinesOptions {
  /**
   * The receiving side of the session. Should it end first (the server
   * closed), the lines stop with a {@linkcode ServerClosedError}; should it
   * fail, with its error.
   */
  until?: Promise<unknown>;
}

/**
 * The user's side of a session: the real terminal or pipes
 * ({@linkcode stdioConsole}), or, in tests, anything else.
 */
export interface Console {
  /**
   * The user's lines, each with its `\n` if it had one. They end at end of
   * input (Ctrl+D, the end of a pipe) or at `/quit` (see
   * {@linkcode QuitMode}); Ctrl+C on a terminal exits at once (130).
   */
  lines(options?: LinesOptions): AsyncIterable<Uint8Array>;
  /** Shows bytes received, above the line being typed. */
  show(bytes: Uint8Array): Promise<void>;
  /** Says `-- text` on stderr, on a row of its own. */
  status(text: string): Promise<void>;
  /**
   * Prints `text` as it is on stderr, on a row of its own above the line
   * being typed (the `--wire` view's lines).
   */
  aside(text: string): Promise<void>;
  /** Restores the terminal, prints `error: message` on a clean row, exits 1. */
  fail(message: string): Promise<never>;
  /** Restores the terminal: clears the prompt row, leaves raw mode. */
  close(): Promise<void>;
}

/** Options of {@linkcode stdioConsole} and the consoles it makes. */
export interface StdioConsoleOptions {
  /** Shown before the line being typed, on a terminal only (default `> `). */
  prompt?: string;
  /** What `/quit` does (default `end`). */
  quit?: QuitMode;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Back to the start of the row, and clear it and everything below. */
const CLEAR_DOWN = "\r\x1b[J";

/**
 * Whether a typed line is `/quit` (alone, or with a message after a
 * space), as the chat servers read it.
 *
 * @example
 * ```ts
 * import { isQuitCommand } from "./terminal.ts";
 * isQuitCommand(new TextEncoder().encode("/quit bye\n")); // true
 * isQuitCommand(new TextEncoder().encode("quit\n")); // false
 * ```
 */
export function isQuitCommand(line: Uint8Array): boolean {
  if (line.length < 5 || line[0] !== 0x2f) return false; // "/"
  const text = textDecoder.decode(line).replace(/\r?\n$/, "");
  return text === "/quit" || text.startsWith("/quit ");
}

/**
 * The lines for a client's `--help` (the cli spec's `notes`) that say how
 * a session ends.
 *
 * @example
 * ```ts
 * import { quitNotes } from "./terminal.ts";
 * quitNotes("end")[0]; // "Ending: /quit or Ctrl+D (end of input) ends the session; ..."
 * ```
 */
export function quitNotes(quit: QuitMode): string[] {
  return [
    "Ending: /quit or Ctrl+D (end of input) ends the session; Ctrl+C too,",
    "at once (exit status 130).",
    quit === "send"
      ? "/quit [message] is sent: the server says goodbye to the others."
      : "/quit is not sent; every reply still due is shown first.",
  ];
}

/**
 * The process's own stdin and stdout as a {@linkcode Console}: on a
 * terminal (stdin and stdout both), a {@linkcode TerminalConsole};
 * otherwise a {@linkcode PipedConsole}, escaping what it shows when stdout
 * alone is a terminal.
 *
 * @example
 * ```ts ignore
 * import { stdioConsole } from "./terminal.ts";
 * const console = stdioConsole({ prompt: "> " });
 * for await (const line of console.lines()) await console.show(line);
 * ```
 */
export function stdioConsole(options: StdioConsoleOptions = {}): Console {
  if (Deno.stdin.isTerminal() && Deno.stdout.isTerminal()) {
    return new TerminalConsole({
      input: Deno.stdin,
      output: Deno.stdout,
      errors: Deno.stderr,
      columns,
      onResize: Deno.build.os === "windows" ? undefined : onWindowResize,
    }, options);
  }
  return new PipedConsole({
    input: Deno.stdin,
    output: Deno.stdout,
    errors: Deno.stderr,
  }, { ...options, escape: Deno.stdout.isTerminal() });
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

/**
 * Received bytes as text safe for a terminal: UTF-8 decoded across reads,
 * every control character but line breaks and tab escaped
 * (`sanitize.ts`), `\r\n` shown as a line break.
 *
 * @example
 * ```ts
 * import { ScreenText } from "./terminal.ts";
 * new ScreenText().push(new TextEncoder().encode("\x1b[2Jhi\x07\r\n")); // "^[[2Jhi^G\n"
 * ```
 */
export class ScreenText {
  readonly #decoder = new TextDecoder();
  #heldCr = false;

  /** The text for the next received bytes. */
  push(bytes: Uint8Array): string {
    let text = this.#decoder.decode(bytes, { stream: true });
    if (this.#heldCr) text = `\r${text}`;
    // A "\r" at the end may be the start of a "\r\n" still to come.
    this.#heldCr = text.endsWith("\r");
    if (this.#heldCr) text = text.slice(0, -1);
    return text.split(/\r?\n/).map(sanitizeText).join("\n");
  }
}

/** The process streams a piped console uses. */
export interface PipedIO {
  /** The user's input. */
  input: Reader;
  /** Where received bytes go. */
  output: Writer;
  /** Where status lines go. */
  errors: Writer;
}

/** Options of {@linkcode PipedConsole}. */
export interface PipedConsoleOptions extends StdioConsoleOptions {
  /** Escape control characters in what is shown (stdout is a terminal). */
  escape?: boolean;
}

/**
 * Piped stdin or stdout: no prompt, no raw mode; what is shown is
 * byte-exact unless `escape` is set.
 *
 * @example
 * ```ts ignore
 * import { PipedConsole } from "./terminal.ts";
 * const console = new PipedConsole({ input: Deno.stdin, output: Deno.stdout, errors: Deno.stderr });
 * ```
 */
export class PipedConsole implements Console {
  readonly #io: PipedIO;
  readonly #quit: QuitMode;
  readonly #screen: ScreenText | null;

  /** Makes a console on `io`; see {@linkcode PipedConsoleOptions}. */
  constructor(io: PipedIO, options: PipedConsoleOptions = {}) {
    this.#io = io;
    this.#quit = options.quit ?? "end";
    this.#screen = options.escape ? new ScreenText() : null;
  }

  /** See {@linkcode Console.lines}. */
  async *lines(options: LinesOptions = {}): AsyncGenerator<Uint8Array> {
    const lines = readLines(this.#io.input);
    for (;;) {
      const next = await unless(lines.next(), options.until);
      if (next.done) return;
      if (isQuitCommand(next.value)) {
        if (this.#quit === "send") yield next.value;
        return;
      }
      yield next.value;
    }
  }

  /** See {@linkcode Console.show}. */
  show(bytes: Uint8Array): Promise<void> {
    const shown = this.#screen
      ? textEncoder.encode(this.#screen.push(bytes))
      : bytes;
    return writeOrLeave(this.#io.output, shown);
  }

  /** See {@linkcode Console.status}. */
  status(text: string): Promise<void> {
    return this.aside(`-- ${text}`);
  }

  /** See {@linkcode Console.aside}. */
  aside(text: string): Promise<void> {
    return writeAll(this.#io.errors, textEncoder.encode(`${text}\n`));
  }

  /** See {@linkcode Console.fail}. */
  fail(message: string): Promise<never> {
    exitWithError(message);
  }

  /** Nothing to restore. */
  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** The terminal a {@linkcode TerminalConsole} drives. */
export interface TerminalIO {
  /** The keyboard, switchable to raw mode. */
  input: Reader & { setRaw(mode: boolean): void };
  /** The screen. */
  output: Writer;
  /** Where status lines go (the same screen, usually). */
  errors: Writer;
  /** The terminal's width now. */
  columns(): number;
  /** Calls `redraw` when the window is resized; returns how to stop. */
  onResize?(redraw: () => void): () => void;
}

/**
 * A terminal in raw mode, with a line editor (`line_editor.ts`): text from
 * the server is printed above the line being typed, which is then
 * redrawn. Raw mode lasts while {@linkcode TerminalConsole.lines} runs.
 *
 * @example
 * ```ts ignore
 * import { TerminalConsole } from "./terminal.ts";
 * const console = new TerminalConsole({
 *   input: Deno.stdin, output: Deno.stdout, errors: Deno.stderr,
 *   columns: () => Deno.consoleSize().columns,
 * }, { prompt: "> " });
 * ```
 */
export class TerminalConsole implements Console {
  readonly #io: TerminalIO;
  readonly #prompt: string;
  readonly #quit: QuitMode;
  readonly #editor: LineEditor;
  readonly #screen = new ScreenText();
  #raw = false;
  /** What is being printed: the next print waits for it. */
  #turn: Promise<void> = Promise.resolve();
  #stopResize: (() => void) | undefined;
  #pendingRead: Promise<number | null> | null = null;
  /** Whether the cursor is at the start of an empty row (outside raw mode). */
  #atRowStart = true;
  /** Output in order: a redraw on resize may come between two writes. */
  #writing: Promise<void> = Promise.resolve();

  /** Makes a console on `io`; see {@linkcode StdioConsoleOptions}. */
  constructor(io: TerminalIO, options: StdioConsoleOptions = {}) {
    this.#io = io;
    this.#prompt = options.prompt ?? "> ";
    this.#quit = options.quit ?? "end";
    this.#editor = new LineEditor(this.#prompt);
  }

  /** See {@linkcode Console.lines}; raw mode while it runs. */
  async *lines(options: LinesOptions = {}): AsyncGenerator<Uint8Array> {
    this.#io.input.setRaw(true);
    this.#raw = true;
    // A terminal that rewraps a row on resize may put part of the prompt
    // row below the cursor: clear down first (only the prompt row is there).
    this.#stopResize = this.#io.onResize?.(() => void this.#redraw(CLEAR_DOWN));
    const buffer = new Uint8Array(1024);
    try {
      await this.#redraw();
      for (;;) {
        const n = await unless(this.#read(buffer), options.until);
        this.#pendingRead = null;
        if (n === null) return;
        for (const event of this.#editor.feed(buffer.subarray(0, n))) {
          if (event.kind === "interrupt") await this.#interrupt();
          if (event.kind !== "line") return; // end of input
          // The typed line stays on screen, as a terminal would leave it.
          await this.#print(
            `${CLEAR_LINE}${this.#prompt}${
              event.text.replaceAll("\t", " ")
            }\r\n`,
          );
          const line = textEncoder.encode(`${event.text}\n`);
          if (isQuitCommand(line)) {
            if (this.#quit === "send") yield line;
            return;
          }
          yield line;
        }
        await this.#redraw();
      }
    } finally {
      await this.close();
    }
  }

  /** One read at a time: a read left pending by `until` is taken up again. */
  #read(buffer: Uint8Array): Promise<number | null> {
    this.#pendingRead ??= this.#io.input.read(buffer);
    return this.#pendingRead;
  }

  /** See {@linkcode Console.show}. */
  show(bytes: Uint8Array): Promise<void> {
    return this.#inTurn(async () => {
      let text = this.#screen.push(bytes);
      if (text === "") return;
      if (!this.#raw) return await this.#print(this.#freshRow(false) + text);
      if (!text.endsWith("\n")) text += "\n";
      await this.#print(CLEAR_LINE + text.replaceAll("\n", "\r\n"));
      await this.#redraw();
    });
  }

  /** Runs `step` after what was printed before it: one row at a time. */
  #inTurn(step: () => Promise<void>): Promise<void> {
    const run = this.#turn.then(step);
    this.#turn = run.catch(() => {});
    return run;
  }

  /** See {@linkcode Console.status}. */
  status(text: string): Promise<void> {
    return this.aside(`-- ${text}`);
  }

  /** See {@linkcode Console.aside}. */
  aside(text: string): Promise<void> {
    return this.#inTurn(async () => {
      await this.#print(this.#freshRow(true));
      await writeAll(
        this.#io.errors,
        textEncoder.encode(`${text}${this.#raw ? "\r\n" : "\n"}`),
      );
      await this.#redraw();
    });
  }

  /** See {@linkcode Console.fail}. */
  async fail(message: string): Promise<never> {
    await this.#turn;
    await this.close();
    await this.#print(this.#freshRow(true));
    exitWithError(message);
  }

  /** See {@linkcode Console.close}. */
  async close(): Promise<void> {
    if (!this.#raw) return;
    this.#raw = false;
    this.#stopResize?.();
    await this.#print(CLEAR_LINE);
    this.#io.input.setRaw(false);
  }

  /**
   * What starts a row of our own: the row cleared where it holds only the
   * prompt, or keys the terminal echoed before raw mode (they are still
   * in its input, and come back on the prompt row); after a line the
   * server left unfinished, a new row (`own`) or nothing (more of it).
   */
  #freshRow(own: boolean): string {
    if (this.#raw || this.#atRowStart) return CLEAR_LINE;
    return own ? "\r\n" : "";
  }

  /** Ctrl+C: the row cleared, the terminal restored, exit status 130. */
  async #interrupt(): Promise<never> {
    await this.close();
    Deno.exit(130);
  }

  #redraw(before = ""): Promise<void> {
    if (!this.#raw) return Promise.resolve();
    return this.#print(before + this.#editor.render(this.#io.columns()));
  }

  #print(text: string): Promise<void> {
    if (text === "") return this.#writing;
    this.#atRowStart = text.endsWith("\n") || text.endsWith(CLEAR_LINE);
    const bytes = textEncoder.encode(text);
    this.#writing = this.#writing.then(() =>
      writeOrLeave(this.#io.output, bytes)
    );
    return this.#writing;
  }
}

/**
 * Resolves as `promise` does, unless `until` settles first: then rejects
 * with {@linkcode ServerClosedError}, or with `until`'s own error.
 */
async function unless<T>(
  promise: Promise<T>,
  until: Promise<unknown> | undefined,
): Promise<T> {
  if (until === undefined) return await promise;
  const first = await Promise.race([
    promise.then((value) => ({ value })),
    until.then(() => null),
  ]);
  if (first === null) throw new ServerClosedError();
  return first.value;
}

/**
 * Writes all of `bytes`; a closed stdout (`| head -c 100`) ends the
 * program quietly, exit status 0: nobody reads any more.
 */
async function writeOrLeave(output: Writer, bytes: Uint8Array): Promise<void> {
  try {
    await writeAll(output, bytes);
  } catch (error) {
    if (error instanceof Deno.errors.BrokenPipe) Deno.exit(0);
    throw error;
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

/** Calls `redraw` on SIGWINCH (the window was resized); returns how to stop. */
function onWindowResize(redraw: () => void): () => void {
  Deno.addSignalListener("SIGWINCH", redraw);
  return () => Deno.removeSignalListener("SIGWINCH", redraw);
}
