/**
 * A connection's bounded output queue: the way a server sends to one
 * client without ever waiting for it, and without buffering without limit.
 *
 * A chat server must not let one slow client hold up the others, so a
 * broadcast only puts bytes in each receiver's outbox and moves on; each
 * outbox has its own writer that drains it, as fast as that client reads
 * (the awaited write is the backpressure). Whatever is queued when the
 * writer wakes goes out in one write, so a burst of small messages costs
 * few system calls.
 *
 * Two rules keep memory bounded without cutting off healthy readers:
 *
 * - **Pacing**: past half its bound in broadcasts an outbox is
 *   *congested*; a server
 *   reads no more from its senders until {@linkcode settle} sees every
 *   outbox drain below that mark. A client that reads slowly slows the
 *   senders down (TCP does the rest); nothing is dropped.
 * - **Cutting off**: a congested outbox whose client read nothing for the
 *   stall time (default 500 ms) means the client stopped reading, and so
 *   does passing the bound (default 1 MiB) in a burst: the client is
 *   disconnected and its memory freed; the others go on.
 *
 * What a broadcast queues is shared: every receiver's outbox holds the same
 * chunk ({@linkcode Outbox.send}). A reply is made for one client alone
 * ({@linkcode Outbox.reply}): replies are what a client can make the server
 * hold for it by asking (3 bytes of an unknown command buy 46 of
 * answer), at will, so they never congest an outbox (a client that asks
 * and does not read would hold every sender up): they have a bound of
 * their own, the same size, and also count against a server-wide bound
 * (the `replies` option): past it, of the clients whose replies waited
 * 500 ms, the one with the most is cut off.
 *
 * @example
 * ```ts ignore
 * import { Outbox } from "./outbox.ts";
 *
 * const outbox = new Outbox(conn, { onOverflow: () => console.log("too slow") });
 * outbox.send(new TextEncoder().encode("hello\n")); // returns at once
 * await outbox.close(); // flushes what is queued (bounded time), then closes
 * ```
 *
 * @module
 */

import type { NumberFlag } from "./cli.ts";
import { closeQuietly, type Closer, writeAll, type Writer } from "./io.ts";
import { type PendingHolder, PendingLimit } from "./pending_limit.ts";
import { settledWithin } from "./std.ts";

/** The default bound on bytes queued for one client: 1 MiB. */
export const DEFAULT_OUTBOX_LIMIT = 1 << 20;

/** How long a congested outbox may go without writing a byte: 500 ms. */
export const DEFAULT_STALL_MS = 500;

/** The most bytes joined into one write. */
const MAX_WRITE = 256 * 1024;

/** The longest message a server sends, for {@linkcode outboxLimitProblem}. */
export interface LongestMessage {
  /** Its size in bytes. */
  bytes: number;
  /** The flag that sets it, e.g. `--max-frame`. */
  flag: string;
  /**
   * How many of it an outbox must hold: 2 where the pacing looks before
   * each broadcast (half the bound, then one more); more where broadcasts
   * may be on their way between threads.
   */
  times: number;
}

/**
 * Why `--outbox-limit` is too small for the longest message (`null`: it is
 * not): a reader that reads must never be cut off by one broadcast, and a
 * broadcast carries at least one message.
 *
 * @example
 * ```ts
 * import { outboxLimitProblem } from "./outbox.ts";
 * outboxLimitProblem(1024, { bytes: 65536, flag: "--max-frame", times: 2 });
 * // "--outbox-limit must be at least 2 times --max-frame (131072 bytes), got 1024: …"
 * outboxLimitProblem(1 << 20, { bytes: 65536, flag: "--max-frame", times: 2 }); // null
 * ```
 */
export function outboxLimitProblem(
  limit: number,
  longest: LongestMessage,
): string | null {
  const least = longest.bytes * longest.times;
  if (limit >= least) return null;
  return `--outbox-limit must be at least ${longest.times} times ` +
    `${longest.flag} (${least} bytes), got ${limit}: one long message ` +
    `could cut off a reader that reads; lower ${longest.flag} or raise it`;
}

/** The default server-wide bound on replies waiting in every outbox: 32 MiB. */
export const DEFAULT_REPLIES_LIMIT = 32 * 1024 * 1024;

/**
 * The server-wide bound on replies, for the `replies` option of every
 * outbox of a server: past `limit` bytes, the client with the most replies
 * that waited for the stall time (500 ms) is cut off, until the total fits.
 * A burst of answers to clients that read them (500 `/who` at once) is
 * written within milliseconds, and must not count as unread.
 *
 * @example
 * ```ts ignore
 * import { Outbox, repliesLimit } from "./outbox.ts";
 * const replies = repliesLimit(32 << 20); // one for the whole server
 * const outbox = new Outbox(conn, { replies });
 * ```
 */
