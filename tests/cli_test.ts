import { assertEquals, assertStringIncludes, assertThrows } from "./_assert.ts";
import {
  type CliSpec,
  type FlagSpecs,
  HelpRequested,
  MAX_SECONDS,
  parseCli,
  usage,
  UsageError,
} from "../lib/cli.ts";

const FLAGS = {
  maxClients: { type: "integer", description: "stop after N clients", min: 1 },
  framing: {
    type: "string",
    description: "framing",
    choices: ["line", "length"],
    default: "line",
  },
  idleTimeout: {
    type: "number",
    description: "seconds",
    placeholder: "SECONDS",
    default: 0,
  },
  portable: { type: "boolean", description: "portable path" },
} as const satisfies FlagSpecs;

/** The spec's fields that do not depend on its flags. */
const BASE = {
  script: "sandbox/server.ts",
  summary: "chat server.",
  role: "server",
  defaultPort: 5003,
} as const;

const SPEC: CliSpec<typeof FLAGS> = { ...BASE, flags: FLAGS };

Deno.test("parseCli: defaults are 127.0.0.1, the script's port and each flag's default", () => {
  const options = parseCli([], SPEC);
  assertEquals(options.host, "127.0.0.1");
  assertEquals(options.port, 5003);
  assertEquals(options.maxClients, undefined);
  assertEquals(options.framing, "line");
  assertEquals(options.idleTimeout, 0);
  assertEquals(options.portable, false);
});

Deno.test("parseCli: reads every kind of flag, in both --flag value and --flag=value forms", () => {
  const options = parseCli(
    [
      "--host",
      "0.0.0.0",
      "--port=0",
      "--max-clients",
      "4",
      "--framing=length",
      "--idle-timeout",
      "2.5",
      "--portable",
    ],
    SPEC,
  );
  assertEquals(options, {
    host: "0.0.0.0",
    port: 0,
    maxClients: 4,
    framing: "length",
    idleTimeout: 2.5,
    portable: true,
  });
});

Deno.test("parseCli: strips brackets from an IPv6 host", () => {
  assertEquals(parseCli(["--host", "[::1]"], SPEC).host, "::1");
});

Deno.test("parseCli: --help asks for help", () => {
  assertThrows(() => parseCli(["--help"], SPEC), HelpRequested);
});

Deno.test("parseCli: -h asks for help, like --help", () => {
  assertThrows(() => parseCli(["-h"], SPEC), HelpRequested);
  assertThrows(() => parseCli(["--port", "1", "-h"], SPEC), HelpRequested);
});

const TIMED = {
  ...BASE,
  flags: { wait: { type: "seconds", description: "wait", default: 10 } },
} as const satisfies CliSpec<FlagSpecs>;

Deno.test("parseCli: a check of flags together makes a usage error of its problem", () => {
  const checked: CliSpec<typeof FLAGS> = {
    ...SPEC,
    check: (o) =>
      o.portable && o.maxClients === undefined
        ? "--portable needs --max-clients"
        : null,
  };
  assertEquals(parseCli(["--max-clients", "2"], checked).maxClients, 2);
  assertThrows(
    () => parseCli(["--portable"], checked),
    UsageError,
    "--portable needs --max-clients",
  );
});

Deno.test("parseCli: a duration takes seconds, 0 for never, up to MAX_SECONDS", () => {
  assertEquals(parseCli([], TIMED).wait, 10);
  assertEquals(parseCli(["--wait", "0"], TIMED).wait, 0);
  assertEquals(parseCli(["--wait", "0.25"], TIMED).wait, 0.25);
  assertEquals(
    parseCli(["--wait", String(MAX_SECONDS)], TIMED).wait,
    MAX_SECONDS,
  );
});

Deno.test("parseCli: a duration past MAX_SECONDS is refused (timers overflow past ~24.8 days)", () => {
  assertThrows(
    () => parseCli(["--wait", "3000000"], TIMED),
    UsageError,
    `--wait must be a number of seconds from 0 to ${MAX_SECONDS}, got "3000000"`,
  );
  assertThrows(
    () => parseCli(["--wait", "-1"], TIMED),
    UsageError,
    "--wait must be",
  );
});

Deno.test("usage: a duration says 0 means never and its upper bound", () => {
  const text = usage(TIMED);
  assertStringIncludes(text, "--wait SECONDS");
  assertStringIncludes(text, `(default: 10; at most ${MAX_SECONDS})`);
  assertStringIncludes(
    usage({ ...TIMED, flags: { wait: { ...TIMED.flags.wait, default: 0 } } }),
    "(default: 0, never;",
  );
});

Deno.test("parseCli: a client may not ask for --port 0", () => {
  const client = { ...BASE, role: "client", flags: {} } as const;
  assertThrows(
    () => parseCli(["--port", "0"], client),
    UsageError,
    '--port must be an integer from 1 to 65535, got "0"',
  );
  assertEquals(parseCli(["--port", "1"], client).port, 1);
});

Deno.test("parseCli: a boolean flag takes no value", () => {
  assertThrows(
    () => parseCli(["--portable=yes"], SPEC),
    UsageError,
    '--portable takes no value, got "yes"',
  );
});

Deno.test("parseCli: a repeated flag keeps its last value", () => {
  assertEquals(parseCli(["--port", "1", "--port", "2"], SPEC).port, 2);
});

