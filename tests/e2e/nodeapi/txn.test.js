"use strict";
const assert = require("node:assert/strict");
const { agentNode, client, test } = require("./support");

const consul = client();
const b64 = (text) => Buffer.from(text).toString("base64");

test("transaction of KV and catalog operations", async () => {
  const result = await consul.transaction.create([
    { KV: { Verb: "set", Key: "node-txn/a", Value: b64("one") } },
    { KV: { Verb: "set", Key: "node-txn/b", Value: b64("two"), Flags: 3 } },
    { KV: { Verb: "get", Key: "node-txn/a" } },
    { Node: { Verb: "get", Node: { Node: agentNode() } } },
  ]);
  assert.equal(result.Errors, null);
  assert.equal(result.Results.length, 4);
  assert.equal(result.Results[0].KV.Key, "node-txn/a");
  assert.equal(result.Results[0].KV.Value, null);
  assert.equal(Buffer.from(result.Results[2].KV.Value, "base64").toString(), "one");
  assert.equal(result.Results[3].Node.Node, agentNode());
  assert.equal((await consul.kv.get("node-txn/b")).Flags, 3);

  const index = result.Results[1].KV.ModifyIndex;
  const done = await consul.transaction.create([
    { KV: { Verb: "cas", Key: "node-txn/b", Value: b64("2"), Index: index } },
    { KV: { Verb: "delete-tree", Key: "node-txn/a" } },
  ]);
  assert.equal(done.Errors, null);
  assert.deepEqual(await consul.kv.keys("node-txn/"), ["node-txn/b"]);
  assert.equal((await consul.kv.get("node-txn/b")).Value, "2");
});

test("transaction that fails rolls back and names the failing operation", async () => {
  await assert.rejects(
    consul.transaction.create([
      { KV: { Verb: "set", Key: "node-txn-rollback", Value: b64("x") } },
      { KV: { Verb: "cas", Key: "node-txn/b", Value: b64("3"), Index: 1 } },
    ]),
    (err) => {
      assert.equal(err.statusCode, 409);
      const body = err.response.body;
      assert.equal(body.Results, null);
      assert.equal(body.Errors.length, 1);
      assert.equal(body.Errors[0].OpIndex, 1);
      assert.match(body.Errors[0].What, /failed to set key "node-txn\/b", index is stale/);
      return true;
    },
  );
  assert.equal(await consul.kv.get("node-txn-rollback"), undefined);
  await consul.kv.del({ key: "node-txn/", recurse: true });
});
