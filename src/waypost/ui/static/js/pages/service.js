// #/services/<name>: every instance with its node, address:port, tags, meta and each of
// its checks (the node's included) with status, output and notes. One blocking query on
// /v1/health/service/<name>.

import { selfNode, watch } from "../api.js";
import { h, mount, plural } from "../dom.js";
import { badge, checkList, metaList, selfMark, tagList, worst } from "../health.js";
import { href, seg } from "../router.js";

function instance(entry, self) {
  const { Node: node, Service: svc, Checks: checks } = entry;
  const address = svc.Address || node.Address;
  const mine = node.Node === self;
  return h(
    "article",
    { class: `card instance${mine ? " self" : ""}`, "data-id": svc.ID, "data-node": node.Node },
    h(
      "h3",
      null,
      h("span", { class: "mono" }, svc.ID),
      badge(worst(checks.map((c) => c.Status))),
    ),
    h(
      "dl",
      { class: "meta" },
      h("dt", null, "Node"),
      h("dd", null, h("a", { href: href(`/nodes/${seg(node.Node)}`) }, node.Node), mine ? selfMark() : null),
      h("dt", null, "Address"),
      h("dd", { class: "mono address" }, svc.Port ? `${address}:${svc.Port}` : address),
      svc.Tags?.length ? [h("dt", null, "Tags"), h("dd", null, tagList(svc.Tags))] : null,
    ),
    svc.Meta && Object.keys(svc.Meta).length ? [h("h4", null, "Meta"), metaList(svc.Meta)] : null,
    h("h4", null, "Checks"),
    checkList(checks),
  );
}

export function render(container, params, ctx) {
  const stop = new AbortController();
  const name = params.name;
  const summary = h("p", { class: "summary", role: "status" }, "Loading…");
  const list = h("div", { class: "instances" });
  ctx.setTitle(name);
  mount(
    container,
    h("p", null, h("a", { href: href("/services") }, "← All services")),
    h("h1", null, name),
    summary,
    list,
  );
  let self = "";
  let last = null;
  const draw = () => {
    if (last === null) return;
    const statuses = last.map((entry) => worst(entry.Checks.map((c) => c.Status)));
    const count = (s) => statuses.filter((x) => x === s).length;
    summary.textContent = last.length
      ? `${plural(last.length, "instance")}: ${count("passing")} passing, ${count("warning")} warning, ${count("critical")} critical`
      : "No instances of this service are registered.";
    ctx.setTitle(name, last.length);
    mount(list, last.map((entry) => instance(entry, self)));
  };
  selfNode().then((found) => {
    self = found;
    draw();
  });
  watch(
    `/v1/health/service/${encodeURIComponent(name)}`,
    {},
    (entries) => {
      last = entries;
      draw();
    },
    { signal: stop.signal, onError: (err) => (summary.textContent = err.message) },
  );
  return () => stop.abort();
}
