// @ts-check
/**
 * The LAN chat in a browser: one WebSocket to the server that served this
 * page (`/chat`), one text message per chat line each way (PROTOCOLS.md,
 * WebSocket). The server's rules are the same as for `nc`; this page only
 * shows the lines and keeps a list of who is here from the notices (and
 * from a `/who` of its own, not shown, when a crowd is summed up).
 *
 * Everything shown is set as text (`textContent`), never parsed as HTML:
 * whatever anyone sends, or calls themselves, is only ever text here.
 *
 * It reconnects by itself, with growing waits, when the server goes away
 * or the network drops, and asks for its name again; not after `/quit`, nor
 * when the server ended the session for a reason of its own (idle, a
 * message too big): then Enter joins again.
 */

/** How many lines the page keeps; older ones are dropped. */
const MAX_LINES = 1000;
/** The wait before each reconnect attempt, in ms; the last one repeats. */
const RETRY_MS = [500, 1000, 2000, 4000, 8000, 15000];
/**
 * Close codes after which the page reconnects by itself: the server went
 * away or restarts (1001, 1012), the connection dropped (1005, 1006), the
 * server failed or is full (1011, 1013, 1014).
 */
const RECONNECT = new Set([1001, 1005, 1006, 1011, 1012, 1013, 1014]);
/** How many name colours the style sheet has (`.c0` … `.c7`). */
const COLOURS = 8;

/**
 * The DOM as this page uses it. `deno check` checks the whole project as
 * one program, and the DOM's type library clashes there with Deno's, so
 * the few members used here are typed here.
 *
 * @typedef {{
 *   textContent: string | null,
 *   className: string,
 *   dataset: Record<string, string | undefined>,
 *   value: string,
 *   dateTime: string,
 *   scrollTop: number,
 *   readonly scrollHeight: number,
 *   readonly clientHeight: number,
 *   readonly childElementCount: number,
 *   readonly firstElementChild: Element | null,
 *   append(...nodes: (Element | string)[]): void,
 *   replaceChildren(...nodes: Element[]): void,
 *   remove(): void,
 *   focus(): void,
 *   addEventListener(type: string, listener: (event: Event) => void): void,
 * }} Element
 * @typedef {{
 *   readonly body: Element,
 *   getElementById(id: string): Element | null,
 *   createElement(tag: string): Element,
 * }} Document
 */
const { document, location } = /** @type {{
   *   document: Document,
   *   location: { protocol: string, host: string },
   * }} */
  (/** @type {unknown} */ (globalThis));

/**
 * @param {string} id
 * @returns {Element}
 */
function element(id) {
  const found = document.getElementById(id);
  if (!found) throw new Error(`the page has no #${id}`);
  return found;
}

const log = element("log");
const people = element("people");
const count = element("count");
const me = element("me");
const state = element("state");
const form = element("form");
const input = element("line");

/** @type {WebSocket | null} */
let socket = null;
/** The name the server knows us by. */
let myName = "";
/** The name the user picked, asked for again after a reconnect. */
let wanted = "";
/** Reconnect attempts since the last welcome. */
let attempt = 0;
/** @type {ReturnType<typeof setTimeout> | undefined} */
let retryTimer;
/** The user typed `/quit`: do not reconnect. */
let quitting = false;
/** `/who` replies this page asked for itself (not shown). */
let whoAsked = 0;
/** When the page last asked `/who` itself (the server allows one a second). */
let whoAt = -Infinity;
/** @type {ReturnType<typeof setTimeout> | undefined} A `/who` due later. */
let whoTimer;
/** The page asks `/who` itself at most this often. */
const WHO_EVERY_MS = 2000;
/** @type {string[]} Who is here, as far as the page knows. */
let here = [];
/** How many more are here than `here` names (a long `/who` is cut short). */
let unnamed = 0;

/**
 * @typedef {"connecting" | "online" | "reconnecting" | "closed" | "left"} State
 * @param {State} name
 * @param {string} text
 */
function setState(name, text) {
  document.body.dataset.state = name;
  state.textContent = text;
}

/** Opens the WebSocket (again). */
function connect() {
  clearTimeout(retryTimer);
  quitting = false;
  if (attempt === 0) setState("connecting", "connecting…");
  else setState("reconnecting", `reconnecting (attempt ${attempt})…`);
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${scheme}//${location.host}/chat`);
  socket = ws;
  ws.onmessage = (event) => {
    if (typeof event.data === "string") receive(event.data);
  };
  ws.onclose = (event) => closed(ws, event);
}

/**
 * @param {WebSocket} ws
 * @param {CloseEvent} event
 */
function closed(ws, event) {
  if (socket !== ws) return;
  socket = null;
  whoAsked = 0;
  clearTimeout(whoTimer);
  whoTimer = undefined;
  setPeople([], 0);
  if (quitting) {
    setState("left", "you left · press Enter to join again");
  } else if (RECONNECT.has(event.code)) {
    const base = RETRY_MS[Math.min(attempt, RETRY_MS.length - 1)];
    const wait = Math.round(base * (0.8 + 0.4 * Math.random()));
    attempt++;
    setState("reconnecting", `reconnecting in ${Math.ceil(wait / 1000)} s…`);
    retryTimer = setTimeout(connect, wait);
  } else {
    const why = event.reason ? `: ${event.reason}` : "";
    setState("closed", `disconnected${why} · press Enter to join again`);
  }
}

/**
 * One line from the server: shown, and read for names.
 * @param {string} line
 */
