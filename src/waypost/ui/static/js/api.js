// The one way pages talk to the agent: Consul's /v1 HTTP API with the datacenter and the
// token every request needs, and blocking-query loops that keep a view live.

const TOKEN_KEY = "waypost.token";
const WAIT = "30s";
const MAX_BACKOFF_MS = 10000;
const MIN_INTERVAL_MS = 200;
// A burst of writes would otherwise have each view re-read its whole answer as fast as
// the agent can send it; Consul's own UI spaces its blocking queries the same way.

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.index = 0;
  }
}

export function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

export function setToken(value) {
  if (value) sessionStorage.setItem(TOKEN_KEY, value);
  else sessionStorage.removeItem(TOKEN_KEY);
}

// The datacenter the page is looking at: ?dc= in the hash (#/services?dc=east).
export function currentDc() {
  const hash = location.hash;
  const at = hash.indexOf("?");
  return at < 0 ? "" : new URLSearchParams(hash.slice(at + 1)).get("dc") || "";
}

let self = null;

// The node this agent runs as, which the UI highlights; "" when the token may not read it.
export function selfNode() {
  self ??= request("GET", "/v1/agent/self").then(
    (answer) => answer.data?.Config?.NodeName || "",
    () => "",
  );
  return self;
}

function url(path, params) {
  const target = new URL(path, location.origin);
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null || value === false) continue;
    target.searchParams.set(key, value === true ? "" : String(value));
  }
  const dc = currentDc();
  if (dc && !target.searchParams.has("dc")) target.searchParams.set("dc", dc);
  return target;
}

export async function request(method, path, { params, body, signal } = {}) {
  const headers = {};
  const secret = token();
  if (secret) headers["X-Consul-Token"] = secret;
  const payload = body === undefined || typeof body === "string" || body instanceof Blob ? body : JSON.stringify(body);
  let resp;
  try {
    resp = await fetch(url(path, params), { method, headers, body: payload, signal, cache: "no-store" });
  } catch (err) {
    if (err.name === "AbortError") throw err;
    throw new ApiError(0, "The agent cannot be reached");
  }
  const text = await resp.text();
  const index = Number(resp.headers.get("X-Consul-Index")) || 0;
  if (!resp.ok) {
    const err = new ApiError(resp.status, text.trim() || resp.statusText);
    err.index = index;
    throw err;
  }
  const json = (resp.headers.get("Content-Type") || "").startsWith("application/json");
  const data = json && text ? JSON.parse(text) : text;
  return { status: resp.status, index, data, headers: resp.headers };
}

function sleep(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });
}

// Every watch reports here too, so the shell shows one "disconnected" badge for all.
export const connection = new EventTarget();

// A blocking-query loop: onData(data, index) on the first answer and every change after;
// on errors it backs off (doubling, capped) and reports "disconnected" until one succeeds.
// An agent answering 4xx is reachable: onError gets the error and the loop goes on.
export function watch(path, params, onData, { signal, onState, onError } = {}) {
  let index = 0;
  let state = "";
  const report = (next) => {
    if (next === state) return;
    state = next;
    onState?.(next);
    connection.dispatchEvent(new CustomEvent("state", { detail: next }));
  };
  const pace = async (started) => {
    const spent = performance.now() - started;
    if (spent < MIN_INTERVAL_MS) await sleep(MIN_INTERVAL_MS - spent, signal);
  };
  const loop = async () => {
    let backoff = 0;
    let first = true;
    while (!signal?.aborted) {
      const started = performance.now();
      let answer;
      try {
        const query = { ...params, wait: WAIT };
        if (index > 0) query.index = index;
        answer = await request("GET", path, { params: query, signal });
      } catch (err) {
        if (signal?.aborted) return;
        if (err.status === 404 && err.index > 0) {
          // Consul's "nothing there yet" is a blocking answer like any other: wait on its
          // index, so the first key of an empty folder shows as soon as it is written.
          report("live");
          onError?.(err);
          backoff = 0;
          first = true;
          index = err.index < index ? 0 : err.index;
          await pace(started);
          continue;
        }
        if (err.status >= 400 && err.status < 500) {
          report("live");
          onError?.(err);
        } else {
          report("disconnected");
        }
        index = 0;
        first = true;
        backoff = Math.min(MAX_BACKOFF_MS, backoff ? backoff * 2 : 500);
        await sleep(backoff * (0.75 + Math.random() / 2), signal);
        continue;
      }
      report("live");
      backoff = 0;
      const next = answer.index > 0 ? answer.index : 1;
      if (first || next !== index) onData(answer.data, next);
      first = false;
      index = next < index ? 0 : next;
      await pace(started);
    }
  };
  loop();
}
