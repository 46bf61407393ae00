// Building DOM without HTML strings: every piece of data lands as text (textContent or an
// attribute value), never parsed as markup, so a service named "<script>" shows as text.

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// h("a", {href: "#/nodes", class: "link", onclick: fn}, "text", otherNode, [more]).
export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on")) {
      if (typeof value !== "function") throw new TypeError(`${key} must be a function`);
      el.addEventListener(key.slice(2), value);
    } else if (key === "class") {
      el.className = value;
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "style" && typeof value === "object") {
      for (const [name, set] of Object.entries(value)) {
        if (name.includes("-")) el.style.setProperty(name, set); // custom properties: --cols
        else el.style[name] = set;
      }
    } else if (key === "value" || key === "checked" || key === "selected") {
      el[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

// "1 service", "3 services".
export function plural(n, noun) {
  return `${n} ${noun}${n === 1 ? "" : "s"}`;
}

// Replace a container's content with node (or nodes, or nothing).
export function mount(container, ...nodes) {
  container.replaceChildren();
  append(container, nodes);
}
