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

import { parseArgs as untypedParseArgs } from "@std/cli/parse-args";
import {
  bold as untypedBold,
  cyan as untypedCyan,
  dim as untypedDim,
  green as untypedGreen,
  red as untypedRed,
  setColorEnabled as untypedSetColorEnabled,
  yellow as untypedYellow,
} from "@std/fmt/colors";
import {
  assert as untypedAssert,
  assertEquals as untypedAssertEquals,
  assertMatch as untypedAssertMatch,
  assertNotMatch as untypedAssertNotMatch,
  assertRejects as untypedAssertRejects,
  assertStringIncludes as untypedAssertStringIncludes,
  assertThrows as untypedAssertThrows,
} from "@std/assert";
import { delay as untypedDelay } from "@std/async/delay";
import { concat as untypedConcat } from "@std/bytes/concat";
import { TextLineStream as UntypedTextLineStream } from "@std/streams/text-line-stream";

// ---------------------------------------------------------------------------
// @std/cli

/** The options of {@linkcode parseArgs} this project uses. */
export interface ParseArgsOptions {
  /** Flags that take a string value. */
  string?: readonly string[];
  /** Flags that are booleans. */
  boolean?: readonly string[];
  /** Called for each flag not declared; return `false` to drop it. */
  unknown?: (arg: string) => unknown;
}

/** What {@linkcode parseArgs} returns: positionals in `_`, flags by name. */
export interface ParsedArgs {
  /** Arguments that are not flags. */
  _: (string | number)[];
  /** Flags, by name. */
  [flag: string]: unknown;
}

/**
 * Parses command-line arguments (`@std/cli/parse-args`).
 *
 * @example
 * ```ts
 * import { parseArgs } from "./std.ts";
 * const args = parseArgs(["--port", "5000"], { string: ["port"] });
 * console.log(args.port); // "5000"
 * ```
 */
export function parseArgs(
  args: readonly string[],
  options: ParseArgsOptions,
): ParsedArgs {
  return untypedParseArgs(args, options);
}

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

// ---------------------------------------------------------------------------
// @std/assert (used by the tests)

/**
 * Asserts that `actual` deeply equals `expected` (`@std/assert`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "./std.ts";
 * assertEquals([1, 2], [1, 2]);
 * ```
 */
export function assertEquals<T>(actual: T, expected: T, msg?: string): void {
  untypedAssertEquals(actual, expected, msg);
}

/**
 * Asserts that `condition` is truthy (`@std/assert`).
 *
 * @example
 * ```ts
 * import { assert } from "./std.ts";
 * assert(1 + 1 === 2);
 * ```
 */
export function assert(condition: unknown, msg?: string): asserts condition {
  untypedAssert(condition, msg);
}

/**
 * Asserts that `actual` matches `expected` (`@std/assert`).
 *
 * @example
 * ```ts
 * import { assertMatch } from "./std.ts";
 * assertMatch("listening on 127.0.0.1:5000", /listening on/);
 * ```
 */
export function assertMatch(
  actual: string,
  expected: RegExp,
  msg?: string,
): void {
  untypedAssertMatch(actual, expected, msg);
}

/**
 * Asserts that `actual` does not match `expected` (`@std/assert`).
 *
 * @example
 * ```ts
 * import { assertNotMatch } from "./std.ts";
 * assertNotMatch("plain text", /\x1b/);
 * ```
 */
export function assertNotMatch(
  actual: string,
  expected: RegExp,
  msg?: string,
): void {
  untypedAssertNotMatch(actual, expected, msg);
}

/**
 * Asserts that `actual` contains `expected` (`@std/assert`).
 *
 * @example
 * ```ts
 * import { assertStringIncludes } from "./std.ts";
 * assertStringIncludes("address already in use", "in use");
 * ```
 */
export function assertStringIncludes(
  actual: string,
  expected: string,
  msg?: string,
): void {
  untypedAssertStringIncludes(actual, expected, msg);
}

/** A class of error, for {@linkcode assertThrows} and {@linkcode assertRejects}. */
export type ErrorClass<E extends Error> = new (...args: never[]) => E;

/**
 * Asserts that `fn` throws an error of class `errorClass` whose message
 * contains `msgIncludes` (`@std/assert`). Returns the error.
 *
 * @example
 * ```ts
 * import { assertThrows } from "./std.ts";
 * assertThrows(() => JSON.parse("{"), SyntaxError);
 * ```
 */
export function assertThrows<E extends Error>(
  fn: () => unknown,
  errorClass: ErrorClass<E>,
  msgIncludes?: string,
): E {
  return untypedAssertThrows(fn, errorClass, msgIncludes);
}

/**
 * Asserts that `fn` rejects with an error of class `errorClass` whose
 * message contains `msgIncludes` (`@std/assert`). Resolves to the error.
 *
 * @example
 * ```ts
 * import { assertRejects } from "./std.ts";
 * await assertRejects(() => Promise.reject(new TypeError("x")), TypeError);
 * ```
 */
export function assertRejects<E extends Error>(
  fn: () => PromiseLike<unknown>,
  errorClass: ErrorClass<E>,
  msgIncludes?: string,
): Promise<E> {
  return untypedAssertRejects(fn, errorClass, msgIncludes);
}
