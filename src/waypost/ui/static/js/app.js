// The shell: header, navigation, connection badge, theme toggle, notices; and the route
// table. Pages come in as modules the first time they are visited.

import { accountLink } from "./account.js";
import { connection } from "./api.js";
import { dcSelector } from "./dc.js";
import { h, mount } from "./dom.js";
import { href, navigate, register, start } from "./router.js";

register("/services", () => import("./pages/services.js"));
register("/services/:name", () => import("./pages/service.js"));
register("/nodes", () => import("./pages/nodes.js"));
register("/nodes/:name", () => import("./pages/node.js"));
register("/kv/*path", () => import("./pages/kv.js"));
register("/sessions", () => import("./pages/sessions.js"));
register("/acl/tokens", () => import("./pages/acl_tokens.js"));
register("/acl/tokens/:accessor", () => import("./pages/acl_tokens.js"));
register("/acl/policies", () => import("./pages/acl_policies.js"));
register("/acl/policies/:id", () => import("./pages/acl_policies.js"));
register("/login", () => import("./pages/login.js"));

const NAV = [
  ["Services", "/services"],
  ["Nodes", "/nodes"],
  ["Key/Value", "/kv/"],
  ["Sessions", "/sessions"],
  ["Tokens", "/acl/tokens"],
  ["Policies", "/acl/policies"],
];
const THEME_KEY = "waypost.theme";

function applyTheme(theme) {
  if (theme) document.documentElement.dataset.theme = theme;
  else delete document.documentElement.dataset.theme;
}

function currentTheme() {
  const chosen = document.documentElement.dataset.theme;
  if (chosen) return chosen;
  return matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light";
}

function themeToggle() {
  const button = h("button", {
    type: "button",
    class: "theme-toggle",
    onclick: () => {
      const next = currentTheme() === "dark" ? "light" : "dark";
      localStorage.setItem(THEME_KEY, next);
      applyTheme(next);
      label();
    },
  });
  const label = () => {
    const other = currentTheme() === "dark" ? "light" : "dark";
    button.textContent = other === "dark" ? "Dark theme" : "Light theme";
    button.setAttribute("aria-label", `Switch to the ${other} theme`);
  };
  label();
  return button;
}

function navLinks() {
  const links = NAV.map(([text, path]) => h("li", null, h("a", { href: href(path), "data-path": path }, text)));
  const list = h("ul", null, links);
  const mark = () => {
    const here = location.hash.replace(/^#/, "").split("?")[0];
    for (const item of list.querySelectorAll("a")) {
      const path = item.dataset.path;
      item.href = href(path);
      const active = here === path || here.startsWith(path.endsWith("/") ? path : `${path}/`);
      if (active) item.setAttribute("aria-current", "page");
      else item.removeAttribute("aria-current");
    }
  };
  window.addEventListener("hashchange", mark);
  mark();
  return h("nav", { "aria-label": "Main" }, list);
}

function badge() {
  const el = h("span", { class: "connection", role: "status", "data-state": "live" }, "live");
  connection.addEventListener("state", (event) => {
    el.dataset.state = event.detail;
    el.textContent = event.detail;
    el.title = event.detail === "live" ? "Receiving live updates" : "The agent cannot be reached; retrying";
  });
  return el;
}

function notices() {
  return h("div", { class: "notices", "aria-live": "polite" });
}

function boot() {
  applyTheme(localStorage.getItem(THEME_KEY) || "");
  const main = h("main", { id: "main", tabindex: "-1" });
  const area = notices();
  mount(
    document.body,
    h("a", { class: "skip", href: "#main", onclick: (e) => (e.preventDefault(), main.focus()) }, "Skip to content"),
    h(
      "header",
      { class: "shell" },
      h("a", { class: "brand", href: href("/services") }, "waypost"),
      navLinks(),
      h("div", { class: "shell-tools" }, dcSelector(), accountLink(), badge(), themeToggle()),
    ),
    main,
    area,
  );
  const ctx = {
    navigate,
    setTitle(text, count) {
      document.title = `${text}${count === undefined || count === null ? "" : ` (${count})`} · waypost`;
    },
    notify(message, kind = "info") {
      const note = h("div", { class: `notice notice-${kind}`, role: kind === "error" ? "alert" : "status" }, message);
      area.append(note);
      setTimeout(() => note.remove(), 5000);
    },
  };
  start(main, {
    makeCtx: () => ctx,
    fallback: "/services",
    notFound(container, path) {
      ctx.setTitle("Not found");
      mount(container, h("h1", null, "Not found"), h("p", null, `Nothing here at ${path}.`));
    },
  });
}

boot();
