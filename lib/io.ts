/**
 * Byte I/O on a connection: the loops every program here needs.
 *
 * `conn.write(bytes)` may send fewer bytes than asked (the kernel's send
 * buffer was full) and says how many it took; {@linkcode writeAll} loops
 * until every byte is written. Awaiting it is the backpressure: a writer
 * never runs ahead of what the peer reads.
 *
 * @example
 * ```ts
 * import { writeAll } from "./io.ts";
 * await writeAll(Deno.stdout, new TextEncoder().encode("hello\n"));
 * ```
 *
 * @module
 */

import { deadline } from "./std.ts";

/** Something bytes can be written to: a `Deno.Conn`, `Deno.stdout`, … */
export interface Writer {
  /** Writes some of `p`; resolves to how many bytes were taken. */
  write(p: Uint8Array): Promise<number>;
}

/** Something that can be closed: a connection, a listener, a file. */
export interface Closer {
  /** Releases the resource. */
  close(): void;
}

/** The read buffer size of the loops here: 64 KiB, one large TCP read. */
export const READ_BUFFER_SIZE = 64 * 1024;

/** Where a server's per-connection read buffer starts: 512 bytes. */
export const FIRST_READ_BUFFER_SIZE = 512;

/**
 * A server's read buffer sizing: start small, and grow (×4, up to
 * {@linkcode READ_BUFFER_SIZE}) when a read fills the buffer. A pending
 * read holds its buffer, so thousands of idle connections hold 512 bytes
 * each (a chat line usually fits), while a busy one reads 64 KiB at a time
 * after four full reads.
 *
 * @example
 * ```ts ignore
 * import { FIRST_READ_BUFFER_SIZE, grownBuffer } from "./io.ts";
 * let buffer = new Uint8Array(FIRST_READ_BUFFER_SIZE);
 * for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
 *   handle(buffer.subarray(0, n));
 *   buffer = grownBuffer(buffer, n);
 * }
 * ```
 */
export function grownBuffer(
  buffer: Uint8Array<ArrayBuffer>,
  filled: number,
): Uint8Array<ArrayBuffer> {
  if (filled !== buffer.length || buffer.length >= READ_BUFFER_SIZE) {
    return buffer;
  }
  return newBuffer(Math.min(buffer.length * 4, READ_BUFFER_SIZE));
}

/** From this size up, {@linkcode newBuffer} maps memory of the buffer's own. */
export const MAPPED_BUFFER_SIZE = 32 * 1024;

/**
 * A new zeroed buffer of `size` bytes. From 32 KiB up it is memory of its
 * own (a resizable `ArrayBuffer`, which V8 maps from the system), given back
 * whole when freed; in the C allocator's heap, thousands of such buffers
 * freed around smaller live blocks leave holes it never gives back.
 *
 * @example
 * ```ts
 * import { newBuffer } from "./io.ts";
 * newBuffer(65536).buffer.resizable; // true: mapped for it alone
 * newBuffer(512).buffer.resizable; // false
 * ```
 */
export function newBuffer(size: number): Uint8Array<ArrayBuffer> {
  return size < MAPPED_BUFFER_SIZE
    ? new Uint8Array(size)
    : new Uint8Array(new ArrayBuffer(size, { maxByteLength: size }));
}

/**
 * Gives a buffer's memory back now, not at the next garbage collection,
 * which may be minutes away in a thread that allocates for thousands of
 * clients: detaches it (`transfer(0)`), so every view of it is empty after.
 * Only for a buffer nothing uses any more.
 *
 * @example
 * ```ts
 * import { freeBuffer } from "./io.ts";
 * const old = new Uint8Array(65536);
 * freeBuffer(old);
 * old.length; // 0
 * ```
 */
export function freeBuffer(bytes: Uint8Array<ArrayBuffer>): void {
  bytes.buffer.transfer(0);
}

/**
 * A read buffer back at the first size (the same one if it is), for a
 * connection that stalled: a pending read holds its buffer, so one that
 * waits mid-message holds 512 bytes, not the 64 KiB it grew to.
 *
 * @example
 * ```ts
 * import { FIRST_READ_BUFFER_SIZE, firstReadBuffer } from "./io.ts";
 * firstReadBuffer(new Uint8Array(65536)).length === FIRST_READ_BUFFER_SIZE; // true
 * ```
 */
export function firstReadBuffer(
  buffer: Uint8Array<ArrayBuffer>,
): Uint8Array<ArrayBuffer> {
  return buffer.length === FIRST_READ_BUFFER_SIZE
    ? buffer
    : new Uint8Array(FIRST_READ_BUFFER_SIZE);
}

/**
 * Writes every byte of `data`, however many calls it takes.
 *
 * @example
 * ```ts
 * import { writeAll } from "./io.ts";
 * await writeAll(Deno.stdout, new TextEncoder().encode("done\n"));
 * ```
 */
export async function writeAll(
  writer: Writer,
  data: Uint8Array,
): Promise<void> {
  let written = 0;
  while (written < data.length) {
    written += await writer.write(
      written === 0 ? data : data.subarray(written),
    );
  }
}

/**
 * Writes `data` as a last word before closing: gives up (resolves `false`)
 * after `timeoutMs` or on any error, since the peer may be gone or not
 * reading. Never throws.
 *
 * @example
 * ```ts ignore
 * import { tryWriteAll } from "./io.ts";
 * await tryWriteAll(conn, new TextEncoder().encode("* server shutting down\n"), 500);
 * conn.close();
 * ```
 */
export async function tryWriteAll(
  writer: Writer,
  data: Uint8Array,
  timeoutMs = 1000,
): Promise<boolean> {
  try {
    await deadline(writeAll(writer, data), timeoutMs);
    return true;
  } catch {
    return false;
  }
}

/**
 * Closes `resource`, ignoring the error for one already closed. For cleanup
 * paths, where the resource may have been closed by the other side or by a
 * concurrent task.
 *
 * @example
 * ```ts
 * import { closeQuietly } from "./io.ts";
 * const listener = Deno.listen({ port: 0 });
 * closeQuietly(listener);
 * closeQuietly(listener); // no error
 * ```
 */
export function closeQuietly(resource: Closer): void {
  try {
    resource.close();
  } catch (error) {
    if (!(error instanceof Deno.errors.BadResource)) throw error;
  }
}
