"use strict";
const assert = require("node:assert/strict");
const { client, test } = require("./support");

const consul = client();
// The client turns Consul's JSON "false" into undefined (papi resolves a falsy body
// as no value), so a refused write reads as undefined, as it does against Consul.
const REFUSED = undefined;

test("kv set, get, keys and del", async () => {
  assert.equal(await consul.kv.set("node-kv/a", "1"), true);
  assert.equal(await consul.kv.set({ key: "node-kv/b/c", value: "2", flags: 42 }), true);
  const a = await consul.kv.get("node-kv/a");
  assert.equal(a.Key, "node-kv/a");
  assert.equal(a.Value, "1");
  assert.equal(a.Flags, 0);
  assert.ok(a.CreateIndex > 0 && a.ModifyIndex >= a.CreateIndex);
  assert.equal((await consul.kv.get("node-kv/b/c")).Flags, 42);
  assert.equal(await consul.kv.get({ key: "node-kv/a", raw: true }).then(String), "1");
  assert.deepEqual(await consul.kv.keys("node-kv/"), ["node-kv/a", "node-kv/b/c"]);
  assert.deepEqual(await consul.kv.keys({ key: "node-kv/", separator: "/" }), ["node-kv/a", "node-kv/b/"]);
  const all = await consul.kv.get({ key: "node-kv/", recurse: true });
  assert.deepEqual(
    all.map((item) => [item.Key, item.Value]),
    [
      ["node-kv/a", "1"],
      ["node-kv/b/c", "2"],
    ],
  );
  assert.equal(await consul.kv.del("node-kv/a"), true);
  assert.equal(await consul.kv.get("node-kv/a"), undefined);
  assert.equal(await consul.kv.del({ key: "node-kv/", recurse: true }), true);
  assert.equal(await consul.kv.get({ key: "node-kv/", recurse: true }), undefined);
});

test("kv empty values and missing keys", async () => {
  assert.equal(await consul.kv.set("node-kv-empty", ""), true);
  const empty = await consul.kv.get("node-kv-empty");
  assert.equal(empty.Value, null);
  assert.equal(await consul.kv.get("node-kv-never-written"), undefined);
  await assert.rejects(consul.kv.keys("node-kv-never-written/"), (err) => err.statusCode === 404);
  await consul.kv.del("node-kv-empty");
});

test("kv check-and-set", async () => {
  assert.equal(await consul.kv.set({ key: "node-kv-cas", value: "x", cas: 0 }), true);
  assert.equal(await consul.kv.set({ key: "node-kv-cas", value: "y", cas: 0 }), REFUSED);
  const item = await consul.kv.get("node-kv-cas");
  assert.equal(await consul.kv.set({ key: "node-kv-cas", value: "y", cas: item.ModifyIndex + 1000 }), REFUSED);
  assert.equal(await consul.kv.set({ key: "node-kv-cas", value: "y", cas: item.ModifyIndex }), true);
  assert.equal((await consul.kv.get("node-kv-cas")).Value, "y");
  assert.equal(await consul.kv.del({ key: "node-kv-cas", cas: item.ModifyIndex }), REFUSED);
  const now = await consul.kv.get("node-kv-cas");
  assert.equal(await consul.kv.del({ key: "node-kv-cas", cas: now.ModifyIndex }), true);
  assert.equal(await consul.kv.get("node-kv-cas"), undefined);
});

test("kv acquire and release with sessions", async () => {
  const first = (await consul.session.create({ name: "node-kv-lock" })).ID;
  const second = (await consul.session.create({ name: "node-kv-lock-2", lockdelay: "0s" })).ID;
  try {
    assert.equal(await consul.kv.set({ key: "node-kv-lock", value: "me", acquire: first }), true);
    const held = await consul.kv.get("node-kv-lock");
    assert.equal(held.Session, first);
    assert.equal(held.LockIndex, 1);
    assert.equal(await consul.kv.set({ key: "node-kv-lock", value: "you", acquire: second }), REFUSED);
    assert.equal(await consul.kv.set({ key: "node-kv-lock", value: "you", release: second }), REFUSED);
    assert.equal(await consul.kv.set({ key: "node-kv-lock", value: "done", release: first }), true);
    const released = await consul.kv.get("node-kv-lock");
    assert.equal(released.Session, undefined);
    assert.equal(released.Value, "done");
    assert.equal(await consul.kv.set({ key: "node-kv-lock", value: "you", acquire: second }), true);
    assert.equal((await consul.kv.get("node-kv-lock")).LockIndex, 2);
  } finally {
    await consul.session.destroy(first);
    await consul.session.destroy(second);
  }
  // Destroying the holder releases the lock (the default "release" behavior).
  assert.equal((await consul.kv.get("node-kv-lock")).Session, undefined);
  await consul.kv.del("node-kv-lock");
});

test("kv refuses an unknown session with Consul's message", async () => {
  await assert.rejects(
    consul.kv.set({ key: "node-kv-bad", value: "x", acquire: "00000000-0000-0000-0000-000000000000" }),
    (err) => err.statusCode === 500 && /invalid session/.test(err.message),
  );
});
