// What the KV, session and ACL pages share: their stylesheet, labelled form fields, a
// status line for a form, a confirmation dialog, their list table, and the one explanation of an API error
// (denied: log in; ACLs off; agent unreachable).

import { request, token } from "./api.js";
import { h } from "./dom.js";
import { href } from "./router.js";

const RETURN_KEY = "waypost.return";

export function useStyles() {
  if (!document.querySelector('link[data-for="data-pages"]')) {
    document.head.append(h("link", { rel: "stylesheet", href: "css/data.css", "data-for": "data-pages" }));
  }
}

let fieldIds = 0;

// A control with its visible label and an optional hint the control is described by.
export function field(label, control, hint) {
  control.id ||= `field-${++fieldIds}`;
  const parts = [h("label", { for: control.id }, label), control];
  if (hint) {
    const hintId = `${control.id}-hint`;
    control.setAttribute("aria-describedby", hintId);
    parts.push(h("small", { id: hintId, class: "hint" }, hint));
  }
  return h("div", { class: "field" }, parts);
}

// A line that announces the outcome of what a form did; errors interrupt (role=alert).
export function statusLine() {
  const node = h("div", { class: "status-line", role: "status", "aria-live": "polite" });
  return {
    node,
    show(message, kind = "info") {
      node.className = `status-line status-line-${kind}`;
      node.setAttribute("role", kind === "error" ? "alert" : "status");
      node.replaceChildren(...(Array.isArray(message) ? message : [message]));
    },
    clear() {
      node.replaceChildren();
    },
  };
}

// Runs action(form) on submit with the form's buttons disabled; an error lands in status.
export function onSubmit(form, status, action) {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => (b.disabled = true));
    try {
      await action(form);
    } catch (err) {
      if (err.name === "AbortError") return;
      status.show(err.message, "error");
    } finally {
      buttons.forEach((b) => (b.disabled = false));
    }
  });
}

// A modal question; resolves true only when the named action is chosen (Escape cancels,
// and Cancel has the focus first, so a stray Enter deletes nothing).
export function confirmAction({ title, message, action }) {
  return new Promise((resolve) => {
    const titleId = `confirm-${++fieldIds}`;
    const dialog = h(
      "dialog",
      { class: "confirm", "aria-labelledby": titleId },
      h("h2", { id: titleId }, title),
      h("p", null, message),
      h(
        "form",
        { method: "dialog", class: "actions" },
        h("button", { value: "cancel", autofocus: true }, "Cancel"),
        h("button", { value: "confirm", class: "danger" }, action),
      ),
    );
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "confirm");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

function loginLink(text) {
  return h(
    "a",
    { href: href("/login"), onclick: () => sessionStorage.setItem(RETURN_KEY, location.hash.slice(1)) },
    text,
  );
}

let aclsOn = null;

// "Nothing here" for a list. A list leaves out what the token may not read rather than
// refusing it (as Consul does), so without a token on an agent with ACLs on the emptiness
// may be the ACLs at work, which the note then says.
export function emptyNote(text) {
  const note = h("p", { class: "empty" }, `${text}.`);
  if (!token()) {
    aclsOn ??= request("GET", "/v1/acl/token/self").then(
      () => true,
      (err) => err.status !== 401,
    );
    aclsOn.then((on) => {
      if (on) note.replaceChildren(`${text}, or hidden from you: `, loginLink("Log in with a token"), ".");
    });
  }
  return note;
}

// A list page's table: column headings, then rows (<tr> elements) as the page builds them.
export function listTable(heads, rows) {
  return h(
    "table",
    { class: "list" },
    h("thead", null, h("tr", null, heads.map((t) => h("th", { scope: "col" }, t)))),
    h("tbody", null, rows),
  );
}

// Where the login page goes back to: the page that sent the user there.
export function takeReturnPath() {
  const path = sessionStorage.getItem(RETURN_KEY) || "";
  sessionStorage.removeItem(RETURN_KEY);
  return path.split("?")[0];
}

// An API error explained, with the way out when there is one.
export function problem(err) {
  const lines = [h("p", { class: "error" }, err.message)];
  if (err.status === 403) {
    lines.push(
      h(
        "p",
        null,
        token() ? "Your token does not allow this. " : "You are not logged in, and anonymous access does not allow this. ",
        loginLink(token() ? "Log in with another token" : "Log in with a token"),
      ),
    );
  } else if (err.status === 401) {
    lines.push(h("p", null, "ACLs are disabled on this agent: there are no tokens or policies to manage."));
  } else if (!err.status) {
    lines.push(h("p", null, "Retrying until the agent answers."));
  }
  return h("div", { class: "problem", role: "alert" }, lines);
}

// Go's time.Duration text for the nanoseconds the API reports (15000000000 -> "15s").
export function duration(ns) {
  let seconds = Number(ns || 0) / 1e9;
  if (!seconds) return "0s";
  const hours = Math.floor(seconds / 3600);
  seconds -= hours * 3600;
  const minutes = Math.floor(seconds / 60);
  seconds = Math.round((seconds - minutes * 60) * 1000) / 1000;
  return `${hours ? `${hours}h` : ""}${hours || minutes ? `${minutes}m` : ""}${seconds}s`;
}

// The breadcrumb trail above a page: [[text, path], ...], the last one being this page.
export function breadcrumbs(trail) {
  const items = trail.map(([text, path], i) =>
    h("li", null, i === trail.length - 1 ? h("span", { "aria-current": "page" }, text) : h("a", { href: href(path) }, text)),
  );
  return h("nav", { class: "breadcrumbs", "aria-label": "Breadcrumb" }, h("ol", null, items));
}
