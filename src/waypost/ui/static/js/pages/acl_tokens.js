// #/acl/tokens and #/acl/tokens/<accessor>: ACL tokens, live; create one with policies,
// change its description and policies, delete it. The agent refuses deleting the anonymous
// token or the token making the request, so the page does not offer those.

import { request, watch } from "../api.js";
import { h, mount } from "../dom.js";
import { href, seg } from "../router.js";
import { breadcrumbs, confirmAction, field, listTable, onSubmit, problem, statusLine, useStyles } from "../widgets.js";

const ANONYMOUS = "00000000-0000-0000-0000-000000000002";

export function render(container, params, ctx) {
  useStyles();
  const controller = new AbortController();
  if (params.accessor) detail(container, params.accessor, ctx, controller.signal);
  else list(container, ctx, controller.signal);
  return () => controller.abort();
}

let selfAccessor = "";

async function whoAmI() {
  try {
    selfAccessor = (await request("GET", "/v1/acl/token/self")).data.AccessorID;
  } catch {
    selfAccessor = "";
  }
}

// Checkboxes for the policies a token links, kept live as policies come and go; a choice
// survives a redraw, a deleted policy drops out of what is sent.
function policyPicker(signal) {
  const chosen = new Set();
  const legend = () => h("legend", null, "Policies");
  const box = h("fieldset", { class: "picker" }, legend(), h("p", { class: "empty" }, "Loading…"));
  const toggle = (event) => (event.target.checked ? chosen.add : chosen.delete).call(chosen, event.target.value);
  watch(
    "/v1/acl/policies",
    {},
    (policies) => {
      const items = policies.map((p) =>
        h(
          "label",
          { class: "check" },
          h("input", { type: "checkbox", value: p.ID, checked: chosen.has(p.ID), onchange: toggle }),
          p.Name,
        ),
      );
      mount(box, legend(), items.length ? items : h("p", { class: "empty" }, "No policies yet."));
    },
    { signal, onError: (err) => mount(box, legend(), problem(err)) },
  );
  return {
    node: box,
    links: () => [...box.querySelectorAll("input:checked")].map((i) => ({ ID: i.value })),
    set(links) {
      chosen.clear();
      for (const link of links || []) chosen.add(link.ID);
      for (const input of box.querySelectorAll("input")) input.checked = chosen.has(input.value);
    },
  };
}

function policyNames(links) {
  if (!links?.length) return h("span", { class: "empty" }, "none");
  return h(
    "ul",
    { class: "tags" },
    links.map((p) => h("li", null, h("a", { href: href(`/acl/policies/${seg(p.ID)}`) }, p.Name))),
  );
}

async function deleteToken(t, ctx) {
  const sure = await confirmAction({
    title: "Delete this token?",
    message: `Token ${t.Description || t.AccessorID} stops working at once. This cannot be undone.`,
    action: "Delete token",
  });
  if (!sure) return false;
  try {
    await request("DELETE", `/v1/acl/token/${encodeURIComponent(t.AccessorID)}`);
    ctx.notify(`Deleted token ${t.Description || t.AccessorID}`);
    return true;
  } catch (err) {
    ctx.notify(err.message, "error");
    return false;
  }
}

function deletable(t) {
  return t.AccessorID !== ANONYMOUS && t.AccessorID !== selfAccessor;
}

