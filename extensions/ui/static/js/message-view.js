// Pure helpers for one message: API shape to view shape, code copy buttons, tool calls.
import { h, copyText } from "./dom.js";

function textOf(m) {
  return (m.content || []).filter((c) => c.type === "text").map((c) => c.text.value).join("\n");
}

export function fromApi(m) {
  const role = m.jan_role || m.role;
  return { id: m.id, role, text: textOf(m), meta: m.metadata || {} };
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
  return list.map((c) => h("details", {},
    h("summary", {}, `Tool call: ${c?.function?.name || c?.name || "tool"}`),
    h("pre", {}, typeof c === "string" ? c : JSON.stringify(c?.function?.arguments ?? c, null, 2))));
}
