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
 * Shared memory for the backlogs: cell 0 unused, then one counter per
 * worker (numbered from 1).
 *
 * @example
 * ```ts
 * import { meshBacklogBuffer } from "./mesh.ts";
 * const buffer = meshBacklogBuffer(4); // 5 cells
 * ```
 */
export function meshBacklogBuffer(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer((workers + 1) * Int32Array.BYTES_PER_ELEMENT);
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
}

/** A worker's end of the mesh. */
export class Mesh {
  readonly #index: number;
  readonly #backlog: Int32Array;
  readonly #limit: number;
  readonly #deliver: (bytes: Uint8Array) => Promise<void> | undefined;
  readonly #peers = new Map<number, MessagePort>();

  /** Joins the mesh as worker `index`; see {@linkcode MeshOptions}. */
  constructor(index: number, options: MeshOptions) {
    this.#index = index;
    this.#backlog = new Int32Array(options.backlog);
    this.#limit = options.limit;
    this.#deliver = options.deliver;
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

  /** Whether some other worker's backlog is over the bound. */
  congested(): boolean {
    for (const index of this.#peers.keys()) {
      if (Atomics.load(this.#backlog, index) > this.#limit) return true;
    }
    return false;
  }

  /** Resolves once no other worker's backlog is over the bound. */
  async drained(): Promise<void> {
    for (const index of this.#peers.keys()) {
      for (;;) {
        const backlog = Atomics.load(this.#backlog, index);
        if (backlog <= this.#limit || !this.#peers.has(index)) break;
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
