// #/kv/<folder>/ lists a folder, #/kv/<key> shows and edits one key. Writes carry the
// ModifyIndex the user saw (CAS), so a change made meanwhile is reported, never overwritten
// by surprise. Values are bytes: shown as UTF-8 text when they are, else as base64.

import { request, watch } from "../api.js";
import { h, mount, plural } from "../dom.js";
import { seg } from "../router.js";
import { fromBase64, hexDump, parseJson, toBase64, toYaml, utf8Bytes, utf8Text } from "../kv_format.js";
import { breadcrumbs, confirmAction, emptyNote, field, onSubmit, problem, statusLine, useStyles } from "../widgets.js";

const MAX_FLAGS = 2n ** 64n;

function apiPath(key) {
  return `/v1/kv/${key.split("/").map(encodeURIComponent).join("/")}`;
}

function pagePath(key) {
  return `/kv/${key.split("/").map(seg).join("/")}`;
}

function parentOf(key) {
  const trimmed = key.endsWith("/") ? key.slice(0, -1) : key;
  return trimmed.slice(0, trimmed.lastIndexOf("/") + 1);
}

function trail(key) {
  const crumbs = [["Key/Value", "/kv/"]];
  const parts = key.split("/");
  let at = "";
  parts.forEach((part, i) => {
    const last = i === parts.length - 1;
    if (last && part === "") return;
    at += last ? part : `${part}/`;
    crumbs.push([last ? part : `${part}/`, pagePath(at)]);
  });
  return crumbs;
}

function parseFlags(text) {
  const clean = text.trim() || "0";
  if (!/^\d+$/.test(clean) || BigInt(clean) >= MAX_FLAGS) {
    throw new Error("Flags must be a whole number from 0 to 18446744073709551615");
  }
  return clean;
}

function written(answer) {
  return answer.data === true || answer.data === "true";
}

export function render(container, params, ctx) {
  useStyles();
  const controller = new AbortController();
  const key = params.path || "";
  if (key === "" || key.endsWith("/")) folderView(container, key, ctx, controller.signal);
  else keyView(container, key, ctx, controller.signal);
  return () => controller.abort();
}

// -- a folder ------------------------------------------------------------------------------

function folderView(container, folder, ctx, signal) {
  const title = folder ? folder.slice(parentOf(folder).length) : "Key/Value";
  ctx.setTitle(folder || "Key/Value");
  const list = h("div", { class: "kv-list" }, h("p", { class: "empty" }, "Loading…"));
  const tools = h("div", { class: "toolbar" }, createToggle());
  if (folder) tools.append(h("button", { type: "button", class: "danger", onclick: deleteFolder }, "Delete folder"));
  const form = createForm(folder, ctx);
  mount(container, breadcrumbs(trail(folder)), h("h1", null, title), tools, form, list);

  function createToggle() {
    return h(
      "button",
      {
        type: "button",
        "aria-expanded": "false",
        onclick: (event) => {
          const open = form.hidden;
          form.hidden = !open;
          event.currentTarget.setAttribute("aria-expanded", String(open));
          if (open) form.querySelector("input").focus();
        },
      },
      "Create",
    );
  }

  async function deleteFolder() {
    let count = 0;
    try {
      count = (await request("GET", apiPath(folder), { params: { keys: true }, signal })).data.length;
    } catch (err) {
      if (err.status !== 404) return ctx.notify(err.message, "error");
    }
    const sure = await confirmAction({
      title: `Delete ${folder}?`,
      message: `This deletes the folder ${folder} and everything in it (${plural(count, "key")}). It cannot be undone.`,
      action: "Delete everything",
    });
    if (!sure) return;
    try {
      await request("DELETE", apiPath(folder), { params: { recurse: true } });
      ctx.notify(`Deleted ${folder} and ${plural(count, "key")}`);
      ctx.navigate(pagePath(parentOf(folder)));
    } catch (err) {
      ctx.notify(err.message, "error");
    }
  }

  watch(
    apiPath(folder),
    { keys: true, separator: "/" },
    (keys) => {
      const children = keys.filter((k) => k !== folder);
      mount(list, children.length ? table(children) : emptyNote("This folder is empty"));
      ctx.setTitle(folder || "Key/Value", children.length);
    },
    {
      signal,
      onError: (err) =>
        mount(list, err.status === 404 ? emptyNote("This folder is empty") : problem(err)),
    },
  );

  function table(children) {
    const folders = children.filter((k) => k.endsWith("/"));
    const keys = children.filter((k) => !k.endsWith("/"));
    const rows = [...folders, ...keys].map((full) => {
      const name = full.slice(folder.length);
      const isFolder = full.endsWith("/");
      return h(
        "tr",
        null,
        h("td", { "data-label": "Name" }, h("a", { href: `#${pagePath(full)}`, class: isFolder ? "folder" : "key" }, name)),
        h("td", { "data-label": "Kind" }, isFolder ? "Folder" : "Key"),
      );
    });
    return h(
      "table",
      { class: "list" },
      h("caption", { class: "summary" }, `${plural(folders.length, "folder")}, ${plural(keys.length, "key")}`),
      h("thead", null, h("tr", null, h("th", { scope: "col" }, "Name"), h("th", { scope: "col" }, "Kind"))),
      h("tbody", null, rows),
    );
  }
}

