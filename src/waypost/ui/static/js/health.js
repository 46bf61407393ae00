// How health looks everywhere: status badges, the summary bar, check lists. One place,
// so a "critical" reads the same on every page.

import { h } from "./dom.js";

const ORDER = ["critical", "warning", "passing", "maintenance"];
const LABELS = { passing: "passing", warning: "warning", critical: "critical", none: "no checks" };

// The worst of some check statuses (critical before warning before passing); "none" for none.
export function worst(statuses) {
  let found = "none";
  for (const status of statuses) {
    if (found === "none" || ORDER.indexOf(status) < ORDER.indexOf(found)) found = status;
  }
  return found;
}

export function badge(status) {
  return h("span", { class: `status status-${status}` }, LABELS[status] || status);
}

const BAR = h("div", { class: "health" }, h("div", { class: "healthbar", role: "img" }), h("span", { class: "counts" }));

// A bar split by passing, warning and critical counts, with the counts as text beside it.
// One element painted by a gradient, cloned from a template: lists draw thousands.
export function healthBar(passing, warning, critical) {
  const total = passing + warning + critical;
  const text = total ? `${passing} passing, ${warning} warning, ${critical} critical` : "no checks";
  const el = BAR.cloneNode(true);
  const [bar, counts] = el.children;
  bar.setAttribute("aria-label", text);
  if (total) {
    bar.style.setProperty("--upto-passing", `${(100 * passing) / total}%`);
    bar.style.setProperty("--upto-warning", `${(100 * (passing + warning)) / total}%`);
  }
  counts.textContent = text;
  return el;
}

// Every check with its status, output and notes, worst first.
export function checkList(checks) {
  if (!checks.length) return h("p", { class: "empty" }, "No health checks.");
  const sorted = [...checks].sort(
    (a, b) => ORDER.indexOf(a.Status) - ORDER.indexOf(b.Status) || a.CheckID.localeCompare(b.CheckID),
  );
  return h(
    "ul",
    { class: "checks" },
    sorted.map((check) =>
      h(
        "li",
        { class: check.Status, "data-check": check.CheckID },
        h("div", null, h("strong", null, check.Name || check.CheckID), " ", badge(check.Status)),
        h(
          "dl",
          { class: "meta" },
          h("dt", null, "Check ID"),
          h("dd", { class: "mono" }, check.CheckID),
          check.Type ? [h("dt", null, "Type"), h("dd", null, check.Type)] : null,
          check.Notes ? [h("dt", null, "Notes"), h("dd", { class: "notes" }, check.Notes)] : null,
        ),
        check.Output ? h("pre", { class: "output" }, check.Output) : null,
      ),
    ),
  );
}

export function tagList(tags) {
  return tags?.length ? h("ul", { class: "tags" }, tags.map((tag) => h("li", null, tag))) : null;
}

export function metaList(meta) {
  const entries = Object.entries(meta || {});
  if (!entries.length) return null;
  return h(
    "dl",
    { class: "meta" },
    entries.map(([key, value]) => [h("dt", null, key), h("dd", null, value)]),
  );
}

export function selfMark() {
  return h("span", { class: "self-mark", title: "The node this agent runs as" }, "this agent");
}
