/**
 * How a chat client turns typed lines into bytes and received bytes into
 * text, for each framing: its {@linkcode ChatCodec}.
 *
 * What arrives is sanitized again before it is shown (a server we do not
 * control could send escape sequences), a client started with the other
 * framing than the server's says so instead of printing garbage, and a
 * frame cut short by the server closing is said, with the numbers.
 *
 * {@linkcode naiveCodec} is the wrong way, on purpose, for the sandbox's
 * `--naive`: it takes one read for one message, which TCP never promised.
 *
 * @example
 * ```ts ignore
 * import { chatCodec } from "./chat_client.ts";
 * import { writeAll } from "./io.ts";
 *
 * const codec = chatCodec("length");
 * await writeAll(conn, codec.encode(new TextEncoder().encode("hi\n")));
 * const n = await conn.read(buffer);
 * console.log(codec.render(buffer.subarray(0, n!)));
 * ```
 *
 * @module
 */

import { DEFAULT_MAX_MESSAGE, FramingError } from "./decoder.ts";
import { encodeFrame, encodeLine, LENGTH_PREFIX_BYTES } from "./encoders.ts";
import { type FramingName, looksLikeTls, otherFraming } from "./framing.ts";
import { LengthDecoder } from "./length_decoder.ts";
import { sanitizeText } from "./sanitize.ts";

/** Typed lines to bytes for the server, and bytes from it to text to show. */
export interface ChatCodec {
  /** A typed line (with its `\n`, if any) to bytes for the server. */
  encode(line: Uint8Array): Uint8Array;
  /** Bytes from the server to bytes to show; throws `FramingError`. */
  render(chunk: Uint8Array): Uint8Array;
  /**
   * The server closed: the bytes still to show; throws `FramingError` for
   * a message cut short.
   */
  end(): Uint8Array;
}

const textEncoder = new TextEncoder();
const NOTHING = new Uint8Array(0);

/** A typed line without its `\n` or `\r\n`, as text. */
function typedText(line: Uint8Array): string {
  let end = line.length;
  if (end > 0 && line[end - 1] === 0x0a) end--;
  if (end > 0 && line[end - 1] === 0x0d) end--;
  return new TextDecoder().decode(line.subarray(0, end));
}

/** Sanitizes text that may hold several lines, keeping the line breaks. */
function sanitizeLines(text: string): string {
  return text.split(/\r?\n/).map(sanitizeText).join("\n");
}

/**
 * Throws, with what to do, when the server's first bytes show that it
 * speaks TLS or the other framing.
 */
function checkFirstBytes(expected: FramingName, first: Uint8Array): void {
  if (looksLikeTls(first)) {
    throw new FramingError(
      "the server speaks TLS: start the client with --tls (and --fingerprint " +
        "or --ca, as the server printed)",
    );
  }
  switch (otherFraming(expected, first)) {
    case "length":
      throw new FramingError(
        "the server sent binary data: it seems to use length-prefixed framing; " +
          "start the client with --framing length",
      );
    case "line":
      throw new FramingError(
        `the server sent text ("${
          sanitizeText(new TextDecoder().decode(first.subarray(0, 20)))
        }…"): it seems to use line framing; start the client with --framing line`,
      );
  }
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
    render(chunk) {
      if (first) checkFirstBytes("line", chunk);
      first = false;
      return textEncoder.encode(
        sanitizeLines(decoder.decode(chunk, { stream: true })),
      );
    },
    end: () => textEncoder.encode(sanitizeLines(decoder.decode())),
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
    render(chunk) {
      if (first) checkFirstBytes("length", chunk);
      first = false;
      const frames = decoder.push(chunk);
      return textEncoder.encode(
        frames.map((f) => `${sanitizeLines(text.decode(f))}\n`).join(""),
      );
    },
    end() {
      try {
        decoder.end();
      } catch (error) {
        if (!(error instanceof FramingError)) throw error;
        // "got N of M": the counts the decoder reports
        const counts = error.message.match(/got \d+ of \d+/)?.[0];
        const part = /prefix/.test(error.message)
          ? " of its length prefix"
          : "";
        throw new FramingError(
          `the server closed the connection in the middle of a frame${
            counts ? `: ${counts} bytes${part}` : ` (${error.message})`
          }`,
        );
      }
      return NOTHING;
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

/**
 * The wrong way, to watch it break: each read is taken for one message.
 * Lines: a read is shown as one message (line breaks inside it as `^J`),
 * so two lines that came in one read show as one, and a line split over
 * two reads as two. Length: one frame is decoded from the start of each
 * read and the rest of the read dropped. What is sent is framed properly.
 *
 * @example
 * ```ts
 * import { naiveCodec } from "./chat_client.ts";
 * const { render } = naiveCodec("line");
 * new TextDecoder().decode(render(new TextEncoder().encode("a: hi\nb: yo\n"))); // "a: hi^Jb: yo\n"
 * ```
 */
export function naiveCodec(framing: FramingName): ChatCodec {
  const text = new TextDecoder();
  const message = (bytes: Uint8Array): Uint8Array =>
    textEncoder.encode(`${sanitizeText(text.decode(bytes))}\n`);
  if (framing === "line") {
    return {
      encode: (line) => encodeLine(typedText(line)),
      // one read, one message: only its last "\n" is taken for the line end
      render: (chunk) =>
        message(chunk.subarray(0, chunk.at(-1) === 0x0a ? -1 : undefined)),
      end: () => NOTHING,
    };
  }
  return {
    encode: (line) => encodeFrame(typedText(line)),
    // one read, one frame: its first 4 bytes are taken for the length
    render(chunk) {
      if (chunk.length < LENGTH_PREFIX_BYTES) return message(chunk);
      const size = new DataView(chunk.buffer, chunk.byteOffset).getUint32(0);
      const start = LENGTH_PREFIX_BYTES;
      return message(chunk.subarray(start, start + size));
    },
    end: () => NOTHING,
  };
}
