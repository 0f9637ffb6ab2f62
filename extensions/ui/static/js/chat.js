// The conversation: messages rendered as Markdown, the composer, stop, regenerate, edit and
// copy. Replies stream from /v1/chat/completions with the thread's saved settings (live-reply.js)
// and are saved through /v1/threads/{id}/messages, like `jan chat` does.
import { api, renderMarkdown } from "./api.js";
import { $, h, toast, copyText } from "./dom.js";
import { state, emit } from "./state.js";
import { effective, ensureContext, usesServerTools } from "./panel.js";
import { afterExchange, titleOf } from "./threads.js";
import { addCodeButtons, citationsView, editor, fromApi, toolDetails } from "./message-view.js";
import { streamReply } from "./live-reply.js";

const PAGE = 100;
let messages = [];       // {id, role, text, meta, el}
let olderCursor = null;  // id of the oldest loaded message when more exist
let follow = true;       // keep the newest text in view unless the user scrolled up

const box = () => $("messages");

function actions(m) {
  const acts = [h("button", { type: "button", onclick: () => copyText(m.text), "aria-label": "Copy message" }, "Copy")];
  if (m.role === "user") acts.push(h("button", { type: "button", onclick: () => edit(m), "aria-label": "Edit message" }, "Edit"));
  if (m.role === "assistant" && m === messages.at(-1)) {
    acts.push(h("button", { type: "button", id: "regenerate", onclick: regenerate, "aria-label": "Regenerate reply" }, "Regenerate"));
  }
  return h("div", { class: "meta" }, acts);
}

function bubble(m, html) {
  const body = h("div", { class: "bubble" });
  if (m.role === "user" || m.role === "system") body.textContent = m.text;
  else if (m.role === "tool") body.append(toolDetails(m));
  else {
    if (html !== undefined) body.innerHTML = html;  // sanitised by the server (nh3)
    else body.textContent = m.text;
    const tools = toolDetails(m);
    if (tools) body.prepend(...tools);
    const sources = citationsView(m.cites);
    if (sources) body.append(sources);
  }
  addCodeButtons(body);
  const note = m.meta.jan_stopped === "true" ? h("span", { class: "note" }, "Stopped") : null;
  m.el = h("article", { class: `msg ${m.role}`, "data-id": m.id || "", "aria-label": `${m.role} message` },
    body, note, actions(m));
  return m.el;
}

async function renderAll(prepend = false, list = messages) {
  const assistant = list.filter((m) => m.role === "assistant");
  const html = await renderMarkdown(assistant.map((m) => m.text));
  const map = new Map(assistant.map((m, i) => [m, html[i]]));
  const nodes = list.map((m) => bubble(m, map.get(m)));
  const el = box();
  if (prepend) {
    const before = el.scrollHeight;
    el.querySelector(".older")?.remove();
    el.prepend(...nodes);
    el.scrollTop += el.scrollHeight - before;
  } else el.replaceChildren(...nodes);
  if (olderCursor) {
    el.prepend(h("button", { type: "button", class: "ghost older", onclick: loadOlder }, "Load earlier messages"));
  }
  if (!messages.length) el.replaceChildren(emptyState());
}

function emptyState() {
  return h("div", { class: "empty", id: "empty-state" }, h("h2", {}, "How can I help?"),
    h("p", { class: "muted" }, "Everything stays on this computer."));
}

function refreshActions() {
  for (const m of messages) if (m.el) m.el.querySelector(".meta").replaceWith(actions(m));
}

export async function open(thread) {
  stop();
  state.thread = thread;
  messages = [];
  olderCursor = null;
  $("chat-title").textContent = thread ? titleOf(thread) : "New chat";
  emit("thread-opened", thread);
  if (!thread) { await renderAll(); return; }
  box().replaceChildren(h("p", { class: "muted" }, "Loading…"));
  performance.mark("jan-open-start");
  try {
    const page = await api(`/v1/threads/${thread.id}/messages?limit=${PAGE}&order=desc`);
    messages = page.data.reverse().map(fromApi);
    olderCursor = page.has_more ? page.data[0]?.id ?? page.last_id : null;
    await renderAll();
    scrollToEnd(true);
    performance.measure("jan-open-thread", "jan-open-start");  // bench_ui.py reads this
  } catch (err) {
    box().replaceChildren(h("p", { class: "msg error" }, `Cannot open this thread: ${err.message}`));
  }
}

async function loadOlder() {
  const page = await api(`/v1/threads/${state.thread.id}/messages?limit=${PAGE}&order=desc&after=${olderCursor}`);
  const older = page.data.reverse().map(fromApi);
  messages = older.concat(messages);
  olderCursor = page.has_more ? older[0]?.id : null;
  await renderAll(true, older);
}

function scrollToEnd(force = false) {
  const el = box();
  if (force || follow) el.scrollTop = el.scrollHeight;
  $("jump-latest").hidden = follow || !state.streaming;
}

async function ensureThread() {
  if (state.thread) return state.thread;
  const s = effective();
  const entry = state.draft || s.entry;
  const thread = await api("/v1/threads", { method: "POST", body: { title: "", assistants: entry ? [entry] : [] } });
  state.thread = thread;
  state.draft = null;
  emit("thread-changed", thread);
  emit("thread-opened", thread);
  return thread;
}

export async function send(text) {
  if (!text.trim() || state.streaming) return;
  try {
    const thread = await ensureThread();
    const saved = await api(`/v1/threads/${thread.id}/messages`, { method: "POST", body: { role: "user", content: text } });
    const m = fromApi(saved);
    if (!messages.length) box().replaceChildren();
    messages.push(m);
    box().append(bubble(m));
    follow = true;
    scrollToEnd(true);
    await generate();
  } catch (err) {
    toast(`Cannot send: ${err.message}`);
  }
}

