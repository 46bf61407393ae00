"use strict";
// Every ACL call of the npm package, against an agent with ACLs on, default deny and no
// management token yet: bootstrap (once), replication status, and the legacy calls, which
// Consul removed in 1.11 and so answer 404 as Consul does.
const assert = require("node:assert/strict");
const { client, test } = require("./support");

const consul = client();

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
let management;

test("acl bootstrap once, then refused with the reset index", async () => {
  await assert.rejects(
    consul.kv.set("node-acl/key", "v"),
    (err) => err.statusCode === 403 && /Permission denied/.test(String(err.response.body)),
  );
  const token = await consul.acl.bootstrap();
  assert.match(token.AccessorID, UUID);
  assert.match(token.SecretID, UUID);
  assert.equal(token.Description, "Bootstrap Token (Global Management)");
  assert.deepEqual(
    token.Policies.map((p) => p.Name),
    ["global-management"],
  );
  management = token.SecretID;
  assert.equal(await consul.kv.set({ key: "node-acl/key", value: "v", token: management }), true);
  await assert.rejects(
    consul.acl.bootstrap(),
    (err) =>
      err.statusCode === 403 &&
      /^Permission denied: ACL bootstrap no longer allowed \(reset index: \d+\)$/.test(String(err.response.body)),
  );
});

test("acl replication status needs no token", async () => {
  const status = await consul.acl.replication();
  assert.equal(status.Enabled, false);
  assert.equal(status.Running, false);
  assert.equal(status.SourceDatacenter, "");
  assert.equal(status.ReplicatedIndex, 0);
  assert.equal(status.LastSuccess, "0001-01-01T00:00:00Z");
  assert.deepEqual(await consul.acl.replication({ dc: "dc1" }), status);
});

test("acl legacy calls answer 404, as Consul since 1.11", async () => {
  const token = management || "anonymous";
  const calls = [
    () => consul.acl.legacy.create({ name: "legacy", type: "client", rules: "", token }),
    () => consul.acl.legacy.update({ id: "00000000-0000-0000-0000-000000000002", name: "x", token }),
    () => consul.acl.legacy.destroy({ id: "00000000-0000-0000-0000-000000000002", token }),
    () => consul.acl.legacy.info({ id: "00000000-0000-0000-0000-000000000002", token }),
    () => consul.acl.legacy.clone({ id: "00000000-0000-0000-0000-000000000002", token }),
    () => consul.acl.legacy.list({ token }),
  ];
  for (const call of calls) {
    await assert.rejects(call(), (err) => err.statusCode === 404);
  }
});
