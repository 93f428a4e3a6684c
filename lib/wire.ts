/**
 * The wire view (`--wire`): every socket call a program makes, one line
 * each, with the bytes that went in or out underneath, so a learner watches
 * TCP be a byte stream: one `write` on one side is not one `read` on the
 * other.
 *
 * ```text
 * 14:02:03.117 read 19 bytes from 127.0.0.1:52144
 *              │ hello\n
 *              └ message 1 ends (6 bytes)
 *              │ how are you\n
 *              └ message 2 ends (12 bytes)
 *              │ s
 *              … message 3 continues in the next read (1 byte so far)
 * ```
 *
 * - Bytes are shown as text where printable (`\n`, `\r`, `\t`, `\x00`,
 *   `\xff` escaped, valid UTF-8 as characters), or as a hex dump (offset,
 *   hex, ASCII gutter, like `xxd`) when a chunk is mostly binary or the
 *   mode is `hex`. Long chunks are cut: `… 60,000 more bytes`. No raw
 *   control character ever reaches the terminal.
 * - With a framing (`line` or `length`), a `FrameTracker` (frame_tracker.ts) per
 *   direction marks where a message ends inside a chunk and where a chunk
 *   ends inside a message, independently of the program's own decoder. It
 *   holds counters only, never bytes.
 *
 * A {@linkcode WireLog} writes these lines (to stderr by default). A program
 * wraps its connections with `wireAccepted`/`wireConnected` from
 * `wire_conn.ts`, which report each call here; with `--wire` off they return
 * the connection itself, so the hot path is untouched:
 *
 * ```ts ignore
 * const FLAGS = { ..., wire: WIRE_FLAG } as const;
 * const options = parseCliOrExit(Deno.args, { ..., flags: FLAGS });
 * const wire = wireLogFor(options.wire, { framing: "line" }); // undefined: off
 * for await (const conn of accepted(listener)) serve(wireAccepted(conn, wire));
 * ```
 *
 * @example
 * ```ts
 * import { WireLog } from "./wire.ts";
 * const conn = {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 52144 },
 *   localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 5000 },
 * } as const;
 * const wire = new WireLog({ framing: "line", color: false });
 * wire.read(conn, new TextEncoder().encode("hello\nwor"));
 * // 14:02:03.117 read 9 bytes from 127.0.0.1:52144
 * //              │ hello\n
 * //              └ message 1 ends (6 bytes)
 * //              │ wor
 * //              … message 2 continues in the next read (3 bytes so far)
 * ```
 *
 * @module
 */

import type { StringFlag } from "./cli.ts";
import { LENGTH_PREFIX_BYTES } from "./encoders.ts";
import {
  type FramePiece,
  FrameTracker,
  type WireFraming,
} from "./frame_tracker.ts";
import { timestamp } from "./log.ts";
import { addressOf } from "./net.ts";
import { type Style, styles } from "./std.ts";
import { hexByte, mostlyBinary, wireTokens } from "./wire_text.ts";

/** How bytes are shown: text (hex for a mostly binary chunk), or always hex. */
export type WireMode = "text" | "hex";

/** Anything with the two addresses of a connection (a `Deno.Conn`). */
export interface Addressed {
  /** The peer's address. */
  readonly remoteAddr: Deno.Addr;
  /** Our own address. */
  readonly localAddr: Deno.Addr;
}

/** Options of {@linkcode WireLog}. */
export interface WireLogOptions {
  /** `text` (default; a mostly binary chunk still shows as hex) or `hex`. */
  mode?: WireMode;
  /** Message boundaries to draw: `none` (default), `line` or `length`. */
  framing?: WireFraming;
  /**
   * Colors on or off. Default: on when stderr is a terminal and `NO_COLOR`
   * is not set ({@linkcode colorByDefault}).
   */
  color?: boolean;
  /** Columns of a line, text rows wrap to fit (default 80, at least 32). */
  width?: number;
  /** Text rows shown per chunk before the cut (default 4). */
  maxLines?: number;
  /** Hex rows (16 bytes each) shown per chunk before the cut (default 8). */
  maxRows?: number;
  /** Where each line goes (default: stderr). */
  write?: (line: string) => void;
  /** The clock for timestamps (default: now). */
  clock?: () => Date;
}

