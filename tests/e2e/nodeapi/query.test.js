"use strict";
const assert = require("node:assert/strict");
const { agentNode, client, test } = require("./support");

const consul = client();

test("prepared query create, get, list, execute, explain, update and destroy", async () => {
  await consul.agent.service.register({ name: "node-pq", address: "127.0.0.41", port: 9000, tags: ["a"] });
  const { ID: id } = await consul.query.create({
    name: "node-pq-q",
    near: "_agent",
    service: { service: "node-pq", tags: ["a"], onlypassing: true, failover: { nearestn: 1 } },
    dns: { ttl: "5s" },
  });
  try {
    const stored = await consul.query.get(id);
    assert.equal(stored.Name, "node-pq-q");
    assert.deepEqual(stored.Service.Tags, ["a"]);
    assert.equal(stored.Service.Failover.NearestN, 1);
    assert.equal(stored.DNS.TTL, "5s");
    assert.ok((await consul.query.list()).some((q) => q.ID === id));

    const answer = await consul.query.execute({ query: "node-pq-q", near: "_agent" });
    assert.equal(answer.Service, "node-pq");
    assert.equal(answer.Datacenter, "dc1");
    assert.equal(answer.Failovers, 0);
    assert.deepEqual(
      answer.Nodes.map((n) => [n.Node.Node, n.Service.Address]),
      [[agentNode(), "127.0.0.41"]],
    );
    // query.explain is left out: this client reads the first item of a list, while
    // Consul (and waypost) answer explain with one object.

    await consul.query.update({ query: id, name: "node-pq-q", service: { service: "node-pq", tags: ["b"] } });
    assert.deepEqual((await consul.query.execute(id)).Nodes, []);
  } finally {
    await consul.query.destroy(id);
  }
  assert.ok(!(await consul.query.list()).some((q) => q.ID === id));
  await assert.rejects(consul.query.execute(id), (err) => err.statusCode === 404);
});

test("a query template whose regexp does not compile is refused with 400", async () => {
  await assert.rejects(
    consul.query.create({
      name: "node-geo-",
      template: { type: "name_prefix_match", regexp: "(?=x)" },
      service: { service: "${match(1)}" },
    }),
    (err) => err.statusCode === 400 && /Bad Regexp/.test(String(err.response.body)),
  );
});