Deno.test("parseCli: a tool has no --host or --port", () => {
  const tool = { ...BASE, role: "tool", flags: {} } as const;
  assertThrows(
    () => parseCli(["--port", "1"], tool),
    UsageError,
    "unknown option --port",
  );
  assertEquals(parseCli([], tool).port, 5003);
});

for (
  const [args, message] of [
    [
      ["--port", "70000"],
      '--port must be an integer from 0 to 65535, got "70000"',
    ],
    [["--port", "abc"], '--port must be an integer from 0 to 65535, got "abc"'],
    [["--port", "-1"], '--port must be an integer from 0 to 65535, got "-1"'],
    [["--port"], "--port needs a value"],
    [["--host", ""], "--host needs a value"],
    [
      ["--max-clients", "0"],
      '--max-clients must be an integer of at least 1, got "0"',
    ],
    [["--max-clients", "2.5"], "--max-clients must be an integer"],
    [["--framing", "xml"], '--framing must be one of line, length, got "xml"'],
    [["--idle-timeout", "soon"], "--idle-timeout must be a number"],
    [["--verbose"], "unknown option --verbose"],
    [["-v"], "unknown option -v"],
    [["--verbose=3"], "unknown option --verbose"],
    [["extra"], 'unexpected argument "extra"'],
  ] as const
) {
  Deno.test(`parseCli: ${args.join(" ")} is refused: ${message}`, () => {
    assertThrows(() => parseCli(args, SPEC), UsageError, message);
  });
}

Deno.test("usage: lists every flag with its default and an example", () => {
  const text = usage(SPEC);
  assertStringIncludes(text, "sandbox/server.ts: chat server.");
  assertStringIncludes(text, "--host HOST");
  assertStringIncludes(text, "address to listen on (default: 127.0.0.1)");
  assertStringIncludes(text, "(default: 5003)");
  assertStringIncludes(text, "--max-clients N");
  assertStringIncludes(text, "--framing line|length");
  assertStringIncludes(text, "--idle-timeout SECONDS");
  assertStringIncludes(text, "--portable");
  assertStringIncludes(text, "-h, --help");
  assertStringIncludes(text, "deno run -A sandbox/server.ts --port 5003");
});

Deno.test("usage: an integer's floor is shown where it is more than 1", () => {
  const text = usage({
    ...BASE,
    flags: {
      limit: {
        type: "integer",
        description: "bytes",
        placeholder: "BYTES",
        min: 1024,
        default: 4096,
      },
    },
  });
  assertStringIncludes(text, "bytes (default: 4096; at least 1024)");
  assertStringIncludes(usage(SPEC), "stop after N clients\n");
});

Deno.test("usage: a client's host and port say where to connect", () => {
  const text = usage({ ...BASE, role: "client", flags: {} });
  assertStringIncludes(text, "server to connect to (default: 127.0.0.1)");
});

Deno.test("parseCli: an unknown option close to a known one suggests it", () => {
  assertThrows(
    () => parseCli(["--prot", "1"], SPEC),
    UsageError,
    "unknown option --prot; did you mean --port?",
  );
  assertThrows(
    () => parseCli(["--idle-timeot", "1"], SPEC),
    UsageError,
    "did you mean --idle-timeout?",
  );
});

Deno.test("parseCli: a flag with a bare form takes a following value, and checks it", () => {
  const spec = {
    ...BASE,
    flags: {
      wire: {
        type: "string",
        description: "view",
        choices: ["text", "hex"],
        bare: "text",
      },
    },
  } as const satisfies CliSpec<FlagSpecs>;
  assertEquals(parseCli(["--wire"], spec).wire, "text");
  assertEquals(parseCli(["--wire", "hex"], spec).wire, "hex");
  assertThrows(
    () => parseCli(["--wire", "bogus"], spec),
    UsageError,
    '--wire must be one of text, hex, got "bogus"',
  );
});

const CLIENT: CliSpec<FlagSpecs> = {
  script: "sandbox/client.ts",
  summary: "chat client.",
  role: "client",
  defaultPort: 5003,
};

Deno.test("parseCli: a client takes its host and port plainly too, as nc does", () => {
  assertEquals(
    [parseCli(["192.168.1.20"], CLIENT)].map((o) => [o.host, o.port]),
    [["192.168.1.20", 5003]],
  );
  const both = parseCli(["example.org", "6000"], CLIENT);
  assertEquals([both.host, both.port], ["example.org", 6000]);
  const mixed = parseCli(["--port", "6001", "::1"], CLIENT);
  assertEquals([mixed.host, mixed.port], ["::1", 6001]);
  assertStringIncludes(usage(CLIENT), "[options] [HOST [PORT]]");
});

for (
  const [args, message] of [
    [["a", "1", "b"], 'unexpected argument "b" (a host and a port at most;'],
    [["a", "--host", "b"], "the host is given twice"],
    [["--host", "b", "a"], "the host is given twice"],
    [["a", "--port", "1", "2"], "the port is given twice"],
    [["a", "70000"], '--port must be an integer from 1 to 65535, got "70000"'],
  ] as const
) {
  Deno.test(`parseCli: client ${args.join(" ")} is refused: ${message}`, () => {
    assertThrows(() => parseCli(args, CLIENT), UsageError, message);
  });
}

Deno.test("parseCli: a server takes no plain arguments", () => {
  assertThrows(
    () => parseCli(["5000"], SPEC),
    UsageError,
    'unexpected argument "5000" (options start with --)',
  );
  assertEquals(usage(SPEC).includes("[HOST"), false);
});
