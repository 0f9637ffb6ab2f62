// The right panel: the thread's assistant, model, instructions and parameters, saved into the
// thread (thread.json "assistants[0]") so they apply to every later turn. Precedence as in the
// server: model.json < assistant < thread (< what a single request adds).
import { api, listAll } from "./api.js";
import { $, h, toast } from "./dom.js";
import { state, on, emit } from "./state.js";

const NUMBERS = ["temperature", "top_p", "max_tokens"];
const SAMPLING = ["temperature", "top_p", "max_tokens", "stop", "top_k", "min_p", "seed",
  "frequency_penalty", "presence_penalty", "repeat_penalty"];
const started = new Set();

function entryOf(thread) {
  return (thread && thread.assistants && thread.assistants[0]) || state.draft || null;
}

function assistantOf(id) {
  return state.assistants.find((a) => a.id === id) || state.assistants.find((a) => a.id === "jan") || state.assistants[0] || null;
}

function defaultModel() {
  const ids = state.models.map((m) => m.id);
  return ids.includes("smollm2-135m-instruct") ? "smollm2-135m-instruct" : ids[0] || null;
}

// What the next reply uses: {model, instructions, params, ctxLen, entry}.
export function effective() {
  const entry = entryOf(state.thread);
  const assistant = assistantOf(entry?.assistant_id);
  const model = [entry?.model?.id, assistant?.model].find((m) => m && m !== "*" && state.models.some((x) => x.id === m))
    || defaultModel();
  const params = {};
  for (const k of ["temperature", "top_p"]) if (typeof assistant?.[k] === "number") params[k] = assistant[k];
  // Only sampling keys go into the request: Jan's desktop files also keep "stream" and the like.
  for (const [k, v] of Object.entries(entry?.model?.parameters || {})) {
    if (SAMPLING.includes(k) && v !== null && v !== "") params[k] = v;
  }
  if (Array.isArray(params.stop) && !params.stop.length) delete params.stop;
  return {
    model,
    instructions: entry?.instructions || assistant?.instructions || "",
    params,
    ctxLen: entry?.model?.settings?.ctx_len || null,
    entry: entry || (assistant ? { assistant_id: assistant.id, assistant_name: assistant.name || assistant.id,
                                   model: { id: model || "*", settings: {}, parameters: {} } } : null),
  };
}

// Server-side tools (MCP, extensions) are shown by the assistants API as jan_server_tools:
// a thread with such an assistant replies through a run (run-reply.js).
export function usesServerTools(assistantId) {
  return Boolean(state.assistants.find((a) => a.id === assistantId)?.jan_server_tools?.length);
}

// A thread with its own context length loads the model with it (a load-time setting).
export async function ensureContext(s) {
  if (!s.ctxLen || !s.model) return;
  const key = `${s.model}@${s.ctxLen}`;
  if (started.has(key)) return;
  await api(`/v1/models/${encodeURIComponent(s.model)}/start`, { method: "POST", body: { ctx_len: s.ctxLen } });
  started.add(key);
}

function fillSelect(select, items, value, label) {
  select.replaceChildren(...items.map((i) => h("option", { value: i.id, selected: i.id === value }, label(i))));
}

export function fill() {
  const entry = entryOf(state.thread);
  const s = effective();
  fillSelect($("p-assistant"), state.assistants, assistantOf(entry?.assistant_id)?.id, (a) => a.name || a.id);
  fillSelect($("p-model"), state.models, s.model, (m) => m.name || m.id);
  $("p-instructions").value = entry?.instructions || "";
  const p = entry?.model?.parameters || {};
  for (const k of NUMBERS) $(`p-${k}`).value = p[k] ?? "";
  $("p-stop").value = (p.stop || []).join("\n");
  $("p-ctx_len").value = entry?.model?.settings?.ctx_len ?? "";
  $("chat-model").textContent = s.model ? `· ${s.model}` : "· no model";
}

function readForm() {
  const assistant = assistantOf($("p-assistant").value);
  const parameters = {};
  for (const k of NUMBERS) {
    const v = $(`p-${k}`).value.trim();
    if (v !== "") parameters[k] = k === "max_tokens" ? parseInt(v, 10) : parseFloat(v);
  }
  const stop = $("p-stop").value.split("\n").map((s) => s.trim()).filter(Boolean);
  if (stop.length) parameters.stop = stop.slice(0, 4);
  const settings = {};
  const ctx = $("p-ctx_len").value.trim();
  if (ctx) settings.ctx_len = parseInt(ctx, 10);
  const instructions = $("p-instructions").value.trim();
  return {
    assistant_id: assistant?.id || "jan",
    assistant_name: assistant?.name || assistant?.id || "Jan",
    model: { id: $("p-model").value || "*", settings, parameters },
    instructions: instructions || null,
  };
}

async function save(e) {
  e.preventDefault();
  const entry = readForm();
  if (!state.thread) {
    state.draft = entry;
    toast("Saved: used by this new chat");
    fill();
    return;
  }
  try {
    const updated = await api(`/v1/threads/${state.thread.id}`, { method: "POST", body: { assistants: [entry] } });
    state.thread = updated;
    emit("thread-changed", updated);
    toast("Saved to the thread");
    fill();
  } catch (err) { toast(`Not saved: ${err.message}`); }
}

export async function refreshLists() {
  try {
    const [models, assistants] = await Promise.all([api("/v1/models"), listAll("/v1/assistants")]);
    state.models = models.data.filter((m) => m.downloaded !== false);
    state.assistants = assistants;
  } catch (err) { toast(`Cannot load models or assistants: ${err.message}`); }
  fill();
}

export function init() {
  $("panel-form").addEventListener("submit", save);
  on("thread-opened", fill);
  on("lists-changed", refreshLists);
  return refreshLists();
}