function receive(line) {
  const welcome = /^\* welcome (\S+?)(?: \([^)]*\))?: \d+ others? here/.exec(
    line,
  );
  if (welcome) {
    myName = welcome[1];
    me.textContent = myName;
    attempt = 0;
    setState("online", "connected");
    show(line);
    askWho();
    if (wanted && wanted !== myName) send(`/nick ${wanted}`);
    return;
  }
  const who = /^\* (\d+) here: (.*)$/.exec(line);
  if (who) {
    const names = who[2].split(", ").filter((name) => !name.startsWith("…"));
    setPeople(names, Number(who[1]) - names.length);
    if (whoAsked > 0) {
      whoAsked--;
      return;
    }
  }
  if (whoAsked > 0 && /^\* too many \/who: /.test(line)) {
    whoAsked--; // the page's own, refused: the next summary asks again
    return;
  }
  show(line);
  let match;
  if (SUMMARY.test(line)) {
    // a crowd counted, not named: only /who knows who is here now
    if (whoTimer === undefined) {
      whoTimer = setTimeout(() => {
        whoTimer = undefined;
        askWho();
      }, Math.max(0, whoAt + WHO_EVERY_MS - performance.now()));
    }
  } else if ((match = /^\* (\S+) has joined$/.exec(line))) {
    setPeople([...here, match[1]], unnamed);
  } else if ((match = /^\* (\S+) has left(?: \(.*\))?$/.exec(line))) {
    const name = match[1];
    if (here.includes(name)) {
      setPeople(here.filter((other) => other !== name), unnamed);
    } else setPeople(here, Math.max(0, unnamed - 1));
  } else if ((match = /^\* (\S+) is now (\S+)$/.exec(line))) {
    rename(match[1], match[2]);
  } else if ((match = /^\* you are now (\S+)$/.exec(line))) {
    const old = myName;
    myName = wanted = match[1];
    me.textContent = myName;
    rename(old, myName);
  }
}

/** Joins, leaves and renames summed up: `* 120 joined just now (…)`. */
const SUMMARY =
  /^\* .* just now \(too many to announce one by one; \/who lists who is here\)$/;

/** Asks `/who` for the list of who is here, its answer not shown. */
function askWho() {
  whoAt = performance.now();
  whoAsked++;
  send("/who");
}

/**
 * @param {string} old
 * @param {string} name
 */
function rename(old, name) {
  setPeople(here.map((other) => (other === old ? name : other)), unnamed);
}

/**
 * @param {string[]} names
 * @param {number} more
 */
function setPeople(names, more) {
  here = names;
  unnamed = more;
  people.replaceChildren(...names.map((name) => {
    const item = document.createElement("li");
    item.textContent = name;
    item.className = `c${colour(name)}${name === myName ? " me" : ""}`;
    return item;
  }));
  count.textContent = String(names.length + more);
}

/**
 * Adds a line to the list, as text: a notice, or `NAME: TEXT` with the
 * name in its colour.
 * @param {string} line
 * @param {boolean} [mine] the user's own message (the server does not echo it)
 */
function show(line, mine = false) {
  const item = document.createElement("li");
  const time = document.createElement("time");
  const now = new Date();
  time.dateTime = now.toISOString();
  time.textContent = now.toLocaleTimeString([], {
    hour: "numeric",
    minute: "2-digit",
  });
  const text = document.createElement("span");
  text.className = "line";
  const colon = line.indexOf(": ");
  if (line.startsWith("* ")) {
    // Columns aligned with spaces (`/help`) keep their shape in monospace.
    item.className = line.includes("  ") ? "notice aligned" : "notice";
    text.textContent = line;
  } else if (colon > 0) {
    const from = document.createElement("span");
    const name = line.slice(0, colon);
    from.className = `from c${colour(name)}`;
    from.textContent = name;
    text.append(from, line.slice(colon));
  } else {
    text.textContent = line;
  }
  if (mine) item.className = "mine";
  item.append(time, text);
  const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 48;
  log.append(item);
  while (log.childElementCount > MAX_LINES) log.firstElementChild?.remove();
  if (atBottom || mine) log.scrollTop = log.scrollHeight;
}

/**
 * A name's colour (FNV-1a of its code points), the same on every page.
 * @param {string} name
 */
function colour(name) {
  let hash = 0x811c9dc5;
  for (const char of name) {
    hash = Math.imul(hash ^ (char.codePointAt(0) ?? 0), 0x01000193);
  }
  return (hash >>> 0) % COLOURS;
}

/** @param {string} text */
function send(text) {
  if (socket?.readyState === WebSocket.OPEN) socket.send(text);
}

form.addEventListener("submit", (event) => {
  event.preventDefault();
  const text = input.value;
  if (socket === null) {
    attempt = 0;
    connect(); // Enter joins again, or retries now; the text stays
    return;
  }
  if (socket.readyState !== WebSocket.OPEN) return;
  input.value = "";
  if (text.trim() === "") return; // blank: nothing to send (the server would drop it)
  if (/^\/quit(?:\s|$)/.test(text)) quitting = true;
  send(text);
  if (!text.startsWith("/")) show(`${myName}: ${text}`, true);
  else if (text.startsWith("//")) show(`${myName}: ${text.slice(1)}`, true);
});

// Back on the network: try now rather than at the end of the wait.
globalThis.addEventListener("online", () => {
  if (document.body.dataset.state === "reconnecting" && socket === null) {
    connect();
  }
});

connect();
input.focus();

export {};
