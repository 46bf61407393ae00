// Hash routing (#/services/web?dc=east): a page module is loaded when first visited and
// handed the container; the page it replaces is cleaned up first, which ends its watches.

const routes = [];

// pattern: "/services/:name" (one segment) or "/kv/*path" (the rest, slashes included).
export function register(pattern, loader) {
  const names = [];
  const source = pattern
    .split("/")
    .map((part) => {
      if (part.startsWith(":")) {
        names.push(part.slice(1));
        return "([^/]+)";
      }
      if (part.startsWith("*")) {
        names.push(part.slice(1));
        return "(.*)";
      }
      return part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    })
    .join("/");
  routes.push({ regex: new RegExp(`^${source}$`), names, loader });
}

function split(hash) {
  const raw = hash.replace(/^#/, "") || "/";
  const at = raw.indexOf("?");
  return at < 0 ? [raw, new URLSearchParams()] : [raw.slice(0, at), new URLSearchParams(raw.slice(at + 1))];
}

// A link to path ("/nodes/a b" must already be encoded per segment) keeping ?dc.
export function href(path) {
  const dc = split(location.hash)[1].get("dc");
  return `#${path}${dc ? `?dc=${encodeURIComponent(dc)}` : ""}`;
}

// "/services/" + seg(name): one path segment, any characters.
export function seg(text) {
  return encodeURIComponent(text);
}

export function navigate(path) {
  location.hash = href(path).slice(1);
}

function match(path) {
  for (const route of routes) {
    const found = route.regex.exec(path);
    if (!found) continue;
    const params = {};
    route.names.forEach((name, i) => {
      params[name] = found[i + 1].split("/").map(decodeURIComponent).join("/");
    });
    return { route, params };
  }
  return null;
}

// Starts routing into container; makeCtx() gives each page its ctx, fallback is where an
// empty hash goes, notFound(container, path) draws an unknown path.
export function start(container, { makeCtx, fallback, notFound }) {
  let cleanup = null;
  let generation = 0;
  let shown = false;
  const show = async () => {
    const mine = ++generation;
    const [path] = split(location.hash);
    if (path === "/" || path === "") {
      navigate(fallback);
      return;
    }
    cleanup?.();
    cleanup = null;
    let found = null;
    try {
      found = match(path);
    } catch {
      // a malformed %-escape in a hand-typed link: not a page
    }
    if (!found) {
      notFound(container, path);
      return;
    }
    const page = await found.route.loader();
    if (mine !== generation) return;
    container.replaceChildren();
    cleanup = page.render(container, found.params, makeCtx()) || null;
    // After a navigation keyboard and screen-reader users continue from the new content,
    // not from wherever the link they followed used to be.
    if (shown) container.focus({ preventScroll: true });
    shown = true;
  };
  window.addEventListener("hashchange", show);
  show();
}
