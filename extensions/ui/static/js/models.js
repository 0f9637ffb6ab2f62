// The models page: local models (size, context, loaded state, start/stop, delete), the
// catalogue with Download, and live pulls (progress, cancel, resume) from /v1/models/pull.
import { api, stream } from "./api.js";
import { $, h, toast, confirmDialog, formatBytes } from "./dom.js";
import { emit } from "./state.js";

// job id -> AbortController of its newest watcher. A resumed pull keeps its job id, and the
// cancelled attempt's stream may still be open (or have events in flight) when the new one
// starts: only the newest watcher may touch the card, or a late "cancelled" hides the resume.
const watching = new Map();

async function loadedIds() {
  try {
    const health = await api("/health");
    return new Set((health.models || []).map((m) => m.id || m.model_id));
  } catch { return new Set(); }
}

function localCard(m, loaded) {
  const meta = m.metadata || {};
  const running = loaded.has(m.id);
  return h("div", { class: "card", "data-model": m.id },
    h("h3", {}, m.name || m.id),
    h("div", { class: "small muted" }, m.id),
    h("div", {},
      h("span", { class: `badge ${running ? "on" : ""}` }, running ? "loaded" : "not loaded"), " ",
      h("span", { class: "badge" }, formatBytes(meta.size)), " ",
      h("span", { class: "badge" }, `ctx ${m.settings?.ctx_len ?? meta.context_length ?? "?"}`)),
    h("div", { class: "acts" },
      h("button", { type: "button", onclick: () => startStop(m, running) }, running ? "Stop" : "Start"),
      h("button", { type: "button", class: "ghost", onclick: () => remove(m), "aria-label": `Delete ${m.id}` }, "Delete")));
}

async function startStop(m, running) {
  try {
    toast(running ? `Stopping ${m.id}…` : `Loading ${m.id}…`);
    await api(`/v1/models/${encodeURIComponent(m.id)}/${running ? "stop" : "start"}`, { method: "POST" });
    toast(running ? `${m.id} stopped` : `${m.id} is loaded`);
  } catch (err) { toast(err.message); }
  show();
}

async function remove(m) {
  if (!await confirmDialog(`Delete the model “${m.id}” and its files?`)) return;
  try {
    await api(`/v1/models/${encodeURIComponent(m.id)}`, { method: "DELETE" });
    toast(`${m.id} deleted`);
    emit("lists-changed");
  } catch (err) { toast(err.message); }
  show();
}

function catalogCard(m) {
  const meta = m.metadata || {};
  return h("div", { class: "card" },
    h("h3", {}, m.name || m.id),
    h("p", { class: "small muted" }, m.description || ""),
    h("div", {}, h("span", { class: "badge" }, meta.size_label ? `${meta.size_label} params` : "size ?"), " ",
      m.size ? h("span", { class: "badge" }, formatBytes(m.size)) : null),
    h("div", { class: "acts" }, m.downloaded
      ? h("span", { class: "badge on" }, "downloaded")
      : h("button", { type: "button", class: "primary", onclick: () => pull(m.id), "aria-label": `Download ${m.id}` }, "Download")));
}

function pullCard(job) {
  const pct = job.total_bytes ? Math.floor((100 * job.downloaded_bytes) / job.total_bytes) : null;
  const label = `${formatBytes(job.downloaded_bytes)} of ${job.total_bytes ? formatBytes(job.total_bytes) : "?"}`;
  const done = job.status !== "downloading";
  return h("div", { class: "card pull", "data-job": job.id, "data-status": job.status },
    h("h3", {}, job.model),
    h("progress", { max: 100, value: pct ?? (done ? 100 : null), "aria-label": `Download of ${job.model}` }),
    h("div", { class: "small" }, job.status === "failed" ? `Failed: ${job.error?.message || ""}` : `${job.status} · ${label}${pct !== null ? ` (${pct}%)` : ""}`),
    h("div", { class: "acts" },
      done ? null : h("button", { type: "button", onclick: () => cancel(job) }, "Cancel"),
      job.status === "cancelled" || job.status === "failed"
        ? h("button", { type: "button", class: "primary", onclick: () => pull(job.model) }, "Resume") : null));
}

function showJob(job) {
  const cards = $("pulls");
  const card = pullCard(job);
  const old = cards.querySelector(`[data-job="${job.id}"]`);
  if (old) old.replaceWith(card); else cards.prepend(card);
}

async function watch(job, { restart = false } = {}) {
  if (watching.has(job.id)) {
    if (!restart) return;
    watching.get(job.id).abort();
  }
  const ctl = new AbortController();
  watching.set(job.id, ctl);
  const current = () => watching.get(job.id) === ctl;
  let last = job, stale = false;
  try {
    await stream(`/v1/models/pull/${job.id}?stream=true`, {
      method: "GET", signal: ctl.signal,
      onEvent: (_n, j) => { if (current()) { last = j; showJob(j); } } });
  } catch (err) {
    if (err.name !== "AbortError") toast(err.message);
  } finally {
    stale = !current();
    if (!stale) watching.delete(job.id);
  }
  if (!stale && last.status === "completed") { toast(`${last.model_id || last.model} is ready`); emit("lists-changed"); show(); }
}

export async function pull(ref) {
  try {
    const job = await api("/v1/models/pull", { method: "POST", body: { model: ref } });
    showJob(job);
    watch(job, { restart: true });
  } catch (err) { toast(err.message); }
}

async function cancel(job) {
  try { showJob(await api(`/v1/models/pull/${job.id}`, { method: "DELETE" })); } catch (err) { toast(err.message); }
}

export async function show() {
  try {
    const [local, catalog, pulls, loaded] = await Promise.all([
      api("/v1/models"), api("/v1/models/catalog").catch(() => ({ data: [] })),
      api("/v1/models/pull").catch(() => ({ data: [] })), loadedIds()]);
    const here = local.data.filter((m) => m.downloaded !== false);
    $("local-models").replaceChildren(...(here.length ? here.map((m) => localCard(m, loaded)) : [h("p", { class: "muted" }, "No model yet: download one below.")]));
    $("catalog").replaceChildren(...catalog.data.map(catalogCard));
    for (const job of pulls.data) { showJob(job); if (job.status === "downloading") watch(job); }
  } catch (err) { toast(`Cannot list models: ${err.message}`); }
}

export function init() {
  $("pull-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const ref = $("pull-ref").value.trim();
    if (ref) pull(ref);
  });
}
