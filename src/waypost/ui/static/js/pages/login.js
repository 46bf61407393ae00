// #/login: the token the UI sends as X-Consul-Token, kept in this tab's session storage
// (gone when the tab closes). A token is kept only once the agent recognises it.

import { TOKEN_EVENT } from "../account.js";
import { request, setToken, token } from "../api.js";
import { h, mount } from "../dom.js";
import { field, onSubmit, statusLine, takeReturnPath, useStyles } from "../widgets.js";

export function render(container, _params, ctx) {
  useStyles();
  ctx.setTitle("Log in");
  const status = statusLine();
  const secret = h("input", { type: "password", name: "token", autocomplete: "off", spellcheck: "false", required: true });
  const form = h(
    "form",
    { class: "card login", "aria-label": "Log in" },
    field("Token", secret, "The token's SecretID. It is kept in this browser tab only."),
    h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Log in")),
    status.node,
  );
  const current = h("div", { class: "current-token" });
  mount(container, h("h1", null, "Log in"), current, form);
  showCurrent();

  async function showCurrent() {
    if (!token()) {
      mount(current, h("p", null, "You are not logged in: requests use the agent's anonymous token."));
      return;
    }
    let who = "a token";
    try {
      const self = (await request("GET", "/v1/acl/token/self")).data;
      who = self.Description ? `${self.Description} (${self.AccessorID})` : self.AccessorID;
    } catch {
      // the stored token no longer resolves; logging out is still offered
    }
    mount(
      current,
      h("p", null, `You are logged in with ${who}.`),
      h(
        "button",
        {
          type: "button",
          onclick: () => {
            setToken("");
            window.dispatchEvent(new Event(TOKEN_EVENT));
            ctx.notify("Logged out");
            showCurrent();
          },
        },
        "Log out",
      ),
    );
  }

  onSubmit(form, status, async () => {
    const value = secret.value.trim();
    if (!value) throw new Error("Enter a token");
    const before = token();
    setToken(value);
    try {
      await request("GET", "/v1/acl/token/self");
    } catch (err) {
      setToken(before);
      if (err.status === 403) throw new Error("The token entered does not exist. Please enter a valid token to log in.");
      if (err.status === 401) throw new Error("ACLs are disabled on this agent: no token is needed.");
      throw err;
    }
    secret.value = "";
    window.dispatchEvent(new Event(TOKEN_EVENT));
    ctx.notify("Logged in");
    ctx.navigate(takeReturnPath() || "/acl/tokens");
  });
  secret.focus();
}
