/**
 * The roster: everyone in the chat by name, for `/who` and `/nick`, and the
 * server's log of who came, who was renamed and who left.
 *
 * Names are unique among everyone present, the server's `guest-N` names
 * included, compared by `nameKey` (normalised, accents dropped, case
 * folded). One thread owns the roster: the sandbox's only thread, or the
 * threaded server's main thread, which its workers ask (see
 * {@linkcode Directory}).
 *
 * @example
 * ```ts
 * import { Roster } from "./roster.ts";
 * const roster = new Roster();
 * roster.join({ id: 1, name: "guest-1", peer: "127.0.0.1:50000" }); // 0 others
 * roster.rename(1, "alice"); // "renamed"
 * roster.join({ id: 2, name: "guest-2", peer: "127.0.0.1:50001" });
 * roster.rename(2, "ALICE"); // "taken"
 * roster.names(); // ["alice", "guest-2"]
 * ```
 *
 * @module
 */

import { nameKey } from "./nick.ts";

/** Someone entering the chat. */
export interface Newcomer {
  /** Unique within the server. */
  id: number;
  /** The name the server gave it. */
  name: string;
  /** Its address, for the log. */
  peer: string;
  /** Where it is served, for the log (e.g. `worker 2`). */
  where?: string;
}

/** The answer to a rename. */
export type RenameResult = "renamed" | "taken" | "unchanged";

/**
 * What the chat rules need of the roster; the roster itself, or (in a
 * worker) messages to the thread that owns it.
 */
export interface Directory {
  /** Adds a newcomer; gives how many others are here. */
  join(newcomer: Newcomer): number | Promise<number>;
  /** Renames `id` to `name`, unless someone else has that name. */
  rename(id: number, name: string): RenameResult | Promise<RenameResult>;
  /** Every name, in order of joining. */
  names(): string[] | Promise<string[]>;
  /** Removes `id`; `reason` (maybe empty) goes to the log. */
  leave(id: number, reason: string): void;
}

/** Options of {@linkcode Roster}. */
export interface RosterOptions {
  /** Where the roster's log lines go (default: nowhere). */
  log?: (line: string) => void;
}

/**
 * Everyone present, by id and by name.
 *
 * @example
 * ```ts
 * import { Roster } from "./roster.ts";
 * const lines: string[] = [];
 * const roster = new Roster({ log: (line) => lines.push(line) });
 * roster.join({ id: 3, name: "guest-3", peer: "10.0.0.5:41000" });
 * lines; // ["guest-3 joined from 10.0.0.5:41000"]
 * ```
 */
export class Roster implements Directory {
  readonly #names = new Map<number, string>();
  readonly #byKey = new Map<string, number>();
  readonly #log: (line: string) => void;

  /** An empty roster; see {@linkcode RosterOptions}. */
  constructor(options: RosterOptions = {}) {
    this.#log = options.log ?? (() => {});
  }

  /** How many are present. */
  get size(): number {
    return this.#names.size;
  }

  /** The name of `id`, if present. */
  nameOf(id: number): string | undefined {
    return this.#names.get(id);
  }

  /** Adds a newcomer under its given name; returns how many others are here. */
  join(newcomer: Newcomer): number {
    const others = this.#names.size;
    this.#names.set(newcomer.id, newcomer.name);
    this.#byKey.set(nameKey(newcomer.name), newcomer.id);
    const where = newcomer.where ? ` (${newcomer.where})` : "";
    this.#log(`${newcomer.name} joined from ${newcomer.peer}${where}`);
    return others;
  }

  /** Renames `id`, unless another member's name has the same key. */
  rename(id: number, name: string): RenameResult {
    const old = this.#names.get(id);
    if (old === undefined) return "unchanged";
    const key = nameKey(name);
    const holder = this.#byKey.get(key);
    if (holder !== undefined && holder !== id) return "taken";
    if (old === name) return "unchanged";
    this.#byKey.delete(nameKey(old));
    this.#byKey.set(key, id);
    this.#names.set(id, name);
    this.#log(`${old} is now ${name}`);
    return "renamed";
  }

  /** Every name, in order of joining. */
  names(): string[] {
    return [...this.#names.values()];
  }

  /** Removes `id`, logging why it left. */
  leave(id: number, reason: string): void {
    const name = this.#names.get(id);
    if (name === undefined) return;
    this.#names.delete(id);
    if (this.#byKey.get(nameKey(name)) === id) {
      this.#byKey.delete(nameKey(name));
    }
    this.#log(`${name} left${reason ? ` (${reason})` : ""}`);
  }
}