export function repliesLimit(limit = DEFAULT_REPLIES_LIMIT): PendingLimit {
  return new PendingLimit(limit, { graceMs: DEFAULT_STALL_MS });
}

/**
 * `--max-replies BYTES`, the server-wide bound on replies (a spec for
 * `lib/cli.ts`).
 *
 * @example
 * ```ts ignore
 * import { MAX_REPLIES_FLAG } from "./outbox.ts";
 * const FLAGS = { maxReplies: MAX_REPLIES_FLAG } as const;
 * ```
 */
export const MAX_REPLIES_FLAG = {
  type: "integer",
  description:
    "bytes of replies (answers to commands) unread by all clients together; " +
    "past it, the client with the most unread for 0.5 s is disconnected",
  placeholder: "BYTES",
  min: 16 * 1024,
  default: DEFAULT_REPLIES_LIMIT,
} as const satisfies NumberFlag;

/**
 * Queued behind this many chunks, a small reply is copied into a gathered
 * chunk instead of queued as it is. Each queued chunk costs some 600 bytes
 * besides its own (a typed array and its backing store): a client far behind
 * a flood of one-line replies held 15 times its bound. A broadcast's chunks
 * are never copied: one chunk serves every receiver.
 */
const GATHER_AFTER = 8;

/** The largest chunk that is gathered: 4 KiB (past it, its own cost is small beside it). */
const GATHER_MAX = 4096;

/** What small chunks are gathered into: 16 KiB at a time. */
const GATHER_SIZE = 16 * 1024;

/** Chunks joined for one write, and the joined copy. */
interface Join {
  parts: readonly Uint8Array[];
  joined: Uint8Array;
}

/**
 * Recent joins, by their first chunk. A broadcast queues the same chunks in
 * every receiver's outbox, so the receivers that fell equally behind share
 * one joined copy instead of each allocating its own (a new buffer costs far
 * more than the copy). Weak: an entry goes once no queue holds its chunk.
 */
const joins = new WeakMap<Uint8Array, Join>();

/**
 * Outboxes of this thread that are congested now. While it is 0 a pacer
 * need not look at every outbox before each read: with thousands of
 * clients connecting at once, that look was a quadratic cost.
 */
let congestedHere = 0;

/** Options of {@linkcode Outbox}. */
export interface OutboxOptions {
  /**
   * Bytes queued beyond which the client is cut off (default 1 MiB): of
   * broadcasts, and of replies, each.
   */
  limit?: number;
  /** Called once when the client is cut off as too slow, before the connection closes. */
  onOverflow?: (queued: number) => void;
  /**
   * The server-wide bound on replies ({@linkcode Outbox.reply}), shared by
   * every outbox of the server: past it, the outbox with the most replies
   * unread is cut off as too slow. Without it, replies count only against
   * `limit`.
   */
  replies?: PendingLimit;
}

/**
 * A bounded, self-draining output queue in front of one connection.
 *
 * @example
 * ```ts ignore
 * import { Outbox } from "./outbox.ts";
 * const outbox = new Outbox(conn);
 * outbox.send(bytes); // a broadcast's chunk, shared with other outboxes
 * outbox.reply(answer); // made for this client alone
 * ```
 */
export class Outbox {
  readonly #conn: Writer & Closer;
  readonly #limit: number;
  readonly #options: OutboxOptions;
  #queue: Uint8Array[] = [];
  #queued = 0;
  #writing: Promise<void> | null = null;
  #closed = false;
  #waiters: (() => void)[] = [];
  #reason: string | undefined;
  readonly #counting: CountingWriter;
  /** Whether this outbox is counted in `congestedHere`. */
  #counted = false;
  /** The buffer small chunks are gathered into, once the queue is long. */
  #gather: Uint8Array | null = null;
  /** Where the bytes gathered so far end in `#gather`. */
  #gatherEnd = 0;
  /** The queue's last chunk while it is the gathered one (it may grow). */
  #gathered: Uint8Array | null = null;
  /** Bytes of replies queued or being written. */
  #owned = 0;
  /** Reply bytes in each queued chunk (0: a broadcast's), beside `#queue`; `null` while none is queued. */
  #owns: number[] | null = null;
  /** Bytes of replies in the write in flight (counted until it completes). */
  #ownedWriting = 0;
  /** This outbox's share of the server-wide `replies` bound. */
  readonly #holder: PendingHolder;

