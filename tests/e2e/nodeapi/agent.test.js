"use strict";
const assert = require("node:assert/strict");
const { agentNode, client, test, waitFor } = require("./support");

const consul = client();

test("agent self and members", async () => {
  const self = await consul.agent.self();
  assert.equal(self.Config.NodeName, agentNode());
  assert.equal(self.Config.Datacenter, "dc1");
  assert.equal(self.Member.Name, agentNode());
  const members = await consul.agent.members();
  const me = members.find((m) => m.Name === agentNode());
  assert.equal(me.Status, 1);
  assert.equal(me.Tags.role, "consul");
  assert.equal(me.Tags.dc, "dc1");
  const wan = await consul.agent.members({ wan: true });
  assert.deepEqual(
    wan.map((m) => m.Name),
    [`${agentNode()}.dc1`],
  );
});

test("agent service register, list and deregister", async () => {
  await consul.agent.service.register({
    name: "node-agent-api",
    id: "node-agent-api-1",
    tags: ["blue"],
    address: "127.0.0.1",
    port: 9000,
    meta: { owner: "node" },
  });
  await consul.agent.service.register("node-agent-bare");
  try {
    const services = await consul.agent.service.list();
    const api = services["node-agent-api-1"];
    assert.equal(api.Service, "node-agent-api");
    assert.deepEqual(api.Tags, ["blue"]);
    assert.equal(api.Port, 9000);
    assert.equal(api.Address, "127.0.0.1");
    assert.deepEqual(api.Meta, { owner: "node" });
    assert.deepEqual(api.Weights, { Passing: 1, Warning: 1 });
    assert.equal(services["node-agent-bare"].Service, "node-agent-bare");
    assert.equal(services["node-agent-bare"].Port, 0);
    // Anti-entropy carries the agent's services into the catalog.
    await waitFor(async () => (await consul.catalog.service.nodes("node-agent-api")).length === 1);
  } finally {
    await consul.agent.service.deregister("node-agent-api-1");
    await consul.agent.service.deregister({ id: "node-agent-bare" });
  }
  const left = await consul.agent.service.list();
  assert.ok(!("node-agent-api-1" in left) && !("node-agent-bare" in left));
  assert.deepEqual(await consul.catalog.service.nodes("node-agent-api"), []);
});

test("agent service maintenance adds and removes its check", async () => {
  await consul.agent.service.register({ name: "node-agent-maint", port: 1 });
  try {
    await consul.agent.service.maintenance({ id: "node-agent-maint", enable: true, reason: "upgrade" });
    const check = (await consul.agent.check.list())["_service_maintenance:node-agent-maint"];
    assert.equal(check.Status, "critical");
    assert.equal(check.Notes, "upgrade");
    await consul.agent.service.maintenance({ id: "node-agent-maint", enable: false });
    assert.ok(!("_service_maintenance:node-agent-maint" in (await consul.agent.check.list())));
  } finally {
    await consul.agent.service.deregister("node-agent-maint");
  }
});

test("agent node maintenance and reload", async () => {
  await consul.agent.maintenance({ enable: true, reason: "node-agent patching" });
  try {
    const check = (await consul.agent.check.list())._node_maintenance;
    assert.deepEqual([check.Status, check.Notes], ["critical", "node-agent patching"]);
    const critical = await consul.health.state("critical");
    assert.ok(critical.some((c) => c.CheckID === "_node_maintenance" && c.Node === agentNode()));
  } finally {
    await consul.agent.maintenance({ enable: false });
  }
  assert.ok(!("_node_maintenance" in (await consul.agent.check.list())));
  await consul.agent.reload();
});

test("agent check register, pass, warn, fail and deregister", async () => {
  await consul.agent.check.register({ name: "node-agent-ttl", id: "node-agent-ttl", ttl: "30s", notes: "n" });
  try {
    let check = (await consul.agent.check.list())["node-agent-ttl"];
    assert.equal(check.Status, "critical");
    assert.equal(check.Name, "node-agent-ttl");
    assert.equal(check.Notes, "n");
    assert.equal(check.Type, "ttl");
    await consul.agent.check.pass({ id: "node-agent-ttl", note: "fine" });
    check = (await consul.agent.check.list())["node-agent-ttl"];
    assert.deepEqual([check.Status, check.Output], ["passing", "fine"]);
    await consul.agent.check.warn("node-agent-ttl");
    assert.equal((await consul.agent.check.list())["node-agent-ttl"].Status, "warning");
    await consul.agent.check.fail({ id: "node-agent-ttl", note: "down" });
    check = (await consul.agent.check.list())["node-agent-ttl"];
    assert.deepEqual([check.Status, check.Output], ["critical", "down"]);
  } finally {
    await consul.agent.check.deregister("node-agent-ttl");
  }
  assert.ok(!("node-agent-ttl" in (await consul.agent.check.list())));
});

test("agent check on a service, and a TTL that runs out", async () => {
  await consul.agent.service.register({ name: "node-agent-svc", id: "node-agent-svc" });
  try {
    await consul.agent.check.register({
      name: "svc ttl",
      id: "node-agent-svc-ttl",
      serviceid: "node-agent-svc",
      ttl: "1s",
    });
    const check = (await consul.agent.check.list())["node-agent-svc-ttl"];
    assert.equal(check.ServiceID, "node-agent-svc");
    assert.equal(check.ServiceName, "node-agent-svc");
    await consul.agent.check.pass("node-agent-svc-ttl");
    assert.equal((await consul.agent.check.list())["node-agent-svc-ttl"].Status, "passing");
    const expired = await waitFor(async () => {
      const now = (await consul.agent.check.list())["node-agent-svc-ttl"];
      return now.Status === "critical" && now;
    });
    assert.match(expired.Output, /TTL expired/);
  } finally {
    await consul.agent.service.deregister("node-agent-svc");
  }
  // A service's checks go with it.
  assert.ok(!("node-agent-svc-ttl" in (await consul.agent.check.list())));
});

test("agent refuses updates for unknown checks with Consul's message", async () => {
  await assert.rejects(
    consul.agent.check.pass("node-agent-nope"),
    (err) => err.statusCode === 404 && /Unknown check ID "node-agent-nope"/.test(String(err.response.body)),
  );
  await assert.rejects(
    consul.agent.service.deregister("node-agent-nope"),
    (err) => err.statusCode === 404 && /Unknown service ID "node-agent-nope"/.test(String(err.response.body)),
  );
});