function history(s) {
  const out = [];
  if (s.instructions) out.push({ role: "system", content: s.instructions });
  for (const m of messages) {
    if (m.role === "user" || m.role === "assistant") out.push({ role: m.role, content: m.text });
  }
  return out;
}

function setBusy(busy) {
  $("send-btn").hidden = busy;
  $("stop-btn").hidden = !busy;
}

async function generate() {
  const s = effective();
  if (!s.model) { toast("No model: download one on the Models page"); return; }
  if (usesServerTools(s.entry?.assistant_id)) { await replyByRun(s); return; }
  const controller = new AbortController();
  const threadId = state.thread.id;  // the user may open another thread mid-stream
  state.streaming = controller;
  setBusy(true);
  const prompt = history(s);
  const m = { id: null, role: "assistant", text: "", meta: {} };
  messages.push(m);
  refreshActions();
  const el = bubble(m);
  const body = el.querySelector(".bubble");
  body.classList.add("streaming");
  body.setAttribute("aria-busy", "true");
  box().append(el);
  scrollToEnd();
  const { calls, stopped, failed } = await streamReply(m, body, {
    signal: controller.signal,
    prepare: () => ensureContext(s),
    request: { ...s.params, model: s.model, messages: prompt, stream: true },
    onPaint: () => scrollToEnd(),
  });
  if (state.streaming === controller) state.streaming = null;
  setBusy(Boolean(state.streaming));
  body.removeAttribute("aria-busy");
  body.classList.remove("streaming");
  if (failed && !m.text && !calls.length) {
    if (state.thread?.id !== threadId) return;
    messages.pop();
    el.remove();
    toast(`The model failed: ${failed.message}`);
    box().append(h("p", { class: "msg error", role: "alert" }, `Error: ${failed.message}`));
    refreshActions();
    return;
  }
  const meta = { model: s.model };
  if (stopped || failed) meta.jan_stopped = "true";
  if (calls.length) meta.tool_calls = JSON.stringify(calls).slice(0, 512);  // metadata cap
  try {
    const saved = await api(`/v1/threads/${threadId}/messages`, {
      method: "POST", body: { role: "assistant", content: m.text || "…", metadata: meta } });
    Object.assign(m, fromApi(saved), { text: m.text });
  } catch (err) { toast(`The reply could not be saved: ${err.message}`); }
  if (state.thread?.id !== threadId) return;  // saved where it belongs; this view moved on
  const [html] = await renderMarkdown([m.text]);
  el.replaceWith(bubble(m, html));
  refreshActions();
  scrollToEnd();
  await afterExchange(messages.find((x) => x.role === "user")?.text);
}

// Server tools run only inside a run (see run-reply.js); the run saves its own messages, so the
// thread is reloaded once it ends.
async function replyByRun(s) {
  const controller = new AbortController();
  const threadId = state.thread.id;
  state.streaming = controller;
  setBusy(true);
  const host = h("div", { class: "msg assistant run", "aria-busy": "true" },
    h("p", { class: "muted" }, "Working (this assistant uses server tools)…"));
  box().append(host);
  scrollToEnd();
  try {
    const { runReply } = await import("./run-reply.js");
    const run = await runReply({ threadId, assistantId: s.entry.assistant_id, model: s.model,
      params: s.params, signal: controller.signal, host, onChange: () => scrollToEnd() });
    if (run.status === "failed") toast(`The run failed: ${run.last_error?.message || "unknown error"}`);
  } catch (err) { toast(`The run failed: ${err.message}`); }
  if (state.streaming === controller) state.streaming = null;
  setBusy(Boolean(state.streaming));
  if (state.thread?.id !== threadId) return;
  await open(state.thread);
  await afterExchange(messages.find((x) => x.role === "user")?.text);
}

export function stop() {
  if (state.streaming) state.streaming.abort();
}

async function dropFrom(index) {
  // Delete messages[index:] from the thread (edit and regenerate rewrite the tail).
  const tail = messages.slice(index);
  for (const m of tail) {
    if (m.id) await api(`/v1/threads/${state.thread.id}/messages/${m.id}`, { method: "DELETE" });
    m.el?.remove();
  }
  messages = messages.slice(0, index);
}

async function regenerate() {
  if (state.streaming) return;
  const last = messages.at(-1);
  if (!last || last.role !== "assistant") return;
  try {
    await dropFrom(messages.length - 1);
    await generate();
  } catch (err) { toast(`Cannot regenerate: ${err.message}`); }
}

function edit(m) {
  if (state.streaming) return;
  m.el.replaceChildren(editor(m.text, async (text) => {
    try {
      await dropFrom(messages.indexOf(m));
      await send(text);
    } catch (err) { toast(`Cannot resend: ${err.message}`); }
  }, () => renderAll()));
  m.el.querySelector("textarea").focus();
}

export function init() {
  const input = $("composer-input");
  const grow = () => { input.style.height = "auto"; input.style.height = `${Math.min(input.scrollHeight, 320)}px`; };
  input.addEventListener("input", grow);
  input.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("composer").requestSubmit(); }
    if (e.key === "Escape" && state.streaming) { e.preventDefault(); stop(); }
  });
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim() || state.streaming) return;
    input.value = "";
    grow();
    send(text);
  });
  $("stop-btn").addEventListener("click", () => { stop(); input.focus(); });
  box().addEventListener("scroll", () => {
    const el = box();
    follow = el.scrollTop + el.clientHeight >= el.scrollHeight - 40;
    $("jump-latest").hidden = follow || !state.streaming;
  });
  $("jump-latest").addEventListener("click", () => { follow = true; scrollToEnd(true); });
}
