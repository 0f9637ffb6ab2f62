// Pure helpers for one message: API shape to view shape, code copy buttons, tool calls.
import { h, copyText } from "./dom.js";

function textOf(m) {
  return (m.content || []).filter((c) => c.type === "text").map((c) => c.text.value).join("\n");
}

// file_citation annotations (file_search in runs): the text's 【i:j†file】 markers become [n]
// and the cited files with their quotes are listed under the reply (as text, never HTML).
function citationsOf(m, text) {
  const notes = (m.content || []).filter((c) => c.type === "text")
    .flatMap((c) => c.text.annotations || []).filter((a) => a?.type === "file_citation" && a.text);
  const cites = notes.map((a, i) => {
    const name = /†([^】]*)】?$/.exec(a.text)?.[1] || a.file_citation?.file_id || "file";
    text = text.split(a.text).join(`[${i + 1}]`);
    return { n: i + 1, name, fileId: a.file_citation?.file_id || "", quote: a.file_citation?.quote || "" };
  });
  return { text, cites };
}

export function fromApi(m) {
  const role = m.jan_role || m.role;
  const { text, cites } = citationsOf(m, textOf(m));
  return { id: m.id, role, text, meta: m.metadata || {}, cites };
}

export function citationsView(cites) {
  if (!cites?.length) return null;
  return h("aside", { class: "citations", "aria-label": "Sources" }, h("h4", {}, "Sources"),
    h("ol", {}, cites.map((c) => h("li", { "data-file": c.fileId },
      h("details", {}, h("summary", {}, `[${c.n}] ${c.name}`), h("blockquote", {}, c.quote))))));
}

export function addCodeButtons(root) {
  for (const block of root.querySelectorAll(".code")) {
    if (block.querySelector(".copy")) continue;
    block.append(h("button", { type: "button", class: "copy", "aria-label": "Copy code",
                               onclick: () => copyText(block.querySelector("pre").textContent) }, "Copy"));
  }
}

export function toolDetails(m) {
  // Tool calls and results (stored by the tool-calling engine) shown collapsed.
  const calls = m.meta.tool_calls;
  if (m.role === "tool") {
    return h("details", {}, h("summary", {}, "Tool result"), h("pre", {}, m.text));
  }
  if (!calls) return null;
  let parsed = calls;
  try { if (typeof calls === "string") parsed = JSON.parse(calls); } catch { /* show raw */ }
  const list = Array.isArray(parsed) ? parsed : [parsed];
  // OpenAI-style calls ({function}) or Jan's records ({tool: {function}, response: {content}}).
  return list.map((c) => {
    const fn = c?.function || c?.tool?.function;
    const result = c?.response?.content;
    return h("details", {},
      h("summary", {}, `Tool call: ${fn?.name || c?.name || "tool"}`),
      h("pre", {}, typeof c === "string" ? c : JSON.stringify(fn?.arguments ?? c, null, 2)),
      typeof result === "string" ? h("pre", { class: "result" }, `Result: ${result}`) : null);
  });
}

// The edit-and-resend form for a user message: Enter saves, Shift+Enter a new line, Esc cancels.
export function editor(text, onSave, onCancel) {
  const area = h("textarea", { "aria-label": "Edit message", rows: 3 });
  area.value = text;
  const save = () => { if (area.value.trim()) onSave(area.value); };
  area.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); save(); }
    if (e.key === "Escape") { e.preventDefault(); onCancel(); }
  });
  return h("div", { class: "stack" }, area, h("div", { class: "row" },
    h("button", { type: "button", class: "primary", onclick: save }, "Save & resend"),
    h("button", { type: "button", class: "ghost", onclick: onCancel }, "Cancel")));
}
