/**
 * Chat names: which ones may be taken, and when two of them are the same.
 *
 * A name is 1–32 visible characters without spaces. Characters that show
 * nothing or change how text around them is drawn (format characters such
 * as zero-width spaces and bidi marks, invisible fillers such as U+3164 and
 * U+2800, tag characters, stacks of combining marks) are refused, so no one
 * can pass for someone else with an invisible difference.
 *
 * Two names are the same when their {@linkcode nameKey}s are: compared
 * after Unicode compatibility normalisation, with accents dropped and case
 * folded, `ALİCE`, `alice` and `Ａｌｉｃｅ` are one name. Names of the form
 * `guest-N` belong to the server, which gives them to newcomers.
 *
 * @example
 * ```ts
 * import { nameKey, nickProblem } from "./nick.ts";
 * nickProblem("alice"); // null: fine
 * nickProblem("al\u200bice"); // "no spaces, invisible or format characters"
 * nameKey("ALİCE") === nameKey("alice"); // true
 * ```
 *
 * @module
 */

/** The most characters a name may have. */
export const MAX_NICK_LENGTH = 32;

/** The prefix of the names the server gives: `guest-1`, `guest-2`, … */
export const GUEST_PREFIX = "guest-";

// Spaces, controls, format characters (zero-width, bidi, tags), unassigned,
// private use and lone surrogates, default-ignorable code points (fillers,
// variation selectors), the braille blank, and U+FFFD (invalid UTF-8).
const INVISIBLE =
  /[\p{White_Space}\p{Cc}\p{Cf}\p{Cn}\p{Co}\p{Cs}\p{Z}\p{Default_Ignorable_Code_Point}\u2800\ufffd]/u;

/** More than two combining marks in a row: a "Zalgo" stack. */
const MARK_STACK = /\p{M}{3,}/u;

/**
 * The name everyone else's is compared with: compatibility-normalised,
 * without combining marks, case-folded.
 *
 * @example
 * ```ts
 * import { nameKey } from "./nick.ts";
 * nameKey("Ａｌｉｃｅ"); // "alice"
 * nameKey("Élodie"); // "elodie"
 * ```
 */
export function nameKey(name: string): string {
  return name.normalize("NFKD").replace(/\p{M}/gu, "").normalize("NFKC")
    .toUpperCase().toLowerCase();
}

/**
 * The name the server gives to client `id`.
 *
 * @example
 * ```ts
 * import { guestName } from "./nick.ts";
 * guestName(7); // "guest-7"
 * ```
 */
export function guestName(id: number): string {
  return `${GUEST_PREFIX}${id}`;
}

/**
 * Why `name` cannot be a nickname, or `null` if it can (uniqueness is the
 * room's to check, with {@linkcode nameKey}).
 *
 * @example
 * ```ts
 * import { nickProblem } from "./nick.ts";
 * nickProblem(""); // "give one, e.g. /nick alice"
 * nickProblem("guest-5"); // "guest-N names are given by the server"
 * ```
 */
export function nickProblem(name: string): string | null {
  const length = [...name].length;
  if (length === 0) return "give one, e.g. /nick alice";
  if (length > MAX_NICK_LENGTH) {
    return `${length} characters; ${MAX_NICK_LENGTH} at most`;
  }
  if (INVISIBLE.test(name)) {
    return "no spaces, invisible or format characters";
  }
  if (/^\p{M}/u.test(name) || MARK_STACK.test(name)) {
    return "no stacks of combining marks";
  }
  if (name.startsWith("*") || name.startsWith("/")) {
    return "it may not start with * or /";
  }
  if (new RegExp(`^${GUEST_PREFIX}\\d+$`).test(nameKey(name))) {
    return `${GUEST_PREFIX}N names are given by the server`;
  }
  return null;
}