  /** Wraps `conn`; see {@linkcode OutboxOptions}. */
  constructor(conn: Writer & Closer, options: OutboxOptions = {}) {
    this.#conn = conn;
    this.#counting = new CountingWriter(conn);
    this.#limit = options.limit ?? DEFAULT_OUTBOX_LIMIT;
    this.#options = options;
    this.#holder = { evict: (held) => this.#evicted(held) };
  }

  /** Bytes queued and not yet handed to the kernel. */
  get queued(): number {
    return this.#queued;
  }

  /** Chunks queued: each costs some 600 bytes besides its bytes (see `GATHER_AFTER`). */
  get chunks(): number {
    return this.#queue.length;
  }

  /** Bytes of replies queued or being written (see {@linkcode reply}). */
  get replies(): number {
    return this.#owned;
  }

  /** Bytes of broadcasts queued or being written (the rest are replies). */
  get #broadcasts(): number {
    return this.#queued - this.#owned;
  }

  /** Bytes written since the start: progress, for telling slow from stopped. */
  get written(): number {
    return this.#counting.written;
  }

  /**
   * Broadcasts queued past half the bound: senders should wait (see
   * {@linkcode settle}). Replies do not count: a client that asks and does
   * not read would otherwise hold everyone up, at will; its replies have
   * a bound of their own, and the server-wide one.
   */
  get congested(): boolean {
    // A closed outbox takes nothing more: nobody waits for it (a wait on
    // one that is still flushing would spin).
    return !this.#closed && this.#broadcasts > this.#limit / 2;
  }

  /** Resolves once the outbox is no longer congested (or is closed). */
  uncongested(): Promise<void> {
    if (!this.congested || this.#closed) return Promise.resolve();
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Cuts the client off as too slow, as an overflow does. */
  stall(): void {
    if (!this.#closed) this.#tooSlow();
  }

  /**
   * Why the outbox cut its client off (`too slow: N bytes unread`, or
   * `connection lost while sending`); `undefined` while it has not.
   */
  get reason(): string | undefined {
    return this.#reason;
  }

  /** Whether the outbox was closed (by `close`, an overflow or an error). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Queues `bytes`, a chunk that other outboxes may share (a broadcast's):
   * not copied, so do not change them afterwards. Returns `false` if the
   * outbox is closed or this send passed the bound, which closes it.
   */
  send(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    this.#queue.push(bytes);
    this.#owns?.push(0);
    return this.#added(bytes.length);
  }

  /**
   * Queues `bytes` made for this client alone (an answer, a notice to it):
   * behind a long queue a small reply is copied into a gathered chunk, and
   * replies count against the server-wide `replies` bound too. Returns
   * `false` if the outbox is closed or this reply closed it.
   */
  reply(bytes: Uint8Array): boolean {
    if (this.#closed) return false;
    const queue = this.#queue;
    const owns = this.#owns ??= new Array<number>(queue.length).fill(0);
    if (queue.length >= GATHER_AFTER && bytes.length <= GATHER_MAX) {
      if (this.#gatherIn(bytes)) owns[owns.length - 1] += bytes.length;
      else owns.push(bytes.length);
    } else {
      queue.push(bytes);
      owns.push(bytes.length);
    }
    this.#owned += bytes.length;
    if (!this.#added(bytes.length)) return false;
    this.#options.replies?.hold(this.#holder, this.#owned); // may cut this one
    return !this.#closed;
  }

  /**
   * Counts `length` more bytes queued; past the bound, in broadcasts or in
   * replies, cuts the client off. Apart: the pacing keeps broadcasts near
   * half the bound, so a reader that keeps up and also asks must not lose
   * its room to its own answers.
   */
  #added(length: number): boolean {
    this.#queued += length;
    if (
      this.#broadcasts > this.#limit || this.#owned > this.#limit
    ) {
      this.#tooSlow();
      return false;
    }
    if (this.#queued > this.#limit / 2) this.#recount();
    this.#writing ??= this.#drain();
    return true;
  }

  /**
   * Copies `bytes` to the end of the gathered chunk, which stays the queue's
   * last; a new one begins where the last was taken for a write (the bytes
   * being written are never touched) or when the buffer is full. Returns
   * whether the queue's last chunk grew (else a new one was queued).
   */
  #gatherIn(bytes: Uint8Array): boolean {
    const queue = this.#queue;
    let buffer = this.#gather;
    let grow = this.#gathered !== null && queue.at(-1) === this.#gathered;
    if (buffer === null || this.#gatherEnd + bytes.length > buffer.length) {
      buffer = this.#gather = new Uint8Array(GATHER_SIZE);
      this.#gatherEnd = 0;
      grow = false;
    }
    const start = grow ? this.#gathered!.byteOffset : this.#gatherEnd;
    buffer.set(bytes, this.#gatherEnd);
    this.#gatherEnd += bytes.length;
    const chunk = buffer.subarray(start, this.#gatherEnd);
    if (grow) queue[queue.length - 1] = chunk;
    else queue.push(chunk);
    this.#gathered = chunk;
    return grow;
  }

  /** Keeps `congestedHere` true to {@linkcode Outbox.congested}. */
  #recount(): void {
    const congested = this.congested;
    if (congested === this.#counted) return;
    this.#counted = congested;
    congestedHere += congested ? 1 : -1;
  }

  async #drain(): Promise<void> {
    try {
      while (this.#queue.length > 0 && !this.#closed) {
        const chunk = this.#take();
        // writeAll, inline (this is the hot path): a write may take less
        // than asked, and every byte taken counts as progress.
        for (let done = 0; done < chunk.length;) {
          const n = await this.#conn.write(
            done === 0 ? chunk : chunk.subarray(done),
          );
          done += n;
          this.#counting.written += n;
        }
        this.#queued -= chunk.length;
        if (this.#ownedWriting > 0) this.#repliesWritten();
        if (this.#counted) this.#recount();
        if (this.#waiters.length > 0 && !this.congested) this.#wake();
      }
    } catch {
      if (!this.#closed) {
        this.#reason = "connection lost while sending";
        this.#abort();
      }
    } finally {
      this.#writing = null;
    }
  }

  /** Reply bytes of the first `count` queued chunks, taken for a write. */
  #ownedTaken(owns: number[], count: number): number {
    let bytes = 0;
    for (const n of owns.splice(0, count)) bytes += n;
    if (owns.length === 0) this.#owns = null; // nothing queued after them
    return bytes;
  }

  /** The replies of the write just done are no longer held. */
  #repliesWritten(): void {
    this.#owned -= this.#ownedWriting;
    this.#ownedWriting = 0;
    this.#options.replies?.hold(this.#holder, this.#owned);
  }

  /**
   * Takes queued chunks, joined up to MAX_WRITE bytes, for one write, and
   * notes how many of their bytes are replies.
   */
  #take(): Uint8Array {
    const queue = this.#queue;
    const first = queue[0];
    const owns = this.#owns;
    if (queue.length === 1 || first.length >= MAX_WRITE) {
      if (owns !== null) this.#ownedWriting = this.#ownedTaken(owns, 1);
      return queue.shift()!;
    }
    let size = 0;
    let count = 0;
    while (count < queue.length && size + queue[count].length <= MAX_WRITE) {
      size += queue[count++].length;
    }
    const parts = queue.splice(0, count);
    if (owns !== null) this.#ownedWriting = this.#ownedTaken(owns, count);
    const known = joins.get(first);
    if (known && sameChunks(known.parts, parts)) return known.joined;
    const joined = new Uint8Array(size);
    let offset = 0;
    for (const part of parts) {
      joined.set(part, offset);
      offset += part.length;
    }
    joins.set(first, { parts, joined });
    return joined;
  }

  #tooSlow(reason = `too slow: ${this.#queued} bytes unread`): void {
    const queued = this.#queued;
    this.#reason = reason;
    this.#abort();
    this.#options.onOverflow?.(queued);
  }

  /** The server-wide `replies` bound cut this outbox, which held the most. */
  #evicted(held: number): void {
    if (this.#closed) {
      // Already saying goodbye: what it still holds goes now.
      this.#owned = this.#ownedWriting = 0;
      closeQuietly(this.#conn);
      return;
    }
    this.#tooSlow(
      `too slow: ${held} bytes of replies unread when the server was full`,
    );
  }

  #wake(): void {
    for (const resolve of this.#waiters.splice(0)) resolve();
  }

  #abort(): void {
    this.#closed = true;
    this.#queue = [];
    this.#gather = this.#gathered = null;
    this.#queued = 0;
    this.#release();
    this.#recount();
    this.#wake();
    closeQuietly(this.#conn);
  }

  /**
   * Sends what is queued, then `last` (a goodbye), then closes the
   * connection. Never throws, and never tears a message:
   *
   * - for `timeoutMs`, queued chunks are sent whole, in order;
   * - after that no new chunk is begun: the rest is dropped whole and only
   *   `last` follows (a peer that is merely behind gets its goodbye);
   * - a chunk already begun may finish for another `timeoutMs`; a peer that
   *   takes nothing for that long is cut off where it stands.
   */
  async close(last?: Uint8Array, timeoutMs = 500): Promise<void> {
    if (this.#closed) return;
    this.#closed = true; // no more sends; #drain stops after its chunk
    this.#recount();
    this.#wake();
    const soft = Date.now() + timeoutMs;
    const flushed = (async () => {
      await this.#writing;
      const rest = this.#queue;
      this.#queue = [];
      for (const chunk of rest) {
        if (Date.now() >= soft) break; // dropped whole, never torn
        await writeAll(this.#counting, chunk);
      }
      if (last) await writeAll(this.#counting, last);
    })().catch(() => {});
    await settledWithin(flushed, 2 * timeoutMs);
    this.#queued = 0;
    this.#release();
    closeQuietly(this.#conn);
  }

  /** Holds no replies any more: the server-wide bound forgets this outbox. */
  #release(): void {
    this.#owned = this.#ownedWriting = 0;
    this.#owns = null;
    this.#options.replies?.release(this.#holder);
  }
}

/** Whether `a` and `b` hold the same chunks (the same objects), in order. */
function sameChunks(
  a: readonly Uint8Array[],
  b: readonly Uint8Array[],
): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** The connection, counting every byte the kernel takes, even of a partial write. */
class CountingWriter implements Writer {
  written = 0;
  constructor(readonly conn: Writer) {}
  async write(p: Uint8Array): Promise<number> {
    const n = await this.conn.write(p);
    this.written += n;
    return n;
  }
}

/**
 * Waits until no outbox in `outboxes` is congested. An outbox still
 * congested after `stallMs` that wrote nothing meanwhile belongs to a client
 * that stopped reading: it is cut off ({@linkcode Outbox.stall}), so the
 * wait ends for the others. (If this thread itself was held up for half as
 * long again, nobody is judged that round.)
 *
 * @example
 * ```ts ignore
 * import { settle } from "./outbox.ts";
 * // In a server's read loop, after broadcasting what one read brought:
 * if (outboxes.some((o) => o.congested)) await settle(outboxes);
 * ```
 */
export async function settle(
  outboxes: Iterable<Outbox>,
  stallMs = DEFAULT_STALL_MS,
): Promise<void> {
  for (;;) {
    const congested = [...outboxes].filter((outbox) =>
      outbox.congested && !outbox.closed
    );
    if (congested.length === 0) return;
    const progress = congested.map((outbox) => outbox.written);
    const started = Date.now();
    await settledWithin(
      Promise.all(congested.map((outbox) => outbox.uncongested())),
      stallMs,
    );
    // A timer that fired far too late means this thread itself was held up
    // (a long GC, a starved CPU): the clients had no fair chance; look again.
    if (Date.now() - started > stallMs * 1.5) continue;
    congested.forEach((outbox, i) => {
      if (outbox.congested && outbox.written === progress[i]) outbox.stall();
    });
  }
}

/**
 * One server's pacing: {@linkcode settle} over its outboxes, shared by every
 * reader that waits at the same time (one timer, not one per connection).
 *
 * @example
 * ```ts ignore
 * import { Pacer } from "./outbox.ts";
 * const pacer = new Pacer(() => clients.map((c) => c.outbox));
 * // In each client's read loop: relay what one read brought once no one is behind.
 * await pacer.run(() => room.broadcast(message));
 * ```
 */
export class Pacer {
  readonly #outboxes: () => Iterable<Outbox>;
  readonly #stallMs: number;
  #settling: Promise<void> | null = null;

  /** Paces over the outboxes `outboxes()` returns at each check. */
  constructor(outboxes: () => Iterable<Outbox>, stallMs = DEFAULT_STALL_MS) {
    this.#outboxes = outboxes;
    this.#stallMs = stallMs;
  }

  /**
   * Runs `step` once no outbox is congested, checked right before it runs
   * (again after each wait: a wait may wake many senders at once), so
   * senders add to an outbox only while it is below half its bound.
   */
  run(step: () => void | Promise<void>): void | Promise<void> {
    const wait = this.wait();
    return wait ? wait.then(() => this.run(step)) : step();
  }

  /** `undefined` when no outbox is congested (the common case, no promise made); else resolves once none is. */
  wait(): Promise<void> | undefined {
    if (this.#settling) return this.#settling;
    if (congestedHere === 0) return undefined; // none in this thread: no look
    let congested = false;
    for (const outbox of this.#outboxes()) {
      if (outbox.congested) {
        congested = true;
        break;
      }
    }
    if (!congested) return undefined;
    this.#settling = settle(this.#outboxes(), this.#stallMs).finally(
      () => (this.#settling = null),
    );
    return this.#settling;
  }
}
