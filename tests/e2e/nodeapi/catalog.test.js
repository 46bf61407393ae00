"use strict";
const assert = require("node:assert/strict");
const { agentNode, client, test } = require("./support");

const consul = client();
// Consul answers an unknown node with JSON null, which the client resolves as undefined.
const NO_NODE = undefined;

test("catalog register, list and deregister an external node", async () => {
  await consul.catalog.register({
    node: "node-cat-ext",
    address: "10.1.2.3",
    nodemeta: { rack: "r1" },
    service: { id: "node-cat-db-1", service: "node-cat-db", tags: ["primary"], port: 5432, meta: { v: "15" } },
    check: { checkid: "node-cat-db-check", name: "db alive", serviceid: "node-cat-db-1", status: "passing" },
  });
  const nodes = await consul.catalog.node.list();
  const ext = nodes.find((n) => n.Node === "node-cat-ext");
  assert.equal(ext.Address, "10.1.2.3");
  assert.deepEqual(ext.Meta, { rack: "r1" });
  assert.ok(nodes.some((n) => n.Node === agentNode()));

  const services = await consul.catalog.service.list();
  assert.deepEqual(services["node-cat-db"], ["primary"]);
  assert.deepEqual(services.consul, []);

  const instances = await consul.catalog.service.nodes("node-cat-db");
  assert.equal(instances.length, 1);
  assert.equal(instances[0].Node, "node-cat-ext");
  assert.equal(instances[0].ServiceID, "node-cat-db-1");
  assert.equal(instances[0].ServicePort, 5432);
  assert.equal(instances[0].ServiceAddress, "");
  assert.deepEqual(instances[0].ServiceMeta, { v: "15" });
  assert.deepEqual(instances[0].NodeMeta, { rack: "r1" });
  assert.deepEqual(await consul.catalog.service.nodes({ service: "node-cat-db", tag: "replica" }), []);

  const onNode = await consul.catalog.node.services("node-cat-ext");
  assert.equal(onNode.Node.Node, "node-cat-ext");
  assert.deepEqual(Object.keys(onNode.Services), ["node-cat-db-1"]);
  assert.equal(onNode.Services["node-cat-db-1"].Service, "node-cat-db");

  const filtered = await consul.catalog.node.list({ filter: 'Meta.rack == "r1"' });
  assert.deepEqual(
    filtered.map((n) => n.Node),
    ["node-cat-ext"],
  );
  assert.deepEqual(await consul.catalog.datacenters(), ["dc1"]);

  await consul.catalog.deregister({ node: "node-cat-ext", serviceid: "node-cat-db-1" });
  assert.deepEqual(await consul.catalog.service.nodes("node-cat-db"), []);
  assert.equal((await consul.catalog.node.services("node-cat-ext")).Node.Node, "node-cat-ext");
  await consul.catalog.deregister("node-cat-ext");
  assert.equal(await consul.catalog.node.services("node-cat-ext"), NO_NODE);
});

test("catalog refuses the client's object-valued node tagged addresses, as Consul does", async () => {
  // The client builds service-style {Address, Port} objects; a node's are plain strings.
  await assert.rejects(
    consul.catalog.register({
      node: "node-cat-tagged",
      address: "10.1.2.4",
      taggedaddresses: { lan: { address: "10.1.2.4", port: 0 } },
    }),
    (err) => err.statusCode === 400 && /TaggedAddresses/.test(String(err.response.body)),
  );
  assert.equal(await consul.catalog.node.services("node-cat-tagged"), NO_NODE);
});
