/**
 * A pseudo-terminal for tests: runs a program as if a person sat at a
 * terminal (Python's `pty` module plays the terminal), so raw mode, the
 * prompt, resizes and Ctrl+C can be tested end to end.
 *
 * Tests type keys, resize the window, and wait on events: text on the
 * screen, the exit. Each wait continues after the previous match, as
 * `expect` does.
 *
 * @example
 * ```ts ignore
 * import { PseudoTerminal } from "./_pty.ts";
 * await using term = PseudoTerminal.start(["run", "-A", "basic/client.ts"]);
 * await term.waitFor("> ");
 * await term.type("hi\r");
 * await term.waitFor("hi\r\n");
 * await term.type("\x04"); // Ctrl+D
 * const { code } = await term.exited();
 * ```
 *
 * @module
 */

import { textLineStream } from "../lib/std.ts";
import { HAVE_PYTHON, within } from "./_helpers.ts";

/** Relays between a pty and JSON lines on stdin/stdout. */
const DRIVER = `
import base64, fcntl, json, os, pty, select, signal, struct, sys, termios
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
def resize(columns, rows):
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
resize(int(os.environ["PTY_COLUMNS"]), int(os.environ["PTY_ROWS"]))
def say(event):
    sys.stdout.write(json.dumps(event) + "\\n")
    sys.stdout.flush()
commands = sys.stdin.fileno()
pending = b""
reading = True
while True:
    ready, _, _ = select.select([fd] + ([commands] if reading else []), [], [])
    if fd in ready:
        try:
            data = os.read(fd, 65536)
        except OSError:
            data = b""
        if not data:
            break
        say({"out": base64.b64encode(data).decode()})
    if commands in ready:
        chunk = os.read(commands, 65536)
        if not chunk:
            reading = False
            try: os.kill(pid, signal.SIGKILL)
            except ProcessLookupError: pass
            continue
        pending += chunk
        while b"\\n" in pending:
            line, pending = pending.split(b"\\n", 1)
            cmd = json.loads(line)
            if "type" in cmd: os.write(fd, cmd["type"].encode())
            elif "resize" in cmd: resize(*cmd["resize"])
_, status = os.waitpid(pid, 0)
try:
    lflag = termios.tcgetattr(fd)[3]
    restored = bool(lflag & termios.ICANON) and bool(lflag & termios.ECHO)
except termios.error:
    restored = None
say({"exit": os.waitstatus_to_exitcode(status), "restored": restored})
`;

/** Options of {@linkcode PseudoTerminal.start}. */
export interface PseudoTerminalOptions {
  /** The window's width (default 80). */
  columns?: number;
  /** The window's height (default 24). */
  rows?: number;
}

/** A program running on a pseudo-terminal. */
export class PseudoTerminal implements AsyncDisposable {
  /** Everything the program wrote to the terminal so far. */
  screen = "";
  /**
   * After the exit: whether the program left the terminal as it found it
   * (line editing and echo on, not raw); `null` where it cannot be read.
   */
  restored: boolean | null = null;
  readonly #python: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  readonly #done: Promise<void>;
  readonly #decoder = new TextDecoder();
  #code: number | null = null;
  #cursor = 0;
  #wake: (() => void)[] = [];

  private constructor(python: Deno.ChildProcess) {
    this.#python = python;
    this.#writer = python.stdin.getWriter();
    this.#done = this.#pump();
  }

  /**
   * Runs `deno` with `args` on a new pseudo-terminal; `null` where Python
   * cannot play the terminal (the caller skips, saying why).
   */
  static start(
    args: string[],
    options: PseudoTerminalOptions = {},
  ): PseudoTerminal | null {
    if (!HAVE_PYTHON || Deno.build.os === "windows") return null;
    const python = new Deno.Command("python3", {
      args: ["-c", DRIVER, Deno.execPath(), ...args],
      stdin: "piped",
      stdout: "piped",
      env: {
        NO_COLOR: "1",
        TERM: "xterm",
        PTY_COLUMNS: String(options.columns ?? 80),
        PTY_ROWS: String(options.rows ?? 24),
      },
    }).spawn();
    return new PseudoTerminal(python);
  }

  async #pump(): Promise<void> {
    const lines = this.#python.stdout
      .pipeThrough(new TextDecoderStream())
      .pipeThrough(textLineStream());
    for await (const line of lines) {
      const event = JSON.parse(line) as {
        out?: string;
        exit?: number;
        restored?: boolean | null;
      };
      if (event.out !== undefined) {
        const bytes = Uint8Array.from(atob(event.out), (c) => c.charCodeAt(0));
        this.screen += this.#decoder.decode(bytes, { stream: true });
      }
      if (event.exit !== undefined) {
        this.#code = event.exit;
        this.restored = event.restored ?? null;
      }
      for (const wake of this.#wake.splice(0)) wake();
    }
    await this.#python.status;
    for (const wake of this.#wake.splice(0)) wake();
  }

  /** Types `keys` (`\r` is Enter, `\x03` Ctrl+C, `\x04` Ctrl+D). */
  type(keys: string): Promise<void> {
    return this.#send({ type: keys });
  }

  /** Resizes the window; the program gets SIGWINCH. */
  resize(columns: number, rows = 24): Promise<void> {
    return this.#send({ resize: [columns, rows] });
  }

  #send(command: object): Promise<void> {
    return this.#writer.write(
      new TextEncoder().encode(`${JSON.stringify(command)}\n`),
    );
  }

  /**
   * Waits until `pattern` appears on the screen after the previous match;
   * returns the match. Throws after `ms`, showing the screen.
   */
  async waitFor(pattern: string | RegExp, ms = 10_000): Promise<string> {
    const deadline = Date.now() + ms;
    for (;;) {
      const rest = this.screen.slice(this.#cursor);
      const found = typeof pattern === "string"
        ? { at: rest.indexOf(pattern), text: pattern }
        : ((m) => ({ at: m?.index ?? -1, text: m?.[0] ?? "" }))(
          rest.match(pattern),
        );
      if (found.at !== -1) {
        this.#cursor += found.at + found.text.length;
        return found.text;
      }
      const left = deadline - Date.now();
      if (left <= 0 || this.#code !== null) {
        throw new Error(
          `never saw ${String(pattern)} on the terminal; it shows:\n${
            JSON.stringify(this.screen.slice(this.#cursor))
          }`,
        );
      }
      await this.#next(left);
    }
  }

  /** Resolves with the exit code; throws if the program runs past `ms`. */
  async exited(ms = 10_000): Promise<number> {
    const deadline = Date.now() + ms;
    while (this.#code === null) {
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `still running after ${ms} ms; the terminal shows:\n${
            JSON.stringify(this.screen)
          }`,
        );
      }
      await this.#next(left);
    }
    return this.#code;
  }

  /** Waits for output or the exit, at most `ms`. */
  #next(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.#wake.push(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Ends the program (if it still runs) and the terminal. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.#writer.close().catch(() => {}); // the driver kills the program
    await within(this.#done, 10_000, "the pty driver did not end");
  }
}
