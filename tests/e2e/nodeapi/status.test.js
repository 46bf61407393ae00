"use strict";
const assert = require("node:assert/strict");
const { client, test, waitFor } = require("./support");

const consul = client();

test("status leader and peers", async () => {
  const leader = await consul.status.leader();
  assert.match(leader, /^127\.0\.0\.1:\d+$/);
  assert.deepEqual(await consul.status.peers(), [leader]);
});

test("event fire and list", async () => {
  const fired = await consul.event.fire("node-event-deploy", "v42");
  assert.equal(fired.Name, "node-event-deploy");
  assert.equal(fired.Payload, "v42");
  assert.equal(fired.Version, 1);
  const filtered = await consul.event.fire({ name: "node-event-other", payload: "x", service: "web", tag: "v1" });
  assert.equal(filtered.ServiceFilter, "web");
  assert.equal(filtered.TagFilter, "v1");
  const seen = await waitFor(async () => (await consul.event.list("node-event-deploy")).find((e) => e.ID === fired.ID));
  assert.equal(seen.Payload, "v42");
  assert.ok(seen.LTime > 0);
  assert.ok(!(await consul.event.list("node-event-deploy")).some((e) => e.Name !== "node-event-deploy"));
  const all = await consul.event.list();
  assert.ok(all.some((e) => e.ID === filtered.ID));
  const bare = await consul.event.fire("node-event-bare");
  assert.equal(bare.Payload, null);
  assert.equal(bare.NodeFilter, "");
});
