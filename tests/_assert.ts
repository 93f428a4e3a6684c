/**
 * The typed doorway to `@std/assert` for the tests: the npm build of the
 * standard library has no type declarations (see `lib/std.ts`), so each
 * assertion the tests use gets the signature of the official API here.
 *
 * @module
 */

import {
  assert as untypedAssert,
  assertEquals as untypedAssertEquals,
  assertMatch as untypedAssertMatch,
  assertNotMatch as untypedAssertNotMatch,
  assertRejects as untypedAssertRejects,
  assertStringIncludes as untypedAssertStringIncludes,
  assertThrows as untypedAssertThrows,
} from "@std/assert";

/**
 * Asserts that `actual` deeply equals `expected` (`@std/assert`).
 *
 * @example
 * ```ts
 * import { assertEquals } from "./_assert.ts";
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
 * import { assert } from "./_assert.ts";
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
 * import { assertMatch } from "./_assert.ts";
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
 * import { assertNotMatch } from "./_assert.ts";
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
 * import { assertStringIncludes } from "./_assert.ts";
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
 * import { assertThrows } from "./_assert.ts";
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
 * import { assertRejects } from "./_assert.ts";
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