/** One write call as the wire view reports it. */
export interface WriteCall {
  /** The bytes the program asked to write. */
  asked: Uint8Array;
  /** How many of them the kernel took. */
  written: number;
}

/** A failed call as the wire view reports it. */
export interface FailedCall {
  /** Which call failed. */
  call: "read" | "write" | "closeWrite";
  /** What it threw. */
  error: unknown;
}

/**
 * `--wire [text|hex]`, for a script's flags (`lib/cli.ts`). A bare `--wire`
 * stands alone too (`--wire` is `--wire text`).
 *
 * @example
 * ```ts
 * import { WIRE_FLAG } from "./wire.ts";
 * const FLAGS = { wire: WIRE_FLAG } as const;
 * ```
 */
export const WIRE_FLAG = {
  type: "string",
  description:
    "show every socket call and its bytes on stderr, as text or as hex",
  choices: ["text", "hex"],
  bare: "text",
} as const satisfies StringFlag;

/**
 * The wire log a `--wire` value asks for, or `undefined` when it is absent
 * (then `wireAccepted`/`wireConnected` hand connections back unwrapped).
 *
 * @example
 * ```ts
 * import { wireLogFor } from "./wire.ts";
 * const wire = wireLogFor(undefined, { framing: "line" }); // undefined: off
 * ```
 */
export function wireLogFor(
  mode: WireMode | undefined,
  options: Omit<WireLogOptions, "mode"> = {},
): WireLog | undefined {
  return mode === undefined ? undefined : new WireLog({ ...options, mode });
}

/**
 * Whether the wire view uses colors when not told: stderr is a terminal
 * and `NO_COLOR` is not set. (The styles come from `std.ts`, which turns
 * them off as a whole when stdout is not a terminal.)
 *
 * @example
 * ```ts
 * import { colorByDefault } from "./wire.ts";
 * colorByDefault(); // false when stderr is piped
 * ```
 */
export function colorByDefault(): boolean {
  return !Deno.noColor && Deno.stderr.isTerminal();
}

/** `1 byte`, `60,000 bytes`. */
function bytesText(n: number): string {
  return `${n.toLocaleString("en-US")} byte${n === 1 ? "" : "s"}`;
}

/** `1 more byte`, `60,000 more bytes`. */
function moreBytes(n: number): string {
  return `${n.toLocaleString("en-US")} more byte${n === 1 ? "" : "s"}`;
}

/** Under the event text, after the timestamp. */
const INDENT = " ".repeat(13);
const HEX_ROW = 16;

/** One row under an event: bytes (after the gutter) or a frame mark. */
interface Row {
  text: string;
  /** A mark row, drawn with its own lead instead of the gutter. */
  mark?: boolean;
}

/** The two trackers of one connection. */
interface Directions {
  in: FrameTracker;
  out: FrameTracker;
}

/**
 * Writes the wire view: one line per socket event, the bytes underneath.
 * Connections are told apart by the object passed in (its trackers are
 * kept in a `WeakMap`), and named by their peer address.
 *
 * @example
 * ```ts
 * import { WireLog } from "./wire.ts";
 * const lines: string[] = [];
 * const wire = new WireLog({ color: false, write: (line) => lines.push(line) });
 * const conn = {
 *   remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 52144 },
 *   localAddr: { transport: "tcp", hostname: "127.0.0.1", port: 5000 },
 * } as const;
 * wire.wrote(conn, { asked: new Uint8Array(10), written: 4 });
 * // lines[0]: "14:02:03.117 wrote 4 of 10 bytes to 127.0.0.1:52144 (a short write: ...)"
 * ```
 */
export class WireLog {
  /** The framing drawn over the bytes. */
  readonly framing: WireFraming;
  /** `text` or `hex`. */
  readonly mode: WireMode;
  readonly #color: boolean;
  readonly #dataWidth: number;
  readonly #maxLines: number;
  readonly #maxRows: number;
  readonly #write: (line: string) => void;
  readonly #clock: () => Date;
  readonly #directions = new WeakMap<Addressed, Directions>();

