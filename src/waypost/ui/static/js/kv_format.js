// How a KV value is shown: the API carries bytes as base64, people read text, JSON, YAML
// or a hex dump. Everything here is pure so the browser tests can call it directly.

const STRICT_UTF8 = new TextDecoder("utf-8", { fatal: true });
const ENCODER = new TextEncoder();

export function fromBase64(text) {
  const clean = (text || "").replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(clean) || clean.length % 4 === 1) {
    throw new Error("Not valid base64");
  }
  const binary = atob(clean);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

export function toBase64(bytes) {
  // Chunked: one String.fromCharCode call per 32 KiB keeps 512 KiB values under the
  // engine's argument limit.
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

export function utf8Text(bytes) {
  try {
    return STRICT_UTF8.decode(bytes);
  } catch {
    return null;
  }
}

export function utf8Bytes(text) {
  return ENCODER.encode(text);
}

export function hexDump(bytes) {
  const lines = [];
  for (let at = 0; at < bytes.length; at += 16) {
    const row = bytes.subarray(at, at + 16);
    const hex = Array.from(row, (b) => b.toString(16).padStart(2, "0")).join(" ");
    const ascii = Array.from(row, (b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : ".")).join("");
    lines.push(`${at.toString(16).padStart(8, "0")}  ${hex.padEnd(47)}  |${ascii}|`);
  }
  return lines.join("\n");
}

export function parseJson(text) {
  if (text === null || !/^\s*[[{"\d\-tfn]/.test(text)) return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

// YAML for display only: a subset that any YAML 1.2 reader maps back to the same JSON.
// Strings are plain only when they cannot be read as anything else, multi-line strings
// become literal blocks, and everything else is double-quoted (JSON's escapes are YAML's).

const PAD = "  ";
const RESERVED = /^(true|false|yes|no|on|off|null|y|n|~)$/i;
const PLAIN = /^[\p{L}_/][\p{L}\p{N} _./@-]*$/u;

function plainSafe(s) {
  return PLAIN.test(s) && !s.endsWith(" ") && !RESERVED.test(s);
}

function isBlock(v) {
  return v !== null && typeof v === "object" && Object.keys(v).length > 0;
}

function scalar(v, indent) {
  if (v === null) return ["null"];
  if (Array.isArray(v)) return ["[]"];
  if (typeof v === "object") return ["{}"];
  // YAML 1.1 readers want a dot in an exponent form: 1e+21 is written 1.0e+21.
  if (typeof v === "number") return [String(v).replace(/^(-?\d+)e/, "$1.0e")];
  if (typeof v !== "string") return [String(v)];
  if (plainSafe(v)) return [v];
  // A literal block needs every line printable and a first line without leading blanks.
  if (v.includes("\n") && !/^[ \n]/.test(v) && !/[\u0000-\u0009\u000b-\u001f\u007f]/.test(v)) {
    const body = v.replace(/\n+$/, "");
    const trailing = v.length - body.length;
    const chomp = trailing === 0 ? "|-" : trailing === 1 ? "|" : "|+";
    const lines = (chomp === "|+" ? v.slice(0, -1) : body).split("\n");
    return [chomp, ...lines.map((line) => (line ? indent + line : ""))];
  }
  return [JSON.stringify(v)];
}

function key(k) {
  return plainSafe(k) ? k : JSON.stringify(k);
}

function block(value, indent) {
  const out = [];
  const inner = indent + PAD;
  if (Array.isArray(value)) {
    for (const item of value) {
      if (isBlock(item)) {
        const sub = block(item, inner);
        out.push(`${indent}- ${sub[0].slice(inner.length)}`, ...sub.slice(1));
      } else {
        const [first, ...rest] = scalar(item, inner);
        out.push(`${indent}- ${first}`, ...rest);
      }
    }
    return out;
  }
  for (const [k, v] of Object.entries(value)) {
    if (isBlock(v)) {
      out.push(`${indent}${key(k)}:`, ...block(v, inner));
    } else {
      const [first, ...rest] = scalar(v, inner);
      out.push(`${indent}${key(k)}: ${first}`, ...rest);
    }
  }
  return out;
}

export function toYaml(value) {
  const lines = isBlock(value) ? block(value, "") : scalar(value, PAD);
  return lines.join("\n") + "\n";
}
