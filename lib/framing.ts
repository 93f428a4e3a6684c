/**
 * The framings by name, as `--framing` spells them: how to encode a
 * message, how to make a decoder, and how to recognise a peer that speaks
 * the other one.
 *
 * - **line**: UTF-8 text ending in `\n` (see `line_decoder.ts`).
 * - **length**: a 4-byte big-endian length, then the message (see
 *   `length_decoder.ts`).
 *
 * @example
 * ```ts
 * import { FRAMINGS } from "./framing.ts";
 * const framing = FRAMINGS["length"];
 * const decoder = framing.decoder(1024);
 * decoder.push(framing.encode("hello")).length; // 1
 * ```
 *
 * @module
 */

import { type Decoder, FramingError, type RunsOption } from "./decoder.ts";
import { encodeFrame, encodeLine } from "./encoders.ts";
import { LengthDecoder } from "./length_decoder.ts";
import { LineDecoder } from "./line_decoder.ts";

/** The framings by name, as `--framing` spells them. */
export type FramingName = "line" | "length";

/** A framing: how to encode a message and how to make a decoder. */
export interface Framing {
  /** Its `--framing` name. */
  readonly name: FramingName;
  /** One message (text) to the bytes on the wire. */
  encode(text: string): Uint8Array;
  /** A new decoder bounded at `maxLength` bytes per message. */
  decoder(maxLength?: number, options?: RunsOption): Decoder;
}

/**
 * Both framings, by name.
 *
 * @example
 * ```ts
 * import { FRAMINGS } from "./framing.ts";
 * new TextDecoder().decode(FRAMINGS.line.encode("hi")); // "hi\n"
 * ```
 */
export const FRAMINGS: Readonly<Record<FramingName, Framing>> = {
  line: {
    name: "line",
    encode: encodeLine,
    decoder: (maxLength, options) => new LineDecoder({ maxLength, ...options }),
  },
  length: {
    name: "length",
    encode: encodeFrame,
    decoder: (maxLength, options) =>
      new LengthDecoder({ maxLength, ...options }),
  },
};

/**
 * Whether the first bytes from a peer that should speak `expected` look
 * like the other framing instead; returns that framing's name, or `null`.
 * A length prefix of any message under 16 MiB starts with a NUL byte, which
 * text never does; text starts with printable characters, which as a
 * length prefix would announce a message of over a gigabyte.
 *
 * @example
 * ```ts
 * import { otherFraming } from "./framing.ts";
 * otherFraming("line", Uint8Array.of(0, 0, 0, 5)); // "length"
 * otherFraming("length", new TextEncoder().encode("hello")); // "line"
 * otherFraming("line", new TextEncoder().encode("hello")); // null
 * ```
 */
export function otherFraming(
  expected: FramingName,
  first: Uint8Array,
): FramingName | null {
  if (first.length === 0) return null;
  if (expected === "line") return first[0] === 0 ? "length" : null;
  const head = first.subarray(0, Math.min(first.length, 4));
  return head.every((b) => b >= 0x20 && b < 0x7f) ? "line" : null;
}

/**
 * Whether `first`, the first bytes a plain peer received, are a TLS record
 * (a handshake, `16 03 00`–`16 03 04`, or an alert, `15 03 …`): a client
 * started with `--tls`, or a TLS server's answer to a plain client.
 *
 * @example
 * ```ts
 * import { looksLikeTls } from "./framing.ts";
 * looksLikeTls(Uint8Array.of(0x16, 0x03, 0x01, 0x02, 0x00)); // true
 * looksLikeTls(new TextEncoder().encode("hello\n")); // false
 * ```
 */
export function looksLikeTls(first: Uint8Array): boolean {
  return first.length >= 3 && (first[0] === 0x16 || first[0] === 0x15) &&
    first[1] === 0x03 && first[2] <= 0x04;
}

/**
 * Wraps a server's decoder so that a client speaking the other framing is
 * told so from its first bytes, instead of getting a puzzling error (a
 * line server sees NUL bytes; a length server sees a "length" of text; a
 * plain server sees a TLS handshake).
 *
 * @example
 * ```ts
 * import { FRAMINGS, guardFraming } from "./framing.ts";
 * const decoder = guardFraming(FRAMINGS.length.decoder(1024), "length");
 * try {
 *   decoder.push(new TextEncoder().encode("hello\n"));
 * } catch (error) {
 *   (error as Error).message; // "this server uses length-prefixed framing ... --framing line?"
 * }
 * ```
 */
export function guardFraming(inner: Decoder, framing: FramingName): Decoder {
  let first = true;
  return {
    get buffered() {
      return inner.buffered;
    },
    push(chunk) {
      if (!first || chunk.length === 0) return inner.push(chunk);
      first = false;
      if (looksLikeTls(chunk)) {
        throw new FramingError(
          "this server speaks plain TCP but got a TLS handshake: is the " +
            "client using --tls?",
        );
      }
      const other = otherFraming(framing, chunk);
      if (other === "length") {
        throw new FramingError(
          "this server uses line framing with text ending in \\n, but got " +
            "binary data: is the client using --framing length?",
        );
      }
      try {
        return inner.push(chunk);
      } catch (error) {
        if (error instanceof FramingError && other === "line") {
          const text = new TextDecoder().decode(chunk.subarray(0, 4));
          throw new FramingError(
            "this server uses length-prefixed framing with a 4-byte " +
              `big-endian length before each message, but got text ` +
              `"${text}…": is the client using --framing line?`,
          );
        }
        throw error;
      }
    },
    end: () => inner.end(),
    room: () => inner.room(),
    clear: () => inner.clear(),
  };
}
