// The header's way to the login page, saying whether this tab has a token. The login page
// announces a change with a "waypost-token" event on window (session storage raises no
// event in the tab that wrote it).

import { token } from "./api.js";
import { h } from "./dom.js";
import { href } from "./router.js";

export const TOKEN_EVENT = "waypost-token";

export function accountLink() {
  const link = h("a", { class: "account" });
  const update = () => {
    link.href = href("/login");
    link.textContent = token() ? "Logged in" : "Log in";
    link.title = token() ? "A token is set for this tab; follow to change it or log out" : "Log in with an ACL token";
  };
  window.addEventListener("hashchange", update);
  window.addEventListener(TOKEN_EVENT, update);
  update();
  return link;
}
