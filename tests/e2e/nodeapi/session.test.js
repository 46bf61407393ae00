"use strict";
const assert = require("node:assert/strict");
const { agentNode, client, test } = require("./support");

const consul = client();

test("session create, info, list, renew and destroy", async () => {
  const { ID: id } = await consul.session.create({
    name: "node-session",
    ttl: "30s",
    behavior: "delete",
    lockdelay: "5s",
  });
  assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
  try {
    const info = await consul.session.info(id);
    assert.equal(info.ID, id);
    assert.equal(info.Name, "node-session");
    assert.equal(info.Node, agentNode());
    assert.equal(info.Behavior, "delete");
    assert.equal(info.TTL, "30s");
    assert.equal(info.LockDelay, 5e9);
    assert.deepEqual(info.NodeChecks, ["serfHealth"]);
    assert.deepEqual(await consul.session.get({ id }), info);

    assert.ok((await consul.session.list()).some((s) => s.ID === id));
    assert.ok((await consul.session.node(agentNode())).some((s) => s.ID === id));

    const renewed = await consul.session.renew(id);
    assert.equal(renewed.length, 1);
    assert.equal(renewed[0].ID, id);
    assert.equal(renewed[0].TTL, "30s");
  } finally {
    await consul.session.destroy(id);
  }
  assert.equal(await consul.session.info(id), undefined);
  assert.ok(!(await consul.session.list()).some((s) => s.ID === id));
});

test("session delete behavior removes the keys it held", async () => {
  const { ID: id } = await consul.session.create({ behavior: "delete", lockdelay: "0s" });
  assert.equal(await consul.kv.set({ key: "node-session-held", value: "v", acquire: id }), true);
  await consul.session.destroy(id);
  assert.equal(await consul.kv.get("node-session-held"), undefined);
});

test("session renew of an unknown session is a 404", async () => {
  await assert.rejects(
    consul.session.renew("00000000-0000-0000-0000-000000000000"),
    (err) => err.statusCode === 404 && /Session id '00000000-0000-0000-0000-000000000000' not found/.test(String(err.response.body)),
  );
});

test("session create refuses a TTL out of range with Consul's message", async () => {
  await assert.rejects(
    consul.session.create({ ttl: "1s" }),
    (err) => err.statusCode === 400 && /Invalid Session TTL '1s', must be between \[10s=24h0m0s\]/.test(String(err.response.body)),
  );
});
