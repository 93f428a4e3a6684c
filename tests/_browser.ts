/**
 * Test helpers for the web chat: a headless Chromium driven by
 * `puppeteer-core` (the system's browser, never a download), and a view of
 * the chat page as a test needs it: its lines, its state, who is here.
 *
 * Where no browser can run, {@linkcode NO_BROWSER} says why, and the
 * browser tests skip with that reason printed.
 *
 * @module
 */

import type { Browser, Page } from "puppeteer-core";

/** Where Chromium is looked for (Debian's `chromium` first). */
const CHROMIUM_PATHS = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
];

/**
 * Environment variables puppeteer-core and its `ws` read while they load
 * and launch; with a narrower `--allow-env` they throw.
 */
const PUPPETEER_ENV = [
  "WS_NO_BUFFER_UTIL",
  "PUPPETEER_TEST_EXPERIMENTAL_CHROME_FEATURES",
  "PUPPETEER_DANGEROUS_NO_SANDBOX",
  "TMPDIR",
  "TMP",
  "TEMP",
  "NODE_V8_COVERAGE",
];

/** The Chromium found, or `null`. */
export const CHROMIUM: string | null = await findChromium();

/** Why the browser tests cannot run here, or `null` when they can. */
export const NO_BROWSER: string | null = await whyNoBrowser();

/** Skips a browser test with its reason printed (`ignore:` of `Deno.test`). */
export function skipBrowser(): boolean {
  if (NO_BROWSER !== null) {
    console.log(`  browser tests skipped: ${NO_BROWSER}`);
  }
  return NO_BROWSER !== null;
}

async function findChromium(): Promise<string | null> {
  for (const path of CHROMIUM_PATHS) {
    try {
      if ((await Deno.stat(path)).isFile) return path;
    } catch {
      // not there
    }
  }
  return null;
}

async function whyNoBrowser(): Promise<string | null> {
  if (CHROMIUM === null) {
    return `no Chromium at ${
      CHROMIUM_PATHS.join(", ")
    } (apt-get install chromium)`;
  }
  const denied: string[] = [];
  for (const variable of PUPPETEER_ENV) {
    const status = await Deno.permissions.query({ name: "env", variable });
    if (status.state !== "granted") denied.push(variable);
  }
  if (denied.length > 0) {
    return `puppeteer-core reads ${
      denied.join(", ")
    }: allow them with --allow-env`;
  }
  return null;
}

/**
 * Launches headless Chromium; dispose of it (`await using`) to close it.
 * Chromium's own sandbox is off (`--no-sandbox`): as root it will not
 * start otherwise, and the pages are the test's own, on loopback.
 */
export async function launchBrowser(): Promise<Browser> {
  if (CHROMIUM === null) throw new Error(NO_BROWSER ?? "no Chromium");
  const { default: puppeteer } = await import("puppeteer-core");
  return await puppeteer.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"],
    // Given explicitly: by default the child gets all of process.env, which
    // needs --allow-env for every variable.
    env: { HOME: Deno.env.get("HOME") ?? "/tmp" },
  });
}

/** A phone's viewport (an iPhone 12 to 15, in CSS pixels). */
export const PHONE = { width: 390, height: 844 } as const;

/** The chat page in a browser tab, as the tests see it. */
export class ChatPage {
  constructor(readonly page: Page) {}

  /** Opens `url` in a new tab of `browser` (phone-sized if asked). */
  static async open(
    browser: Browser,
    url: string,
    viewport: { width: number; height: number } = { width: 900, height: 640 },
  ): Promise<ChatPage> {
    const page = await browser.newPage();
    await page.setViewport({ ...viewport, deviceScaleFactor: 2 });
    await page.goto(url);
    return new ChatPage(page);
  }

  /** Every line shown, as text, oldest first. */
  lines(): Promise<string[]> {
    return this.page.$$eval(
      "#log .line",
      (items) => items.map((item) => item.textContent ?? ""),
    );
  }

  /** Waits until a line matches `pattern`; returns it. */
  async waitForLine(pattern: RegExp, ms = 10_000): Promise<string> {
    try {
      await this.page.waitForFunction(
        `[...document.querySelectorAll("#log .line")].some((item) => new RegExp(${
          JSON.stringify(pattern.source)
        }, ${JSON.stringify(pattern.flags)}).test(item.textContent))`,
        { polling: "mutation", timeout: ms },
      );
    } catch {
      throw new Error(
        `no line matched ${pattern} within ${ms} ms; the page shows:\n${
          (await this.lines()).join("\n")
        }`,
      );
    }
    return (await this.lines()).find((line) => pattern.test(line))!;
  }

  /** Waits until the page's connection state (`data-state`) is `state`. */
  async waitForState(state: string, ms = 10_000): Promise<void> {
    try {
      await this.page.waitForFunction(
        `document.body.dataset.state === ${JSON.stringify(state)}`,
        { polling: "mutation", timeout: ms },
      );
    } catch {
      throw new Error(
        `the page did not get to ${state} within ${ms} ms; it is ${await this
          .state()}`,
      );
    }
  }

  /** The connection state: connecting, online, reconnecting, closed, left. */
  state(): Promise<string> {
    return this.page.$eval("body", (body) => body.dataset.state ?? "");
  }

  /** The state as the page words it, e.g. `reconnecting in 1 s…`. */
  stateText(): Promise<string> {
    return this.page.$eval("#state", (item) => item.textContent ?? "");
  }

  /** The name the page shows as the user's. */
  myName(): Promise<string> {
    return this.page.$eval("#me", (item) => item.textContent ?? "");
  }

  /** Who is here, as the page lists them. */
  people(): Promise<string[]> {
    return this.page.$$eval(
      "#people li",
      (items) => items.map((item) => item.textContent ?? ""),
    );
  }

  /** Types `text` in the input line and presses Enter, as a user does. */
  async send(text: string): Promise<void> {
    await this.page.type("#line", text);
    await this.page.keyboard.press("Enter");
  }

  /** What the input line holds. */
  input(): Promise<string> {
    return this.page.$eval(
      "#line",
      (item) => (item as { value?: string }).value ?? "",
    );
  }
}
