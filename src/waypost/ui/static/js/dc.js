// The datacenter selector in the header: hidden while the agent knows one datacenter,
// a labelled <select> once /v1/catalog/datacenters lists more. Choosing one sets ?dc= on
// the current page, which every request then carries; the agent's own needs no ?dc.

import { currentDc, request } from "./api.js";
import { h } from "./dom.js";

const REFRESH_MS = 30000;

function go(dc, home) {
  const path = location.hash.replace(/^#/, "").split("?")[0] || "/";
  location.hash = dc && dc !== home ? `${path}?dc=${encodeURIComponent(dc)}` : path;
}

export function dcSelector() {
  let home = "";
  const select = h("select", { id: "dc-select", onchange: () => go(select.value, home) });
  const wrap = h("label", { class: "dc-selector", hidden: true }, "Datacenter ", select);

  function mark() {
    select.value = currentDc() || home;
  }

  async function refresh() {
    let dcs = [];
    try {
      dcs = (await request("GET", "/v1/catalog/datacenters")).data;
    } catch {
      return; // unreachable or denied: keep what is shown
    }
    home = dcs[0] || "";
    const here = currentDc();
    if (here && !dcs.includes(here)) dcs.push(here);
    select.replaceChildren(...dcs.map((dc) => h("option", { value: dc }, dc)));
    wrap.hidden = dcs.length < 2;
    mark();
  }

  window.addEventListener("hashchange", mark);
  refresh();
  setInterval(refresh, REFRESH_MS);
  return wrap;
}
