/**
 * The worker mesh: a `MessagePort` to each other worker for the chat's
 * bytes, and a bound on how far a worker may run ahead of the others.
 *
 * Why ports and not one `BroadcastChannel`: a chat must keep each sender's
 * order, which a MessagePort does (messages arrive in the order posted) and
 * a BroadcastChannel between workers does not in Deno 2.9. The main thread
 * makes one MessageChannel per pair of workers and hands each end over.
 *
 * A port has no backpressure either: a worker reading a fast sender could
 * post faster than a busy worker handles, and the difference would pile up
 * in memory. So each worker's backlog (bytes posted to it, not yet handled)
 * is a counter in shared memory: senders add, the receiver subtracts and
 * wakes waiters with `Atomics.notify`. A worker that finds some backlog
 * over the bound stops reading its clients (TCP then slows the senders
 * down) until `Atomics.waitAsync` sees it drain.
 *
 * In portable mode the main thread writes every broadcast out itself, so
 * each worker has a second counter: its broadcasts posted to the main
 * thread and not yet handled, which the main thread counts handled once no
 * outbox is congested. A worker waits on it as on the others' backlogs:
 * that is what holds a browser's messages back (its socket is the worker's)
 * while a TCP client reads slowly.
 *
 * @example
 * ```ts ignore
 * import { Mesh } from "./mesh.ts";
 * const mesh = new Mesh(1, { backlog, limit: 256 * 1024, deliver: (bytes) => room.broadcast(bytes) });
 * mesh.connect(2, portToWorker2);
 * mesh.send(bytes);
 * if (mesh.congested()) await mesh.drained(); // before reading on
 * ```
 *
 * @module
 */

/**
 * Shared memory for the backlogs: cell 0 unused, one counter per worker
 * (numbered from 1), then each worker's counter of bytes posted to the main
 * thread (portable mode; see {@linkcode mainCell}).
 *
 * @example
 * ```ts
 * import { meshBacklogBuffer } from "./mesh.ts";
 * const buffer = meshBacklogBuffer(4); // 9 cells
 * ```
 */
export function meshBacklogBuffer(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(
    (2 * workers + 1) * Int32Array.BYTES_PER_ELEMENT,
  );
}

/**
 * The cell counting worker `index`'s bytes posted to the main thread and
 * not yet handled there.
 *
 * @example
 * ```ts
 * import { mainCell, meshBacklogBuffer } from "./mesh.ts";
 * mainCell(new Int32Array(meshBacklogBuffer(4)), 1); // 5
 * ```
 */
export function mainCell(cells: Int32Array, index: number): number {
  return (cells.length - 1) / 2 + index;
}

/** Options of {@linkcode Mesh}. */
export interface MeshOptions {
  /** The shared backlog counters, from {@linkcode meshBacklogBuffer}. */
  backlog: SharedArrayBuffer;
  /** Bytes a worker may have waiting, posted to it and not yet handled. */
  limit: number;
  /**
   * Gets other workers' bytes; if it returns a promise (its clients are
   * congested), the bytes count as handled only once it resolves, so the
   * senders wait for them.
   */
  deliver: (bytes: Uint8Array) => Promise<void> | undefined;
  /**
   * Portable mode: the worker also waits while its bytes posted to the main
   * thread ({@linkcode Mesh.toMain}) are over the bound.
   */
  main?: boolean;
}

/**
 * The main thread's side: `size` bytes that worker `index` posted are
 * handled (in the outboxes, none congested); wakes the worker if it waits.
 *
 * @example
 * ```ts
 * import { mainHandled, meshBacklogBuffer } from "./mesh.ts";
 * const cells = new Int32Array(meshBacklogBuffer(2));
 * mainHandled(cells, { index: 1, size: 0 }); // nothing was counted
 * ```
 */
export function mainHandled(
  cells: Int32Array,
  handled: { index: number; size: number },
): void {
  const cell = mainCell(cells, handled.index);
  Atomics.sub(cells, cell, handled.size);
  Atomics.notify(cells, cell);
}

/** A worker's end of the mesh. */
export class Mesh {
  readonly #index: number;
  readonly #backlog: Int32Array;
  readonly #limit: number;
  readonly #deliver: (bytes: Uint8Array) => Promise<void> | undefined;
  readonly #peers = new Map<number, MessagePort>();
  /** The cell of this worker's bytes posted to the main thread, if watched. */
  readonly #main: number | undefined;

  /** Joins the mesh as worker `index`; see {@linkcode MeshOptions}. */
  constructor(index: number, options: MeshOptions) {
    this.#index = index;
    this.#backlog = new Int32Array(options.backlog);
    this.#limit = options.limit;
    this.#deliver = options.deliver;
    this.#main = options.main ? mainCell(this.#backlog, index) : undefined;
    Atomics.store(this.#backlog, index, 0); // a replacement starts clean
  }

  /** Adds (or replaces) the port to worker `index`. */
  connect(index: number, port: MessagePort): void {
    this.#peers.get(index)?.close();
    this.#peers.set(index, port);
    port.onmessage = (event: MessageEvent<Uint8Array>) => {
      const size = event.data.length;
      const handled = (): void => {
        if (
          Atomics.sub(this.#backlog, this.#index, size) - size <=
            this.#limit
        ) {
          Atomics.notify(this.#backlog, this.#index);
        }
      };
      const waiting = this.#deliver(event.data);
      if (waiting) waiting.then(handled);
      else handled();
    };
  }

  /** Drops the port to worker `index` (it is gone). */
  disconnect(index: number): void {
    this.#peers.get(index)?.close();
    this.#peers.delete(index);
  }

  /** Posts bytes to every other worker, in order. */
  send(bytes: Uint8Array): void {
    for (const [index, port] of this.#peers) {
      Atomics.add(this.#backlog, index, bytes.length);
      port.postMessage(bytes);
    }
  }

  /**
   * Counts `size` bytes posted to the main thread (portable mode: a
   * broadcast it writes out); it subtracts them with {@linkcode mainHandled}.
   * Without `main` in the options, counts nothing.
   */
  toMain(size: number): void {
    if (this.#main !== undefined) Atomics.add(this.#backlog, this.#main, size);
  }

  /** The cells this worker waits on: the other workers', and its own to the main thread. */
  *#watched(): Generator<number> {
    if (this.#main !== undefined) yield this.#main;
    yield* this.#peers.keys();
  }

  /** Whether some other worker's backlog (or this worker's to the main thread) is over the bound. */
  congested(): boolean {
    for (const index of this.#watched()) {
      if (Atomics.load(this.#backlog, index) > this.#limit) return true;
    }
    return false;
  }

  /** Resolves once no other worker's backlog (nor this worker's to the main thread) is over the bound. */
  async drained(): Promise<void> {
    for (const index of this.#watched()) {
      for (;;) {
        const backlog = Atomics.load(this.#backlog, index);
        const gone = index !== this.#main && !this.#peers.has(index);
        if (backlog <= this.#limit || gone) break;
        // Re-check every 100 ms too: a worker that died never notifies.
        const wait = Atomics.waitAsync(this.#backlog, index, backlog, 100);
        if (wait.async) await wait.value;
      }
    }
  }

  /** Leaves the mesh. */
  close(): void {
    for (const port of this.#peers.values()) port.close();
    this.#peers.clear();
  }
}
