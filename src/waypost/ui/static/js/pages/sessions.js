// #/sessions: every session in the datacenter, live, with what it is tied to and a way to
// invalidate one (which releases or deletes the locks it holds, per its behaviour).

import { request, watch } from "../api.js";
import { h, mount } from "../dom.js";
import { href, seg } from "../router.js";
import { confirmAction, duration, emptyNote, listTable, problem, useStyles } from "../widgets.js";

export function render(container, _params, ctx) {
  useStyles();
  const controller = new AbortController();
  ctx.setTitle("Sessions");
  const list = h("div", null, h("p", { class: "empty" }, "Loading…"));
  mount(
    container,
    h("h1", null, "Sessions"),
    h("p", { class: "summary" }, "Sessions hold KV locks; invalidating one releases or deletes its locks, as its behaviour says."),
    list,
  );

  async function invalidate(session) {
    const sure = await confirmAction({
      title: "Invalidate this session?",
      message: `Session ${session.Name || session.ID} on ${session.Node} ends now, and its locks are ${session.Behavior === "delete" ? "deleted" : "released"}.`,
      action: "Invalidate",
    });
    if (!sure) return;
    try {
      await request("PUT", `/v1/session/destroy/${encodeURIComponent(session.ID)}`);
      ctx.notify(`Invalidated session ${session.Name || session.ID}`);
    } catch (err) {
      ctx.notify(err.message, "error");
    }
  }

  function row(s) {
    const checks = [...(s.NodeChecks || []), ...(s.ServiceChecks || []).map((c) => c.ID)];
    return h(
      "tr",
      { "data-id": s.ID },
      h("td", { "data-label": "Name" }, s.Name || h("span", { class: "empty" }, "(no name)")),
      h("td", { "data-label": "ID", class: "mono" }, s.ID),
      h("td", { "data-label": "Node" }, h("a", { href: href(`/nodes/${seg(s.Node)}`) }, s.Node)),
      h("td", { "data-label": "Behavior" }, s.Behavior),
      h("td", { "data-label": "TTL" }, s.TTL || "none"),
      h("td", { "data-label": "Lock delay" }, duration(s.LockDelay)),
      h("td", { "data-label": "Checks" }, checks.length ? h("ul", { class: "tags" }, checks.map((c) => h("li", null, c))) : "none"),
      h(
        "td",
        null,
        h(
          "button",
          { type: "button", class: "danger", "aria-label": `Invalidate session ${s.Name || s.ID}`, onclick: () => invalidate(s) },
          "Invalidate",
        ),
      ),
    );
  }

  watch(
    "/v1/session/list",
    {},
    (sessions) => {
      ctx.setTitle("Sessions", sessions.length);
      if (!sessions.length) {
        mount(list, emptyNote("There are no sessions"));
        return;
      }
      const heads = ["Name", "ID", "Node", "Behavior", "TTL", "Lock delay", "Checks", "Actions"];
      mount(list, listTable(heads, sessions.map(row)));
    },
    { signal: controller.signal, onError: (err) => mount(list, problem(err)) },
  );
  return () => controller.abort();
}
