/**
 * Graceful shutdown on Ctrl+C (SIGINT) and SIGTERM: a server closes its
 * listener and its clients, says goodbye, and exits 0 instead of dying
 * mid-write.
 *
 * @example
 * ```ts ignore
 * import { onShutdown } from "./shutdown.ts";
 *
 * const listener = Deno.listen({ port: 5000 });
 * onShutdown((signal) => {
 *   console.log(`${signal}: closing`);
 *   listener.close(); // ends the accept loop
 * });
 * for await (const conn of listener) conn.close();
 * ```
 *
 * @module
 */

/** The signals that ask a server to stop. SIGTERM does not exist on Windows. */
export const SHUTDOWN_SIGNALS: readonly Deno.Signal[] =
  Deno.build.os === "windows" ? ["SIGINT", "SIGBREAK"] : ["SIGINT", "SIGTERM"];

/**
 * How soon a repeated signal counts as the same one delivered twice. Ctrl+C
 * reaches a program run by `deno task` (or npm) twice within a millisecond:
 * from the terminal, and forwarded by the task runner.
 */
export const REPEAT_WINDOW_MS = 250;

/**
 * Calls `handler` once, on the first shutdown signal. A second signal while
 * it runs exits at once with code 130, for a user who insists; one within
 * {@linkcode REPEAT_WINDOW_MS} of the first is taken for the same key press.
 * Returns a function that removes the listeners.
 *
 * @example
 * ```ts ignore
 * import { onShutdown } from "./shutdown.ts";
 * const stop = onShutdown(() => console.log("bye"));
 * stop(); // no longer listening for signals
 * ```
 */
export function onShutdown(
  handler: (signal: Deno.Signal) => void | Promise<void>,
): () => void {
  let first: number | undefined = undefined;
  const listeners = SHUTDOWN_SIGNALS.map((signal) => {
    const listener = (): void => {
      if (first === undefined) {
        first = performance.now();
        void handler(signal);
      } else if (performance.now() - first >= REPEAT_WINDOW_MS) {
        Deno.exit(130);
      }
    };
    Deno.addSignalListener(signal, listener);
    return [signal, listener] as const;
  });
  return () => {
    for (const [signal, listener] of listeners) {
      Deno.removeSignalListener(signal, listener);
    }
  };
}
