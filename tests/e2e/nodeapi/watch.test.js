"use strict";
const assert = require("node:assert/strict");
const { client, test, waitFor } = require("./support");

const consul = client();

// Starts a watch and records what it reports; the caller ends it.
function record(options) {
  const seen = { changes: [], errors: [] };
  const watch = consul.watch({ ...options, maxAttempts: 3 });
  watch.on("change", (data, res) => seen.changes.push({ data, index: res.headers["x-consul-index"] }));
  watch.on("error", (err) => seen.errors.push(err));
  return { watch, seen };
}

test("watch sees a KV change through blocking queries", async () => {
  await consul.kv.set("node-watch/key", "before");
  const { watch, seen } = record({ method: consul.kv.get, options: { key: "node-watch/key", wait: "10s" } });
  try {
    await waitFor(() => seen.changes.length === 1);
    assert.equal(seen.changes[0].data.Value, "before");
    await consul.kv.set("node-watch/key", "after");
    await waitFor(() => seen.changes.length >= 2);
    const last = seen.changes.at(-1);
    assert.equal(last.data.Value, "after");
    assert.ok(BigInt(last.index) > BigInt(seen.changes[0].index));
    assert.deepEqual(seen.errors, []);
  } finally {
    watch.end();
    await consul.kv.del({ key: "node-watch/", recurse: true });
  }
});

test("watch sees a service become healthy", async () => {
  const { watch, seen } = record({
    method: consul.health.service,
    options: { service: "node-watch-svc", passing: true, wait: "10s" },
  });
  try {
    await waitFor(() => seen.changes.length === 1);
    assert.deepEqual(seen.changes[0].data, []);
    await consul.agent.service.register({ name: "node-watch-svc", port: 7000, check: { ttl: "30s" } });
    await consul.agent.check.pass("service:node-watch-svc");
    const healthy = await waitFor(() => seen.changes.find((c) => c.data.length === 1));
    assert.equal(healthy.data[0].Service.Port, 7000);
    assert.deepEqual(seen.errors, []);
  } finally {
    watch.end();
    await consul.agent.service.deregister("node-watch-svc");
  }
});
