import { assertEquals } from "./_assert.ts";
import { Roster } from "../lib/roster.ts";

Deno.test("Roster: join gives how many others are here, and logs where from", () => {
  const lines: string[] = [];
  const roster = new Roster({ log: (line) => lines.push(line) });
  assertEquals(
    roster.join({ id: 1, name: "guest-1", peer: "10.0.0.5:41000" }),
    0,
  );
  assertEquals(
    roster.join({
      id: 2,
      name: "guest-2",
      peer: "10.0.0.6:41000",
      where: "worker 2",
    }),
    1,
  );
  assertEquals(lines, [
    "guest-1 joined from 10.0.0.5:41000",
    "guest-2 joined from 10.0.0.6:41000 (worker 2)",
  ]);
  assertEquals(roster.size, 2);
});

Deno.test("Roster: a name is unique by key, the server's guest names included", () => {
  const roster = new Roster();
  roster.join({ id: 1, name: "guest-1", peer: "a" });
  roster.join({ id: 2, name: "guest-2", peer: "b" });
  assertEquals(roster.rename(2, "GUEST-1"), "taken");
  assertEquals(roster.rename(1, "Zoë"), "renamed");
  assertEquals(roster.rename(2, "zoe"), "taken");
  assertEquals(roster.rename(1, "Zoë"), "unchanged");
  assertEquals(roster.rename(1, "ZOË"), "renamed"); // one's own name, other case
  assertEquals(roster.names(), ["ZOË", "guest-2"]);
});

Deno.test("Roster: a name is free again once its holder left or was renamed", () => {
  const lines: string[] = [];
  const roster = new Roster({ log: (line) => lines.push(line) });
  roster.join({ id: 1, name: "guest-1", peer: "a" });
  roster.join({ id: 2, name: "guest-2", peer: "b" });
  roster.rename(1, "alice");
  roster.rename(1, "bob");
  assertEquals(roster.rename(2, "alice"), "renamed");
  roster.leave(1, "quit: bye");
  roster.leave(1, "twice");
  assertEquals(roster.rename(2, "bob"), "renamed");
  assertEquals(roster.nameOf(2), "bob");
  assertEquals(lines.slice(2), [
    "guest-1 is now alice",
    "alice is now bob",
    "guest-2 is now alice",
    "bob left (quit: bye)",
    "alice is now bob",
  ]);
});