  /** A wire log; see {@linkcode WireLogOptions}. */
  constructor(options: WireLogOptions = {}) {
    this.framing = options.framing ?? "none";
    this.mode = options.mode ?? "text";
    this.#color = options.color ?? colorByDefault();
    this.#dataWidth = Math.max(32, options.width ?? 80) - INDENT.length - 2;
    this.#maxLines = Math.max(1, options.maxLines ?? 4);
    this.#maxRows = Math.max(1, options.maxRows ?? 8);
    this.#write = options.write ?? ((line) => console.error(line));
    this.#clock = options.clock ?? (() => new Date());
  }

  /** `accept()` returned `conn`. */
  accepted(conn: Addressed): void {
    this.#event(
      styles.bold,
      `accepted a connection from ${addressOf(conn.remoteAddr)} on ${
        addressOf(conn.localAddr)
      }`,
    );
  }

  /** `connect()` returned `conn`. */
  connected(conn: Addressed): void {
    this.#event(
      styles.bold,
      `connected to ${addressOf(conn.remoteAddr)} from ${
        addressOf(conn.localAddr)
      }`,
    );
  }

  /** A read returned `bytes`, or `null` (the peer's end of stream). */
  read(conn: Addressed, bytes: Uint8Array | null): void {
    const peer = addressOf(conn.remoteAddr);
    if (bytes === null) {
      this.#event(
        styles.yellow,
        `end of stream from ${peer}: read returned null (it half-closed: FIN)`,
      );
      return;
    }
    this.#event(styles.cyan, `read ${bytesText(bytes.length)} from ${peer}`);
    this.#bytes(bytes, this.#trackers(conn).in, "read");
  }

  /** A write took `call.written` of the `call.asked` bytes. */
  wrote(conn: Addressed, call: WriteCall): void {
    const peer = addressOf(conn.remoteAddr);
    const { asked, written } = call;
    this.#event(
      styles.green,
      written === asked.length
        ? `wrote ${bytesText(written)} to ${peer}`
        : `wrote ${written.toLocaleString("en-US")} of ${
          bytesText(asked.length)
        } to ${peer} (a short write: the rest needs another write)`,
    );
    this.#bytes(asked.subarray(0, written), this.#trackers(conn).out, "write");
  }

  /** Our side half-closed: `closeWrite()` sent a FIN. */
  closedWrite(conn: Addressed): void {
    this.#event(
      styles.yellow,
      `half-closed our side to ${
        addressOf(conn.remoteAddr)
      }: closeWrite() sent FIN; reading goes on`,
    );
  }

  /** `close()`. */
  closed(conn: Addressed): void {
    this.#event(
      styles.yellow,
      `closed the connection with ${addressOf(conn.remoteAddr)}`,
    );
  }

  /** We reset the connection on purpose (a RST instead of a FIN). */
  resetHere(conn: Addressed): void {
    this.#event(
      styles.red,
      `reset the connection with ${
        addressOf(conn.remoteAddr)
      }: sent RST, not FIN`,
    );
  }

  /** A call threw: the peer reset, the pipe broke, or we closed meanwhile. */
  failed(conn: Addressed, failure: FailedCall): void {
    const peer = addressOf(conn.remoteAddr);
    const { call, error } = failure;
    const to = call === "read" ? "from" : "to";
    if (error instanceof Deno.errors.ConnectionReset) {
      this.#event(
        styles.red,
        `${call} ${to} ${peer}: connection reset by the peer (RST: it closed abruptly or crashed)`,
      );
    } else if (
      error instanceof Deno.errors.BadResource ||
      error instanceof Deno.errors.Interrupted
    ) {
      this.#event(
        styles.yellow,
        `${call} ${to} ${peer} ended: the connection was closed here`,
      );
    } else {
      const name = error instanceof Error ? error.name : "Error";
      const message = error instanceof Error ? error.message : String(error);
      this.#event(
        styles.red,
        `${call} ${to} ${peer} failed: ${name}: ${message}`,
      );
    }
  }

  #trackers(conn: Addressed): Directions {
    let directions = this.#directions.get(conn);
    if (!directions) {
      directions = {
        in: new FrameTracker(this.framing),
        out: new FrameTracker(this.framing),
      };
      this.#directions.set(conn, directions);
    }
    return directions;
  }

  #style(style: Style, text: string): string {
    return this.#color ? style(text) : text;
  }

  #event(style: Style, text: string): void {
    this.#write(
      `${this.#style(styles.dim, timestamp(this.#clock()))} ${
        this.#style(style, text)
      }`,
    );
  }

  /** Writes the rows under a read or write. */
  #bytes(
    bytes: Uint8Array,
    tracker: FrameTracker,
    verb: "read" | "write",
  ): void {
    const pieces = [...tracker.pieces(bytes)];
    const hex = this.mode === "hex" ||
      mostlyBinary(
        pieces.flatMap((piece) =>
          piece.kind === "prefix"
            ? []
            : [bytes.subarray(piece.start, piece.end)]
        ),
      );
    const rows = hex
      ? this.#hexRows(bytes, pieces, verb)
      : this.#textRows(bytes, pieces, verb);
    for (const row of rows) {
      this.#write(
        row.mark
          ? `${INDENT}${this.#style(styles.dim, row.text)}`
          : `${INDENT}${this.#style(styles.dim, "│")} ${row.text}`,
      );
    }
  }

  #textRows(
    bytes: Uint8Array,
    pieces: readonly FramePiece[],
    verb: "read" | "write",
  ): Row[] {
    const rows: Row[] = [];
    let lines = 0;
    let shown = 0; // bytes shown so far
    for (const [index, piece] of pieces.entries()) {
      if (piece.kind === "prefix") {
        if (lines === this.#maxLines) {
          return this.#cut(rows, bytes, pieces.slice(index), shown, verb);
        }
        rows.push({ text: prefixText(bytes, piece) });
        // A prefix row is a header: it counts only for an empty message.
        if (piece.filled === LENGTH_PREFIX_BYTES && piece.value === 0) lines++;
        shown = piece.end;
        if (piece.filled < LENGTH_PREFIX_BYTES) {
          rows.push(prefixContinues(piece.filled, verb));
        }
        continue;
      }
      let row = "";
      let cols = 0;
      let rowStart = piece.start; // where the row being built begins
      let at = piece.start;
      const flush = (): boolean => {
        if (lines === this.#maxLines) return false;
        rows.push({ text: row });
        lines++;
        row = "";
        cols = 0;
        rowStart = at;
        return true;
      };
      const cut = (): Row[] =>
        this.#cut(rows, bytes, pieces.slice(index), rowStart, verb);
      for (const token of wireTokens(bytes.subarray(piece.start, piece.end))) {
        if (row !== "" && cols + token.cols > this.#dataWidth && !flush()) {
          return cut();
        }
        row += token.text;
        cols += token.cols;
        at += token.bytes;
        if (token.newline && at < piece.end && !flush()) return cut();
      }
      if (row !== "" && !flush()) return cut();
      shown = piece.end;
      const mark = markText(piece, verb);
      if (mark) rows.push({ mark: true, text: mark });
    }
    return rows;
  }

  #hexRows(
    bytes: Uint8Array,
    pieces: readonly FramePiece[],
    verb: "read" | "write",
  ): Row[] {
    const rows: Row[] = [];
    const digits = bytes.length > 0x10000 ? 8 : 4;
    const shown = Math.min(bytes.length, this.#maxRows * HEX_ROW);
    for (let offset = 0; offset < shown; offset += HEX_ROW) {
      const row = bytes.subarray(
        offset,
        Math.min(offset + HEX_ROW, bytes.length),
      );
      let hex = "";
      for (let i = 0; i < HEX_ROW; i += 2) {
        const pair = row.subarray(i, i + 2);
        hex += `${Array.from(pair, hexByte).join("").padEnd(4)} `;
      }
      const ascii = Array.from(
        row,
        (b) => b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".",
      )
        .join("");
      rows.push({
        text: `${offset.toString(16).padStart(digits, "0")}: ${hex} ${ascii}`,
      });
    }
    const offset = (at: number): string =>
      at.toString(16).padStart(digits, "0");
    const range = (piece: FramePiece): string =>
      piece.end - piece.start > 1
        ? `${offset(piece.start)}-${offset(piece.end - 1)}`
        : offset(piece.start);
    for (const [index, piece] of pieces.entries()) {
      if (piece.kind === "bytes") continue;
      if (piece.start >= shown && piece.end > piece.start) {
        return this.#cut(rows, bytes, pieces.slice(index), shown, verb);
      }
      if (piece.kind === "prefix") {
        rows.push({
          mark: true,
          text: `  ${range(piece)} ${prefixText(bytes, piece)}`,
        });
        if (piece.filled < LENGTH_PREFIX_BYTES) {
          rows.push(prefixContinues(piece.filled, verb));
        }
        continue;
      }
      const mark = markText(piece, verb);
      if (mark) {
        rows.push({
          mark: true,
          text: `${mark.slice(0, 2)}${range(piece)} ${mark.slice(2)}`,
        });
      }
    }
    if (shown < bytes.length) {
      rows.push({
        mark: true,
        text: `… ${moreBytes(bytes.length - shown)}`,
      });
    }
    return rows;
  }

  /** The cut: how many bytes were not shown, how many messages end in them, and the last one's mark. */
  #cut(
    rows: Row[],
    bytes: Uint8Array,
    rest: readonly FramePiece[],
    shown: number,
    verb: "read" | "write",
  ): Row[] {
    let ending = 0;
    for (const piece of rest) {
      if (piece.kind === "payload" && piece.ends) ending++;
    }
    const messages = ending === 0
      ? ""
      : ` (${ending.toLocaleString("en-US")} more message${
        ending === 1 ? " ends" : "s end"
      } there)`;
    rows.push({
      mark: true,
      text: `… ${moreBytes(bytes.length - shown)}${messages}`,
    });
    const last = rest.at(-1);
    if (last?.kind === "payload" && !last.ends) {
      rows.push({ mark: true, text: markText(last, verb)! });
    }
    if (last?.kind === "prefix" && last.filled < LENGTH_PREFIX_BYTES) {
      rows.push({
        mark: true,
        text:
          `… length prefix continues in the next ${verb} (${last.filled} of ${LENGTH_PREFIX_BYTES} bytes)`,
      });
    }
    return rows;
  }
}

