/**
 * The typed doorway to the Deno standard library.
 *
 * The `@std` packages reach this project through the npm package `deno-std`
 * (see the README: JSR is not reachable everywhere). That package is the
 * official std code compiled to JavaScript, without type declarations, so
 * every value it exports arrives as `any`. This module is the one place that
 * touches those untyped values: it gives each one the signature of the
 * official `@std` API, so every other module stays strictly typed.
 *
 * Switching to JSR changes `deno.json` only; this file keeps working.
 *
 * @module
 */

import {
  bold as untypedBold,
  cyan as untypedCyan,
  dim as untypedDim,
  green as untypedGreen,
  red as untypedRed,
  setColorEnabled as untypedSetColorEnabled,
  yellow as untypedYellow,
} from "@std/fmt/colors";
import { deadline as untypedDeadline } from "@std/async/deadline";
import { delay as untypedDelay } from "@std/async/delay";
import { concat as untypedConcat } from "@std/bytes/concat";
import { TextLineStream as UntypedTextLineStream } from "@std/streams/text-line-stream";

// ---------------------------------------------------------------------------
// @std/fmt/colors

// Colors only on a terminal; `NO_COLOR` (checked by the package) wins.
untypedSetColorEnabled(Deno.stdout.isTerminal());

/**
 * Turns colors on or off for the style functions below
 * (`@std/fmt/colors`). `NO_COLOR` in the environment always wins.
 *
 * @example
 * ```ts
 * import { setColorEnabled } from "./std.ts";
 * setColorEnabled(Deno.stdout.isTerminal());
 * ```
 */
export function setColorEnabled(enabled: boolean): void {
  untypedSetColorEnabled(enabled);
}

/** A function that wraps text in one terminal style. */
export type Style = (text: string) => string;

/**
 * Terminal styles from `@std/fmt/colors`: each returns the text unchanged
 * while colors are off.
 *
 * @example
 * ```ts
 * import { styles } from "./std.ts";
 * console.log(styles.red("error:"), "connection refused");
 * ```
 */
export const styles: Readonly<
  Record<
    "bold" | "cyan" | "dim" | "green" | "red" | "yellow",
    Style
  >
> = {
  bold: untypedBold,
  cyan: untypedCyan,
  dim: untypedDim,
  green: untypedGreen,
  red: untypedRed,
  yellow: untypedYellow,
};

// ---------------------------------------------------------------------------
// @std/async

/**
 * Resolves after `ms` milliseconds (`@std/async/delay`); rejects with the
 * signal's reason when `signal` aborts first.
 *
 * @example
 * ```ts
 * import { delay } from "./std.ts";
 * await delay(10);
 * ```
 */
export function delay(
  ms: number,
  options: { signal?: AbortSignal } = {},
): Promise<void> {
  return untypedDelay(ms, options);
}

/**
 * Resolves as `promise` does, or rejects with a `TimeoutError`
 * (`DOMException`) once `ms` passed (`@std/async/deadline`). Its timer is
 * an `AbortSignal.timeout`: it never holds the program open.
 *
 * @example
 * ```ts
 * import { deadline } from "./std.ts";
 * await deadline(Promise.resolve(1), 1000); // 1
 * await deadline(new Promise(() => {}), 10).catch((e) => e.name); // "TimeoutError"
 * ```
 */
export function deadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return untypedDeadline(promise, ms);
}

/**
 * Waits for `promise`, at most `ms`: resolves `true` if it settled in time
 * (fulfilled or not), `false` if the time ran out. For "wait a while, then
 * go on anyway" (a goodbye to a peer that may not read).
 *
 * @example
 * ```ts
 * import { settledWithin } from "./std.ts";
 * await settledWithin(new Promise(() => {}), 10); // false
 * ```
 */
export async function settledWithin(
  promise: Promise<unknown>,
  ms: number,
): Promise<boolean> {
  try {
    await deadline(promise, ms);
  } catch (error) {
    return !(error instanceof DOMException && error.name === "TimeoutError");
  }
  return true;
}

// ---------------------------------------------------------------------------
// @std/bytes

/**
 * Joins byte arrays into one new array (`@std/bytes/concat`).
 *
 * @example
 * ```ts
 * import { concat } from "./std.ts";
 * concat([Uint8Array.of(1), Uint8Array.of(2, 3)]); // Uint8Array [1, 2, 3]
 * ```
 */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  return untypedConcat(parts);
}

// ---------------------------------------------------------------------------
// @std/streams

/**
 * Splits a text stream into lines, on `\n` or `\r\n`
 * (`@std/streams/text-line-stream`).
 *
 * @example
 * ```ts
 * import { textLineStream } from "./std.ts";
 * const lines = ReadableStream.from(["a\nb", "\n"]).pipeThrough(textLineStream());
 * console.log(await Array.fromAsync(lines)); // ["a", "b"]
 * ```
 */
export function textLineStream(): TransformStream<string, string> {
  return new UntypedTextLineStream();
}
