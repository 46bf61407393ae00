"use strict";
const assert = require("node:assert/strict");
const { agentNode, client, test } = require("./support");

const consul = client();

test("health service with passing, checks and state", async () => {
  await consul.agent.service.register({
    name: "node-health-web",
    id: "node-health-web-1",
    port: 8080,
    tags: ["v1"],
    check: { ttl: "30s", notes: "fed by the test" },
  });
  await consul.agent.service.register({
    name: "node-health-web",
    id: "node-health-web-2",
    port: 8081,
    check: { ttl: "30s", status: "passing" },
  });
  try {
    const all = await consul.health.service("node-health-web");
    assert.deepEqual(all.map((e) => e.Service.ID).sort(), ["node-health-web-1", "node-health-web-2"]);
    const first = all.find((e) => e.Service.ID === "node-health-web-1");
    assert.equal(first.Node.Node, agentNode());
    assert.deepEqual(first.Checks.map((c) => c.CheckID).sort(), ["serfHealth", "service:node-health-web-1"]);

    const passing = await consul.health.service({ service: "node-health-web", passing: true });
    assert.deepEqual(
      passing.map((e) => e.Service.Port),
      [8081],
    );
    const tagged = await consul.health.service({ service: "node-health-web", tag: "v1" });
    assert.deepEqual(
      tagged.map((e) => e.Service.ID),
      ["node-health-web-1"],
    );

    const checks = await consul.health.checks("node-health-web");
    const byId = Object.fromEntries(checks.map((c) => [c.CheckID, c]));
    assert.equal(byId["service:node-health-web-1"].Status, "critical");
    assert.equal(byId["service:node-health-web-1"].Notes, "fed by the test");
    assert.equal(byId["service:node-health-web-1"].ServiceName, "node-health-web");
    assert.equal(byId["service:node-health-web-2"].Status, "passing");

    const critical = await consul.health.state("critical");
    assert.ok(critical.some((c) => c.CheckID === "service:node-health-web-1"));
    assert.ok(!critical.some((c) => c.CheckID === "service:node-health-web-2"));
    const any = await consul.health.state("any");
    assert.ok(any.some((c) => c.CheckID === "serfHealth"));
    const mine = await consul.health.node(agentNode());
    assert.ok(mine.some((c) => c.CheckID === "service:node-health-web-2"));

    await consul.agent.check.pass({ id: "service:node-health-web-1", note: "ok now" });
    const nowPassing = await consul.health.service({ service: "node-health-web", passing: true });
    assert.equal(nowPassing.length, 2);
    const output = (await consul.health.checks("node-health-web")).find(
      (c) => c.CheckID === "service:node-health-web-1",
    ).Output;
    assert.equal(output, "ok now");
  } finally {
    await consul.agent.service.deregister("node-health-web-1");
    await consul.agent.service.deregister("node-health-web-2");
  }
  assert.deepEqual(await consul.health.service("node-health-web"), []);
});

test("health service refuses a bad filter with Consul's message", async () => {
  await assert.rejects(
    consul.health.service({ service: "node-health-web", filter: "Service.Port ==" }),
    (err) =>
      err.statusCode === 400 &&
      String(err.response.body).startsWith("Failed to create boolean expression evaluator"),
  );
});