/** `[00 00 00 1d] = 29 bytes`; a prefix split across chunks shows its part. */
function prefixText(
  bytes: Uint8Array,
  piece: Extract<FramePiece, { kind: "prefix" }>,
): string {
  const own = Array.from(bytes.subarray(piece.start, piece.end), hexByte).join(
    " ",
  );
  if (piece.filled < LENGTH_PREFIX_BYTES) {
    return `${piece.before === 0 ? "[" : ""}${own}`;
  }
  const whole = Array.from(
    { length: LENGTH_PREFIX_BYTES },
    (_, i) =>
      hexByte(
        Math.floor(piece.value / 256 ** (LENGTH_PREFIX_BYTES - 1 - i)) % 256,
      ),
  ).join(" ");
  return piece.before === 0
    ? `[${own}] = ${bytesText(piece.value)}`
    : `${own}] (with the ${piece.before} before it: [${whole}] = ${
      bytesText(piece.value)
    })`;
}

/** The mark under a length prefix that a read or write cut in two. */
function prefixContinues(filled: number, verb: string): Row {
  return {
    mark: true,
    text: `… length prefix continues in the next ${verb} (${filled} of ` +
      `${LENGTH_PREFIX_BYTES} bytes)`,
  };
}

/** `└ message 3 ends (12 bytes)` or `… message 4 continues in the next read (5 bytes so far)`. */
function markText(piece: FramePiece, verb: "read" | "write"): string | null {
  if (piece.kind !== "payload") return null;
  if (piece.ends) {
    const over = piece.chunks > 1 ? `, over ${piece.chunks} ${verb}s` : "";
    const empty = piece.size === 0 ? ": an empty message" : "";
    return `└ message ${piece.message} ends (${
      bytesText(piece.size)
    }${empty}${over})`;
  }
  const of = piece.total === null
    ? ""
    : ` of ${piece.total.toLocaleString("en-US")}`;
  return `… message ${piece.message} continues in the next ${verb} (${
    piece.size.toLocaleString("en-US")
  }${of} byte${piece.size === 1 && of === "" ? "" : "s"} so far)`;
}
