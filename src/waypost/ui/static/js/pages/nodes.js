// #/nodes: every node with its address, health (its node-level checks), services and meta;
// this agent's own node is marked. One blocking query on /v1/internal/ui/nodes.

import { selfNode, watch } from "../api.js";
import { h, mount, plural } from "../dom.js";
import { badge, metaList, selfMark, worst } from "../health.js";
import { href, seg } from "../router.js";
import { KeyedRows, cell, gridList } from "../table.js";

function nodeStatus(node) {
  return worst(node.Checks.filter((c) => !c.ServiceID).map((c) => c.Status));
}

export function render(container, params, ctx) {
  const stop = new AbortController();
  const search = h("input", { type: "search", name: "search", placeholder: "name, address or service", autocomplete: "off" });
  const statusSelect = h(
    "select",
    { name: "status" },
    [["", "All statuses"], ["passing", "Passing"], ["warning", "Warning"], ["critical", "Critical"]].map(
      ([value, text]) => h("option", { value }, text),
    ),
  );
  const summary = h("p", { class: "summary", role: "status" }, "Loading nodes…");
  const list = gridList("nodes", [
    ["Node", "minmax(8rem, 2fr)"],
    ["Address", "minmax(7rem, 1fr)"],
    ["Health", "7rem"],
    ["Services", "minmax(8rem, 2fr)"],
    ["Meta", "minmax(8rem, 2fr)"],
  ]);
  let self = "";
  let total = 0;

  const row = (node) => {
    const mine = node.Node === self;
    const services = [...new Set(node.Services.map((s) => s.Service))];
    return h(
      "div",
      { class: mine ? "row self" : "row", role: "row", "data-name": node.Node, "data-status": nodeStatus(node) },
      cell("Node", null, h("a", { href: href(`/nodes/${seg(node.Node)}`) }, node.Node), mine ? selfMark() : null),
      cell("Address", { class: "mono" }, node.Address),
      cell("Health", null, badge(nodeStatus(node))),
      cell(
        "Services",
        { class: "node-services" },
        services.length
          ? h("ul", { class: "tags" }, services.map((s) => h("li", null, h("a", { href: href(`/services/${seg(s)}`) }, s))))
          : h("span", { class: "empty" }, "none"),
      ),
      cell("Meta", null, metaList(node.Meta)),
    );
  };
  const filter = () => {
    const [text, wanted] = [search.value.trim().toLowerCase(), statusSelect.value];
    return (node) => {
      if (wanted && nodeStatus(node) !== wanted) return false;
      if (!text) return true;
      const names = [node.Node, node.Address, ...node.Services.map((s) => s.Service)];
      return names.some((v) => v.toLowerCase().includes(text));
    };
  };
  const rows = new KeyedRows(list.body, { key: (node) => node.Node, build: row, filter });
  const counted = (shown) => {
    summary.textContent = shown === total ? plural(total, "node") : `Showing ${shown} of ${plural(total, "node")}`;
    ctx.setTitle("Nodes", total);
  };
  const refilter = () => counted(rows.refilter());
  search.addEventListener("input", refilter);
  statusSelect.addEventListener("change", refilter);

  ctx.setTitle("Nodes");
  mount(
    container,
    h("h1", null, "Nodes"),
    h(
      "div",
      { class: "toolbar", role: "search" },
      h("label", null, "Search nodes", search),
      h("label", null, "Status", statusSelect),
    ),
    summary,
    list.element,
  );
  selfNode().then((found) => {
    self = found;
    watch(
      "/v1/internal/ui/nodes",
      {},
      (nodes) => {
        total = nodes.length;
        counted(rows.update(nodes));
      },
      { signal: stop.signal, onError: (err) => (summary.textContent = err.message) },
    );
  });
  return () => stop.abort();
}
