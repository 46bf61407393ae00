// #/nodes/<name>: a node's checks, services, sessions and network coordinates, each kept
// live by its own blocking query.

import { selfNode, watch } from "../api.js";
import { h, mount } from "../dom.js";
import { badge, checkList, metaList, selfMark, tagList, worst } from "../health.js";
import { href, seg } from "../router.js";

function table(cls, headings, rows, empty) {
  if (!rows.length) return h("p", { class: "empty" }, empty);
  return h(
    "table",
    { class: `list ${cls}` },
    h("thead", null, h("tr", null, headings.map((t) => h("th", { scope: "col" }, t)))),
    h(
      "tbody",
      null,
      rows.map((cells) => h("tr", null, cells.map((cell, i) => h("td", { "data-label": headings[i] }, cell)))),
    ),
  );
}

function services(node) {
  const rows = node.Services.map((s) => [
    h("span", { class: "mono" }, s.ID),
    h("a", { href: href(`/services/${seg(s.Service)}`) }, s.Service),
    h("span", { class: "mono" }, s.Port ? `${s.Address || node.Address}:${s.Port}` : s.Address || node.Address),
    tagList(s.Tags),
  ]);
  return table("node-services", ["ID", "Service", "Address", "Tags"], rows, "No services on this node.");
}

function sessions(list) {
  const rows = list.map((s) => [
    h("span", { class: "mono" }, s.ID),
    s.Name,
    s.Behavior,
    s.TTL || "none",
    `${s.LockDelay / 1e9}s`,
    (s.NodeChecks || []).concat((s.ServiceChecks || []).map((c) => c.ID)).join(", "),
  ]);
  return table("sessions", ["ID", "Name", "Behavior", "TTL", "Lock delay", "Checks"], rows, "No sessions on this node.");
}

function coordinates(list) {
  const rows = list.map((c) => [
    c.Segment || "(default)",
    h("span", { class: "mono" }, c.Coord.Vec.map((v) => v.toFixed(4)).join(" ")),
    c.Coord.Error.toFixed(4),
    c.Coord.Adjustment.toFixed(4),
    c.Coord.Height.toExponential(2),
  ]);
  return table("coordinates", ["Segment", "Vector", "Error", "Adjustment", "Height"], rows, "No coordinates reported.");
}

export function render(container, params, ctx) {
  const stop = new AbortController();
  const name = params.name;
  const path = encodeURIComponent(name);
  const heading = h("h1", null, name);
  const facts = h("div", { class: "node-facts" });
  const sections = {
    checks: h("section", { "aria-labelledby": "node-checks" }),
    services: h("section", { "aria-labelledby": "node-services" }),
    sessions: h("section", { "aria-labelledby": "node-sessions" }),
    coordinates: h("section", { "aria-labelledby": "node-coordinates" }),
  };
  const titled = (key, title, body) => mount(sections[key], h("h2", { id: `node-${key}` }, title), body);
  ctx.setTitle(name);
  mount(
    container,
    h("p", null, h("a", { href: href("/nodes") }, "← All nodes")),
    heading,
    facts,
    Object.values(sections),
  );
  titled("checks", "Checks", h("p", { class: "empty" }, "Loading…"));
  const watching = { signal: stop.signal };
  selfNode().then((self) => {
    watch(
      `/v1/internal/ui/node/${path}`,
      {},
      (node) => {
        const checks = node.Checks || [];
        mount(heading, node.Node, node.Node === self ? selfMark() : null);
        mount(
          facts,
          h(
            "dl",
            { class: "meta" },
            h("dt", null, "Address"),
            h("dd", { class: "mono" }, node.Address),
            h("dt", null, "Health"),
            h("dd", null, badge(worst(checks.filter((c) => !c.ServiceID).map((c) => c.Status)))),
            node.ID ? [h("dt", null, "ID"), h("dd", { class: "mono" }, node.ID)] : null,
          ),
          node.Meta ? [h("h2", null, "Meta"), metaList(node.Meta)] : null,
        );
        ctx.setTitle(node.Node, checks.length);
        titled("checks", "Checks", checkList(checks));
        titled("services", "Services", services(node));
      },
      {
        ...watching,
        onError(err) {
          titled("checks", "Checks", h("p", { class: "error" }, err.status === 404 ? `No node named ${name}.` : err.message));
        },
      },
    );
  });
  watch(`/v1/session/node/${path}`, {}, (list) => titled("sessions", "Sessions", sessions(list)), watching);
  watch(`/v1/coordinate/node/${path}`, {}, (list) => titled("coordinates", "Coordinates", coordinates(list)), {
    ...watching,
    onError: () => titled("coordinates", "Coordinates", coordinates([])),
  });
  return () => stop.abort();
}
