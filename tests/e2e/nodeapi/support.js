"use strict";
// Shared by the test files: a client for the agent the pytest wrapper started
// (CONSUL_HTTP_ADDR), a per-test time limit, and one bounded polling loop.

const { test: nodeTest, after } = require("node:test");
const Consul = require("consul");

const TEST_TIMEOUT_MS = 30000;

function address() {
  const addr = process.env.CONSUL_HTTP_ADDR;
  if (!addr) throw new Error("CONSUL_HTTP_ADDR must name the agent under test");
  const [host, port] = addr.split(":");
  return { host, port: Number(port) };
}

// One client per test file; its keep-alive sockets are closed when the file ends so
// that node exits promptly.
function client() {
  const consul = new Consul(address());
  after(() => consul.destroy());
  return consul;
}

// The node name of the agent under test, from the pytest wrapper.
function agentNode() {
  return process.env.WAYPOST_TEST_NODE;
}

function test(name, fn) {
  return nodeTest(name, { timeout: TEST_TIMEOUT_MS }, fn);
}

async function waitFor(predicate, limitMs = 10000, stepMs = 100) {
  const deadline = Date.now() + limitMs;
  let last;
  while (Date.now() < deadline) {
    last = await predicate();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
  throw new Error(`condition not met within ${limitMs} ms (last: ${JSON.stringify(last)})`);
}

module.exports = { agentNode, client, test, waitFor };