function list(container, ctx, signal) {
  ctx.setTitle("Tokens");
  const rows = h("div", null, h("p", { class: "empty" }, "Loading…"));
  const status = statusLine();
  const description = h("input", { type: "text", name: "description", autocomplete: "off" });
  const local = h("input", { type: "checkbox", name: "local" });
  const picker = policyPicker(signal);
  const form = h(
    "form",
    { class: "card", hidden: true, "aria-label": "Create a token" },
    h("h2", null, "Create a token"),
    field("Description", description),
    picker.node,
    h("label", { class: "check" }, local, "Local to this datacenter"),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Create token")),
  );
  const toggle = h(
    "button",
    {
      type: "button",
      "aria-expanded": "false",
      onclick: () => {
        form.hidden = !form.hidden;
        toggle.setAttribute("aria-expanded", String(!form.hidden));
        if (!form.hidden) description.focus();
      },
    },
    "Create",
  );
  mount(container, h("h1", null, "Tokens"), h("div", { class: "toolbar" }, toggle), form, status.node, rows);

  onSubmit(form, status, async () => {
    const created = (
      await request("PUT", "/v1/acl/token", {
        body: { Description: description.value, Policies: picker.links(), Local: local.checked },
      })
    ).data;
    form.reset();
    picker.set([]);
    status.show([
      `Created token ${created.AccessorID}. Its secret, to log in with: `,
      h("code", { class: "secret" }, created.SecretID),
    ]);
  });

  function row(t) {
    const link = h("a", { href: href(`/acl/tokens/${seg(t.AccessorID)}`), class: "mono" }, t.AccessorID);
    return h(
      "tr",
      { "data-id": t.AccessorID },
      h("td", { "data-label": "Accessor ID" }, link, t.AccessorID === selfAccessor ? h("span", { class: "self-mark" }, "your token") : ""),
      h("td", { "data-label": "Description" }, t.Description),
      h("td", { "data-label": "Policies" }, policyNames(t.Policies)),
      h("td", { "data-label": "Scope" }, t.Local ? "local" : "global"),
      h("td", { "data-label": "Created" }, t.CreateTime ? new Date(t.CreateTime).toLocaleString() : ""),
      h(
        "td",
        null,
        deletable(t)
          ? h(
              "button",
              { type: "button", class: "danger", "aria-label": `Delete token ${t.Description || t.AccessorID}`, onclick: () => deleteToken(t, ctx) },
              "Delete",
            )
          : "",
      ),
    );
  }

  whoAmI().then(() =>
    watch(
      "/v1/acl/tokens",
      {},
      (tokens) => {
        ctx.setTitle("Tokens", tokens.length);
        const heads = ["Accessor ID", "Description", "Policies", "Scope", "Created", "Actions"];
        mount(rows, listTable(heads, tokens.map(row)));
      },
      { signal, onError: (err) => mount(rows, problem(err)) },
    ),
  );
}

function detail(container, accessor, ctx, signal) {
  ctx.setTitle(`Token ${accessor}`);
  const body = h("div", null, h("p", { class: "empty" }, "Loading…"));
  mount(
    container,
    breadcrumbs([
      ["Tokens", "/acl/tokens"],
      [accessor, `/acl/tokens/${seg(accessor)}`],
    ]),
    h("h1", { class: "mono" }, accessor),
    body,
  );
  const status = statusLine();
  const description = h("input", { type: "text", name: "description", autocomplete: "off" });
  const picker = policyPicker(signal);
  const secret = h("code", { class: "secret" }, "••••••••");
  const meta = h("dl", { class: "meta" });
  let current = null;
  const reveal = h(
    "button",
    {
      type: "button",
      "aria-pressed": "false",
      onclick: () => {
        const shown = reveal.getAttribute("aria-pressed") === "true";
        reveal.setAttribute("aria-pressed", String(!shown));
        reveal.textContent = shown ? "Show secret" : "Hide secret";
        secret.textContent = shown ? "••••••••" : current.SecretID;
      },
    },
    "Show secret",
  );
  const form = h(
    "form",
    { class: "card", "aria-label": "Edit the token" },
    h("h2", null, "Edit"),
    field("Description", description),
    picker.node,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h(
        "button",
        {
          type: "button",
          class: "danger",
          onclick: async () => {
            if (await deleteToken(current, ctx)) ctx.navigate("/acl/tokens");
          },
        },
        "Delete token",
      ),
    ),
    status.node,
  );
  onSubmit(form, status, async () => {
    await request("PUT", `/v1/acl/token/${encodeURIComponent(accessor)}`, {
      body: { Description: description.value, Policies: picker.links() },
    });
    status.show("Saved.");
  });

  let first = true;
  whoAmI().then(() =>
    watch(
      `/v1/acl/token/${encodeURIComponent(accessor)}`,
      {},
      (t) => {
        current = t;
        const rows = [
          ["Accessor ID", t.AccessorID],
          ["Secret ID", t.SecretID === "<hidden>" ? "hidden from your token" : h("span", null, secret, " ", reveal)],
          ["Description", t.Description],
          ["Policies", policyNames(t.Policies)],
          ["Scope", t.Local ? "local" : "global"],
          ["Created", t.CreateTime ? new Date(t.CreateTime).toLocaleString() : ""],
        ];
        if (t.ExpirationTime) rows.push(["Expires", new Date(t.ExpirationTime).toLocaleString()]);
        mount(meta, rows.map(([k, v]) => [h("dt", null, k), h("dd", null, v)]));
        if (first) {
          description.value = t.Description;
          picker.set(t.Policies);
          mount(body, meta, deletable(t) ? form : "");
          first = false;
        }
      },
      {
        signal,
        onError: (err) =>
          mount(body, err.status === 403 && current ? h("p", { class: "empty" }, "This token has been deleted.") : problem(err)),
      },
    ),
  );
}
