// #/acl/policies and #/acl/policies/<id>: ACL policies, live; create one from Consul's
// rules language, edit it, delete it. The builtin global-management policy keeps its
// rules and cannot be deleted, which the agent enforces and the page reflects.

import { request, watch } from "../api.js";
import { h, mount } from "../dom.js";
import { href, seg } from "../router.js";
import { breadcrumbs, confirmAction, field, listTable, onSubmit, problem, statusLine, useStyles } from "../widgets.js";

const MANAGEMENT = "00000000-0000-0000-0000-000000000001";

export function render(container, params, ctx) {
  useStyles();
  const controller = new AbortController();
  if (params.id) detail(container, params.id, ctx, controller.signal);
  else list(container, ctx, controller.signal);
  return () => controller.abort();
}

// Name, description and rules: the same fields to create a policy and to edit one.
function policyForm(label, submitText, extra = []) {
  const name = h("input", { type: "text", name: "name", required: true, autocomplete: "off", spellcheck: "false" });
  const description = h("input", { type: "text", name: "description", autocomplete: "off" });
  const rules = h("textarea", { name: "rules", rows: 10, class: "mono", spellcheck: "false" });
  const status = statusLine();
  const form = h(
    "form",
    { class: "card", "aria-label": label },
    h("h2", null, label),
    field("Name", name, "Letters, digits, - and _ only."),
    field("Description", description),
    field("Rules", rules, 'Consul\'s rules language, e.g. key_prefix "app/" { policy = "read" }'),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, submitText), extra),
    status.node,
  );
  return {
    form,
    status,
    fill(p) {
      name.value = p.Name;
      description.value = p.Description || "";
      rules.value = p.Rules || "";
    },
    body: () => ({ Name: name.value.trim(), Description: description.value, Rules: rules.value }),
  };
}

async function deletePolicy(p, ctx) {
  const sure = await confirmAction({
    title: `Delete policy ${p.Name}?`,
    message: `Tokens linking ${p.Name} lose what it grants at once. This cannot be undone.`,
    action: "Delete policy",
  });
  if (!sure) return false;
  try {
    await request("DELETE", `/v1/acl/policy/${encodeURIComponent(p.ID)}`);
    ctx.notify(`Deleted policy ${p.Name}`);
    return true;
  } catch (err) {
    ctx.notify(err.message, "error");
    return false;
  }
}

function list(container, ctx, signal) {
  ctx.setTitle("Policies");
  const rows = h("div", null, h("p", { class: "empty" }, "Loading…"));
  const create = policyForm("Create a policy", "Create policy");
  create.form.hidden = true;
  const toggle = h(
    "button",
    {
      type: "button",
      "aria-expanded": "false",
      onclick: () => {
        create.form.hidden = !create.form.hidden;
        toggle.setAttribute("aria-expanded", String(!create.form.hidden));
        if (!create.form.hidden) create.form.querySelector("input").focus();
      },
    },
    "Create",
  );
  mount(container, h("h1", null, "Policies"), h("div", { class: "toolbar" }, toggle), create.form, rows);
  onSubmit(create.form, create.status, async () => {
    const made = (await request("PUT", "/v1/acl/policy", { body: create.body() })).data;
    create.form.reset();
    create.status.show(["Created policy ", h("a", { href: href(`/acl/policies/${seg(made.ID)}`) }, made.Name), "."]);
  });

  function row(p) {
    return h(
      "tr",
      { "data-id": p.ID },
      h("td", { "data-label": "Name" }, h("a", { href: href(`/acl/policies/${seg(p.ID)}`) }, p.Name)),
      h("td", { "data-label": "Description" }, p.Description || ""),
      h("td", { "data-label": "Datacenters" }, p.Datacenters?.length ? p.Datacenters.join(", ") : "all"),
      h(
        "td",
        null,
        p.ID === MANAGEMENT
          ? ""
          : h(
              "button",
              { type: "button", class: "danger", "aria-label": `Delete policy ${p.Name}`, onclick: () => deletePolicy(p, ctx) },
              "Delete",
            ),
      ),
    );
  }

  watch(
    "/v1/acl/policies",
    {},
    (policies) => {
      ctx.setTitle("Policies", policies.length);
      const heads = ["Name", "Description", "Datacenters", "Actions"];
      mount(rows, listTable(heads, policies.map(row)));
    },
    { signal, onError: (err) => mount(rows, problem(err)) },
  );
}

function detail(container, id, ctx, signal) {
  ctx.setTitle("Policy");
  let current = null;
  const remove = h(
    "button",
    {
      type: "button",
      class: "danger",
      onclick: async () => {
        if (await deletePolicy(current, ctx)) ctx.navigate("/acl/policies");
      },
    },
    "Delete policy",
  );
  const edit = policyForm("Edit", "Save", id === MANAGEMENT ? [] : [remove]);
  const heading = h("h1", null, "Policy");
  const crumb = h("div");
  const body = h("div", null, h("p", { class: "empty" }, "Loading…"));
  const tokens = h("div");
  mount(container, crumb, heading, body);
  onSubmit(edit.form, edit.status, async () => {
    await request("PUT", `/v1/acl/policy/${encodeURIComponent(id)}`, { body: edit.body() });
    edit.status.show("Saved.");
  });

  watch(
    `/v1/acl/policy/${encodeURIComponent(id)}`,
    {},
    (p) => {
      const firstTime = current === null;
      current = p;
      heading.textContent = p.Name;
      ctx.setTitle(`Policy ${p.Name}`);
      mount(
        crumb,
        breadcrumbs([
          ["Policies", "/acl/policies"],
          [p.Name, `/acl/policies/${seg(id)}`],
        ]),
      );
      if (firstTime) {
        edit.fill(p);
        mount(body, edit.form, h("h2", null, "Tokens with this policy"), tokens);
      }
    },
    {
      signal,
      onError: (err) =>
        mount(body, err.status === 403 && current ? h("p", { class: "empty" }, "This policy has been deleted.") : problem(err)),
    },
  );
  watch(
    "/v1/acl/tokens",
    { policy: id },
    (found) =>
      mount(
        tokens,
        found.length
          ? h(
              "ul",
              { class: "tags" },
              found.map((t) => h("li", null, h("a", { href: href(`/acl/tokens/${seg(t.AccessorID)}`) }, t.Description || t.AccessorID))),
            )
          : h("p", { class: "empty" }, "No token links this policy."),
      ),
    { signal, onError: (err) => mount(tokens, problem(err)) },
  );
}