function createForm(folder, ctx) {
  const name = h("input", { type: "text", name: "key", required: true, autocomplete: "off", spellcheck: "false" });
  const value = h("textarea", { name: "value", rows: 8, class: "mono", spellcheck: "false" });
  const flags = h("input", { type: "text", name: "flags", inputmode: "numeric", value: "0" });
  const status = statusLine();
  const form = h(
    "form",
    { class: "kv-create card", hidden: true, "aria-label": "Create a key or folder" },
    h("h2", null, folder ? `Create in ${folder}` : "Create"),
    field("Key or folder", name, "End the name with / to create a folder; slashes make nested folders."),
    field("Value", value),
    field("Flags", flags, "A 64-bit number stored with the key for clients to interpret."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save")),
    status.node,
  );
  onSubmit(form, status, async () => {
    const rel = name.value;
    if (!rel.trim()) throw new Error("Enter a key name");
    if (rel.startsWith("/")) throw new Error("A key name may not start with /");
    const full = folder + rel;
    const isFolder = full.endsWith("/");
    const answer = await request("PUT", apiPath(full), {
      params: { cas: 0, flags: isFolder ? undefined : parseFlags(flags.value) },
      body: isFolder ? "" : new Blob([utf8Bytes(value.value)]),
    });
    if (!written(answer)) throw new Error(`${full} already exists; open it to edit it.`);
    ctx.notify(`Created ${full}`);
    ctx.navigate(pagePath(full));
  });
  return form;
}

// -- one key -------------------------------------------------------------------------------

const VIEWS = [
  ["text", "Text"],
  ["base64", "Base64"],
  ["json", "JSON"],
  ["yaml", "YAML"],
  ["hex", "Hex"],
];
const EDITABLE = new Set(["text", "base64"]);

function keyView(container, key, ctx, signal) {
  ctx.setTitle(key);
  let entry = null; // what the user loaded: its ModifyIndex is what a save compares against
  let latest = null; // what the agent last said, which may be newer while the user edits
  let saving = false;
  let bytes = new Uint8Array();
  let view = "text";
  let dirty = false;

  const meta = h("dl", { class: "meta" });
  const editor = h("textarea", { class: "mono kv-value", rows: 12, spellcheck: "false", wrap: "off" });
  const flags = h("input", { type: "text", inputmode: "numeric" });
  const radios = VIEWS.map(([id, text]) =>
    h(
      "label",
      { class: "view-choice" },
      h("input", { type: "radio", name: "kv-view", value: id, onchange: () => switchView(id) }),
      text,
    ),
  );
  const stale = h("div", { class: "stale", role: "status", hidden: true });
  const status = statusLine();
  const body = h("div", { class: "kv-key" }, h("p", { class: "empty" }, "Loading…"));
  const form = h(
    "form",
    { class: "kv-edit" },
    h("fieldset", { class: "views" }, h("legend", null, "Show the value as"), radios),
    field("Value", editor),
    field("Flags", flags),
    stale,
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit", class: "primary" }, "Save"),
      h("button", { type: "button", class: "danger", onclick: remove }, "Delete"),
    ),
    status.node,
  );
  editor.addEventListener("input", () => (dirty = true));
  flags.addEventListener("input", () => (dirty = true));
  mount(container, breadcrumbs(trail(key)), h("h1", null, key.slice(parentOf(key).length)), body);

  function showMeta() {
    const rows = [
      ["Key", key],
      ["Flags", entry.Flags],
      ["Size", `${bytes.length} bytes`],
      ["Create index", entry.CreateIndex],
      ["Modify index", entry.ModifyIndex],
      ["Lock index", entry.LockIndex],
    ];
    if (entry.Session) rows.push(["Locked by session", entry.Session]);
    mount(meta, rows.map(([k, v]) => [h("dt", null, k), h("dd", { class: k === "Key" ? "mono" : null }, String(v))]));
  }

  function load(next) {
    entry = next;
    bytes = next.Value ? fromBase64(next.Value) : new Uint8Array();
    dirty = false;
    stale.hidden = true;
    flags.value = String(next.Flags);
    const text = utf8Text(bytes);
    for (const radio of form.querySelectorAll('input[name="kv-view"]')) {
      const needsText = radio.value !== "base64" && radio.value !== "hex";
      const needsJson = radio.value === "json" || radio.value === "yaml";
      radio.disabled = (needsText && text === null) || (needsJson && parseJson(text) === undefined);
    }
    if (text === null && view !== "hex") view = "base64";
    else if (form.querySelector(`input[value="${view}"]`).disabled) view = "text";
    showView();
    showMeta();
  }

  // The bytes the editor stands for now (the edit, when the view is an editable one).
  function currentBytes() {
    if (!EDITABLE.has(view) || !dirty) return bytes;
    return view === "text" ? utf8Bytes(editor.value) : fromBase64(editor.value);
  }

  function switchView(next) {
    try {
      bytes = currentBytes();
    } catch (err) {
      status.show(err.message, "error");
      form.querySelector(`input[value="${view}"]`).checked = true;
      return;
    }
    view = next;
    status.clear();
    showView();
  }

  function showView() {
    const text = utf8Text(bytes);
    const shown = {
      text: () => text,
      base64: () => toBase64(bytes),
      json: () => JSON.stringify(parseJson(text), null, 2),
      yaml: () => toYaml(parseJson(text)),
      hex: () => hexDump(bytes),
    }[view]();
    editor.value = shown ?? "";
    editor.readOnly = !EDITABLE.has(view);
    editor.setAttribute("aria-readonly", String(editor.readOnly));
    form.querySelector(`input[value="${view}"]`).checked = true;
  }

  function changedElsewhere(now) {
    const what = now ? `It is now at modify index ${now.ModifyIndex}.` : "It has been deleted.";
    stale.replaceChildren(
      `Someone else changed this key since you started editing (you loaded modify index ${entry.ModifyIndex}). ${what} `,
      now ? h("button", { type: "button", onclick: () => load(now) }, "Discard my edit and load theirs") : "",
    );
    stale.hidden = false;
  }

  onSubmit(form, status, async () => {
    const value = currentBytes();
    saving = true;
    let answer;
    try {
      answer = await request("PUT", apiPath(key), {
        params: { cas: entry.ModifyIndex, flags: parseFlags(flags.value) },
        body: new Blob([value]),
      });
    } finally {
      saving = false;
    }
    if (!written(answer)) {
      let now = null;
      try {
        now = (await request("GET", apiPath(key))).data[0];
      } catch {
        // deleted meanwhile
      }
      const what = now ? `it is now at modify index ${now.ModifyIndex}` : "it has been deleted";
      status.show(
        `Not saved: this key was changed by someone else after you loaded it (you loaded modify index ${entry.ModifyIndex}; ${what}). Your edit is still here.`,
        "error",
      );
      if (now) changedElsewhere(now);
      return;
    }
    bytes = value;
    dirty = false;
    // The watch may have brought this very write back while it was in flight.
    if (latest && latest.ModifyIndex > entry.ModifyIndex) load(latest);
    status.show("Saved.");
  });

  async function remove() {
    const sure = await confirmAction({
      title: `Delete ${key}?`,
      message: `The key ${key} will be deleted. It cannot be undone.`,
      action: "Delete",
    });
    if (!sure) return;
    try {
      const answer = await request("DELETE", apiPath(key), { params: { cas: entry.ModifyIndex } });
      if (!written(answer)) {
        status.show("Not deleted: this key was changed by someone else after you loaded it.", "error");
        return;
      }
      ctx.notify(`Deleted ${key}`);
      ctx.navigate(pagePath(parentOf(key)));
    } catch (err) {
      status.show(err.message, "error");
    }
  }

  watch(
    apiPath(key),
    {},
    (data) => {
      const next = data[0];
      latest = next;
      if (entry === null) mount(body, meta, form);
      if (entry === null || (!dirty && !saving)) load(next);
      else if (!saving && next.ModifyIndex !== entry.ModifyIndex) changedElsewhere(next);
    },
    {
      signal,
      onError: (err) => {
        if (err.status === 404 && entry !== null) {
          changedElsewhere(null);
          return;
        }
        mount(body, err.status === 404 ? h("p", { class: "empty" }, `There is no key ${key}.`) : problem(err));
        entry = null;
      },
    },
  );
}
