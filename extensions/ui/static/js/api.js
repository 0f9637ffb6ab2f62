// The public API, from the browser: JSON calls, the API key prompt, SSE streaming, rendering.
// Same-origin requests only, with no custom headers besides Authorization when a key is set.

const KEY = "jan.apiKey";
let askingKey = null;

export class ApiError extends Error {
  constructor(message, status, body) { super(message); this.status = status; this.body = body; }
}

function headers(json) {
  const h = {};
  if (json) h["Content-Type"] = "application/json";
  const key = localStorage.getItem(KEY);
  if (key) h.Authorization = `Bearer ${key}`;
  return h;
}

// Asks once for the key (a <dialog>); concurrent 401s wait for the same answer.
function askForKey() {
  if (askingKey) return askingKey;
  const dialog = document.getElementById("key-dialog");
  const input = document.getElementById("key-input");
  askingKey = new Promise((resolve) => {
    dialog.addEventListener("close", () => {
      const value = input.value.trim();
      if (value) localStorage.setItem(KEY, value);
      input.value = "";
      askingKey = null;
      resolve(Boolean(value));
    }, { once: true });
    dialog.showModal();
    input.focus();
  });
  return askingKey;
}

async function errorOf(res) {
  let body = null;
  try { body = await res.json(); } catch { /* not JSON */ }
  const message = body?.error?.message || `${res.status} ${res.statusText}`;
  return new ApiError(message, res.status, body);
}

// fetch() with the key; a 401 asks for the key and retries once.
export async function call(path, { method = "GET", body, signal } = {}) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const res = await fetch(path, {
      method, signal, headers: headers(body !== undefined),
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (res.status === 401 && attempt === 0 && await askForKey()) continue;
    if (!res.ok) throw await errorOf(res);
    return res;
  }
  throw new ApiError("An API key is required", 401, null);
}

export async function api(path, options) {
  const res = await call(path, options);
  return res.status === 204 ? null : res.json();
}

// Server-Sent Events from a POST (or a GET): calls onEvent(name, data) per event.
export async function stream(path, { method = "POST", body, signal, onEvent }) {
  const res = await call(path, { method, body, signal });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let cut;
    while ((cut = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, cut);
      buffer = buffer.slice(cut + 2);
      let name = "message";
      const data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) name = line.slice(6).trim();
        else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
      }
      if (!data.length) continue;
      const text = data.join("\n");
      if (text === "[DONE]") return;
      let parsed;
      try { parsed = JSON.parse(text); } catch { continue; }
      if (parsed && parsed.error) throw new ApiError(parsed.error.message, 500, parsed);
      onEvent(name, parsed);
    }
  }
}

// Markdown → sanitised HTML, rendered by the server (markdown-it-py, Pygments, nh3).
const rendered = new Map();
let codeCss = null;
export async function renderMarkdown(texts) {
  // The code highlighting styles (~20 KB) load with the first reply, not before the composer.
  codeCss ||= document.head.appendChild(Object.assign(document.createElement("link"), { rel: "stylesheet", href: "/ui/code.css" }));
  const missing = [...new Set(texts.filter((t) => !rendered.has(t)))];
  for (let i = 0; i < missing.length; i += 200) {
    const part = missing.slice(i, i + 200);
    const { html } = await api("/ui/render", { method: "POST", body: { texts: part } });
    part.forEach((t, j) => rendered.set(t, html[j]));
  }
  if (rendered.size > 5000) rendered.clear();
  return texts.map((t) => rendered.get(t) ?? "");
}

// All pages of a cursor-paginated list (OpenAI style).
export async function listAll(path, limit = 100, max = 10000) {
  const out = [];
  let after = null;
  while (out.length < max) {
    const sep = path.includes("?") ? "&" : "?";
    const page = await api(`${path}${sep}limit=${limit}${after ? `&after=${encodeURIComponent(after)}` : ""}`);
    out.push(...page.data);
    if (!page.has_more || !page.data.length) break;
    after = page.last_id || page.data[page.data.length - 1].id;
  }
  return out;
}
