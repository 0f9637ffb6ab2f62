// The threads sidebar: newest activity first (the server's order_by=last_activity, kept as
// served; a thread with a new reply moves to the top), paged loading, search, rename, delete.
import { api, listAll } from "./api.js";
import { $, h, toast, confirmDialog } from "./dom.js";
import { state, emit, on } from "./state.js";

const PAGE = 50;
let threads = [];
let after = null;
let hasMore = true;
let loading = null;
let query = "";
let renaming = null;
let byActivity = "&order_by=last_activity";  // dropped if the threads provider lacks it

export function titleOf(t) { return (t && t.title) || "New chat"; }

function shown() {
  const q = query.toLowerCase();
  return threads.filter((t) => !q || titleOf(t).toLowerCase().includes(q));
}

function item(t) {
  const active = state.thread && state.thread.id === t.id;
  if (renaming === t.id) {
    const input = h("input", { value: titleOf(t), "aria-label": "New title", maxlength: 200 });
    input.addEventListener("keydown", (e) => {
      if (e.key === "Enter") { e.preventDefault(); rename(t, input.value); }
      if (e.key === "Escape") { renaming = null; render(); }
    });
    input.addEventListener("blur", () => { if (renaming === t.id) rename(t, input.value); });
    queueMicrotask(() => { input.focus(); input.select(); });
    return h("li", { class: active ? "active" : "" }, input);
  }
  return h("li", { class: active ? "active" : "", "data-thread": t.id },
    h("button", { type: "button", class: "open", "aria-current": active ? "true" : null,
                  title: titleOf(t), onclick: () => emit("open-thread", t) }, titleOf(t)),
    h("span", { class: "acts" },
      h("button", { type: "button", "aria-label": `Rename ${titleOf(t)}`, title: "Rename",
                    onclick: () => { renaming = t.id; render(); } }, "✎"),
      h("button", { type: "button", "aria-label": `Delete ${titleOf(t)}`, title: "Delete",
                    onclick: () => remove(t) }, "✕")));
}

export function render() {
  const list = $("thread-list");
  const items = shown().map(item);
  if (!items.length) items.push(h("li", { class: "muted small" }, query ? "No thread matches" : "No threads yet"));
  list.replaceChildren(...items);
  $("thread-more").hidden = !hasMore;
}

export async function loadMore() {
  if (!hasMore) return;
  if (loading) return loading;
  loading = (async () => {
    try {
      const path = (order) => `/v1/threads?limit=${PAGE}&order=desc${order}${after ? `&after=${after}` : ""}`;
      const page = await api(path(byActivity)).catch((err) => {
        if (err.status !== 400 || err.body?.error?.param !== "order_by") throw err;
        byActivity = "";  // e.g. the PostgreSQL provider: creation order it is
        return api(path(""));
      });
      const known = new Set(threads.map((t) => t.id));
      threads.push(...page.data.filter((t) => !known.has(t.id)));
      hasMore = page.has_more && page.data.length > 0;
      after = page.last_id || (page.data.at(-1) || {}).id || after;
      render();
    } catch (err) {
      toast(`Cannot list threads: ${err.message}`);
      hasMore = false;
    } finally {
      loading = null;
    }
  })();
  return loading;
}

async function search(value) {
  query = value.trim();
  render();
  if (query && hasMore) {  // titles are only searchable once loaded: fetch the rest once
    await loading;
    const rest = await listAll(`/v1/threads?order=desc${byActivity}${after ? `&after=${after}` : ""}`);
    const known = new Set(threads.map((t) => t.id));
    threads.push(...rest.filter((t) => !known.has(t.id)));
    hasMore = false;
    render();
  }
}

// A changed thread keeps its place; a new one, or one with a new reply (`active`), goes on top.
export function upsert(thread, active = false) {
  const i = threads.findIndex((t) => t.id === thread.id);
  if (i >= 0 && !active) threads[i] = thread;
  else {
    if (i >= 0) threads.splice(i, 1);
    threads.unshift(thread);
  }
  render();
}

// After a reply: the thread moves to the top (as the server now orders it), and the first
// exchange names it (the first user line, a few words).
export async function afterExchange(firstUserText) {
  const t = state.thread;
  if (!t) return;
  upsert(t, true);
  if (t.title || !firstUserText) return;
  const words = firstUserText.replace(/\s+/g, " ").trim().split(" ").slice(0, 8).join(" ");
  try {
    const updated = await api(`/v1/threads/${t.id}`, { method: "POST", body: { title: words.length > 60 ? `${words.slice(0, 57)}…` : words } });
    state.thread = updated;
    $("chat-title").textContent = titleOf(updated);
    emit("thread-changed", updated);
  } catch { /* an untitled thread is still fine */ }
}

async function rename(t, value) {
  renaming = null;
  const title = value.trim();
  if (!title || title === t.title) { render(); return; }
  try {
    const updated = await api(`/v1/threads/${t.id}`, { method: "POST", body: { title } });
    upsert(updated);
    emit("thread-updated", updated);
  } catch (err) { toast(`Rename failed: ${err.message}`); render(); }
}

async function remove(t) {
  if (!await confirmDialog(`Delete “${titleOf(t)}” and all its messages? This cannot be undone.`)) return;
  try {
    await api(`/v1/threads/${t.id}`, { method: "DELETE" });
    threads = threads.filter((x) => x.id !== t.id);
    render();
    emit("thread-deleted", t);
    toast("Thread deleted");
    $("new-chat").focus();
  } catch (err) { toast(`Delete failed: ${err.message}`); }
}

export function init() {
  $("thread-search").addEventListener("input", (e) => search(e.target.value));
  new IntersectionObserver((entries) => {
    if (entries.some((e) => e.isIntersecting)) loadMore();
  }).observe($("thread-more"));
  $("thread-list").addEventListener("scroll", (e) => {
    const el = e.target;
    if (el.scrollTop + el.clientHeight > el.scrollHeight - 200) loadMore();
  });
  on("thread-changed", upsert);
  return loadMore();
}
