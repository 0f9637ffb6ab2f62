// The assistants page (list, create, edit plain assistants) and the status page.
import { api, listAll } from "./api.js";
import { $, h, toast } from "./dom.js";
import { state, emit } from "./state.js";

function assistantCard(a) {
  // jan_sandbox: only on assistants with code (index.py), from the sandbox service.
  const sandbox = a.jan_sandbox;
  const failed = sandbox?.last_error;
  return h("div", { class: "card", "data-assistant": a.id },
    h("h3", {}, a.name || a.id),
    h("div", { class: "small muted" }, `${a.id} · model ${a.model || "*"}`),
    h("p", { class: "small" }, (a.instructions || "").slice(0, 160)),
    sandbox ? h("div", { class: "small", "data-sandbox": sandbox.level || "unknown" },
      h("span", { class: "badge" }, `code · sandbox ${sandbox.level || "not probed yet"}`),
      failed ? h("span", { class: "badge bad", title: new Date(failed.at * 1000).toLocaleString() },
        `last error (${failed.code}): ${failed.message}`) : null) : null,
    h("div", { class: "acts" }, h("button", { type: "button", onclick: () => edit(a), "aria-label": `Edit ${a.name || a.id}` }, "Edit")));
}

function edit(a) {
  $("assistant-form-title").textContent = a ? `Edit ${a.name || a.id}` : "New assistant";
  $("as-id").value = a?.id || "";
  $("as-name").value = a?.name || "";
  $("as-instructions").value = a?.instructions || "";
  $("as-temperature").value = a?.temperature ?? "";
  $("as-top_p").value = a?.top_p ?? "";
  const models = [{ id: "*", name: "Any model" }, ...state.models];
  $("as-model").replaceChildren(...models.map((m) => h("option", { value: m.id, selected: m.id === (a?.model || "*") }, m.name || m.id)));
  if (a) $("as-name").focus();
}

async function save(e) {
  e.preventDefault();
  const id = $("as-id").value;
  const body = { name: $("as-name").value.trim(), model: $("as-model").value, instructions: $("as-instructions").value };
  for (const k of ["temperature", "top_p"]) {
    const v = $(`as-${k}`).value.trim();
    if (v !== "") body[k] = parseFloat(v);
  }
  try {
    await api(id ? `/v1/assistants/${encodeURIComponent(id)}` : "/v1/assistants", { method: "POST", body });
    toast("Assistant saved");
    emit("lists-changed");
    showAssistants();
  } catch (err) { toast(`Not saved: ${err.message}`); }
}

export async function showAssistants() {
  try {
    const list = await listAll("/v1/assistants");
    state.assistants = list;
    $("assistant-list").replaceChildren(...list.map(assistantCard));
  } catch (err) { toast(`Cannot list assistants: ${err.message}`); }
  edit(null);
}

function row(...cells) { return h("tr", {}, cells.map((c, i) => h(i ? "td" : "th", { scope: i ? null : "row" }, c))); }

export async function showStatus() {
  const body = $("status-body");
  try {
    const s = await api("/health", {});
    if (!s.extensions) {
      body.replaceChildren(h("p", {}, "The server hides details without the API key."));
      return;
    }
    const exts = s.extensions.map((e) => row(e.id, h("span", { class: `badge ${e.state === "active" ? "on" : e.state === "failed" ? "bad" : ""}` }, e.state), e.reason || ""));
    const sandbox = s.sandbox ? (s.sandbox.level || s.sandbox.error || JSON.stringify(s.sandbox)) : "unknown";
    body.replaceChildren(
      h("table", { class: "status" }, h("tbody", {},
        row("Status", s.status), row("Version", s.version || "?"), row("Data folder", s.data_folder || "?"),
        row("Sandbox level", sandbox),
        row("Loaded models", (s.models || []).map((m) => m.id || m.model_id).join(", ") || "none"))),
      h("h2", {}, "Extensions"),
      h("table", { class: "status" }, h("thead", {}, h("tr", {}, h("th", {}, "Extension"), h("th", {}, "State"), h("th", {}, "Reason"))), h("tbody", {}, exts)),
      (s.manifest_errors || []).length ? h("div", {}, h("h2", {}, "Manifest errors"), h("pre", {}, JSON.stringify(s.manifest_errors, null, 2))) : null);
    const folder = $("models-folder");
    if (s.data_folder) folder.textContent = `${s.data_folder}/models/`;
  } catch (err) { body.replaceChildren(h("p", { role: "alert" }, `Cannot read status: ${err.message}`)); }
}

export function init() {
  $("assistant-form").addEventListener("submit", save);
  $("as-reset").addEventListener("click", () => edit(null));
}
