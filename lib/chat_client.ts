/**
 * How a chat client turns typed lines into bytes and received bytes into
 * text, for each framing: the `encode` and `render` of `runTerminal`.
 *
 * What arrives is sanitized again before it reaches the terminal (a server
 * we do not control could send escape sequences), and a client started
 * with the other framing than the server's says so, instead of printing
 * garbage.
 *
 * @example
 * ```ts ignore
 * import { chatCodec } from "./chat_client.ts";
 * import { runTerminal, stdioConsole } from "./terminal.ts";
 * await runTerminal(conn, { console: stdioConsole(), ...chatCodec("length") });
 * ```
 *
 * @module
 */

import { DEFAULT_MAX_MESSAGE, FramingError } from "./decoder.ts";
import { encodeFrame, encodeLine } from "./encoders.ts";
import { type FramingName } from "./framing.ts";
import { LengthDecoder } from "./length_decoder.ts";
import { sanitizeText } from "./sanitize.ts";

/** `encode` and `render` for `runTerminal`. */
export interface ChatCodec {
  /** A typed line (with its `\n`, if any) to bytes for the server. */
  encode: (line: Uint8Array) => Uint8Array;
  /** Bytes from the server to bytes for the terminal. */
  render: (chunk: Uint8Array) => Uint8Array;
}

const textEncoder = new TextEncoder();

/** A typed line without its `\n` or `\r\n`, as text. */
function typedText(line: Uint8Array): string {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return new TextDecoder().decode(line.subarray(0, end));
}

/** Sanitizes text that may hold several lines, keeping the line breaks. */
function sanitizeLines(text: string): string {
  return text.split("\n").map((line) => sanitizeText(line.replace(/\r$/, "")))
    .join("\n");
}

/**
 * The codec for line framing (`--framing line`, the default).
 *
 * @example
 * ```ts
 * import { lineChatCodec } from "./chat_client.ts";
 * const { encode } = lineChatCodec();
 * new TextDecoder().decode(encode(new TextEncoder().encode("hi\r\n"))); // "hi\n"
 * ```
 */
export function lineChatCodec(): ChatCodec {
  const decoder = new TextDecoder();
  let first = true;
  return {
    encode: (line) => encodeLine(typedText(line)),
    render: (chunk) => {
      if (first && chunk.length > 0 && chunk[0] === 0) {
        throw new FramingError(
          "the server sent binary data: it seems to use length-prefixed framing; " +
            "start the client with --framing length",
        );
      }
      first = false;
      return textEncoder.encode(
        sanitizeLines(decoder.decode(chunk, { stream: true })),
      );
    },
  };
}

/**
 * The codec for length-prefixed framing (`--framing length`).
 *
 * @example
 * ```ts
 * import { lengthChatCodec } from "./chat_client.ts";
 * const { encode } = lengthChatCodec();
 * encode(new TextEncoder().encode("hi\n")); // Uint8Array [0, 0, 0, 2, 104, 105]
 * ```
 */
export function lengthChatCodec(maxFrame = DEFAULT_MAX_MESSAGE): ChatCodec {
  const decoder = new LengthDecoder({ maxLength: maxFrame });
  const text = new TextDecoder();
  let first = true;
  return {
    encode: (line) => encodeFrame(typedText(line)),
    render: (chunk) => {
      let frames: Uint8Array[];
      try {
        frames = decoder.push(chunk);
      } catch (error) {
        if (
          first && /^[\x20-\x7e]{4}/.test(text.decode(chunk.subarray(0, 4)))
        ) {
          throw new FramingError(
            `the server sent text ("${
              sanitizeText(text.decode(chunk.subarray(0, 20)))
            }..."): ` +
              "it seems to use line framing; start the client with --framing line",
          );
        }
        throw error;
      }
      first = false;
      return textEncoder.encode(
        frames.map((f) => `${sanitizeLines(text.decode(f))}\n`).join(""),
      );
    },
  };
}

/**
 * The codec for a framing, by name.
 *
 * @example
 * ```ts
 * import { chatCodec } from "./chat_client.ts";
 * const codec = chatCodec("line");
 * ```
 */
export function chatCodec(
  framing: FramingName,
  maxFrame = DEFAULT_MAX_MESSAGE,
): ChatCodec {
  return framing === "line" ? lineChatCodec() : lengthChatCodec(maxFrame);
}
