// Replies through a run when the thread's assistant uses server-side tools (MCP servers,
// extension tools): only a run can call them, and it pauses ("requires_action" with
// jan_tool_approvals) for every call the approval policy does not allow. The card shows the
// tool, its server and its full arguments (as text: arguments are model output, never HTML),
// with Approve / Always allow / Deny; the decision goes through POST /v1/tools/approvals/{id}
// and the run then goes on by itself (or, denied, tells the model the call was refused).
// Imported on first use by chat.js: most chats never need it.
import { api } from "./api.js";
import { h, toast } from "./dom.js";

const POLL_MS = 300;
const TERMINAL = new Set(["completed", "failed", "cancelled", "expired", "incomplete"]);

const LABELS = { once: "Approved", always: "Approved: always allowed from now on" };

function approvalCard(a) {
  const buttons = [];
  const status = h("p", { class: "small", role: "status" }, "Waiting for your decision");
  const card = h("section", { class: "approval", "data-approval": a.approval_id, "data-status": "pending",
                              "aria-label": `Tool call ${a.name}` },
    h("h3", {}, "Allow this tool call?"),
    h("p", {}, h("strong", { class: "tool-name" }, a.name), a.server ? ` from ${a.server}` : ""),
    h("pre", { class: "args", tabindex: "0", "aria-label": "Arguments" }, JSON.stringify(a.arguments ?? {}, null, 2)),
    h("div", { class: "acts" }, buttons), status);
  const decide = async (approve, scope) => {
    for (const b of buttons) b.disabled = true;
    try {
      const decided = await api(`/v1/tools/approvals/${encodeURIComponent(a.approval_id)}`,
        { method: "POST", body: { approve, scope } });
      card.dataset.status = decided.status;
      status.textContent = decided.status === "approved" ? LABELS[scope] : "Denied: the tool did not run";
    } catch (err) {
      toast(`The decision was not saved: ${err.message}`);
      for (const b of buttons) b.disabled = false;
    }
  };
  buttons.push(
    h("button", { type: "button", class: "primary", onclick: () => decide(true, "once") }, "Approve"),
    h("button", { type: "button", onclick: () => decide(true, "always") }, "Always allow"),
    h("button", { type: "button", class: "ghost", onclick: () => decide(false, "once") }, "Deny"));
  card.querySelector(".acts").append(...buttons);
  return card;
}

function pause(ms, signal) {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
  });
}

// Starts a run on the thread and follows it to its end; approval cards go into `host`.
// Aborting `signal` (the Stop button) cancels the run. Resolves with the final run.
export async function runReply({ threadId, assistantId, model, params, signal, host, onChange }) {
  const body = { assistant_id: assistantId, model };
  for (const k of ["temperature", "top_p"]) if (typeof params[k] === "number") body[k] = params[k];
  if (Number.isInteger(params.max_tokens)) body.max_completion_tokens = params.max_tokens;
  const base = `/v1/threads/${threadId}/runs`;
  let run = await api(base, { method: "POST", body });
  const cancel = () => api(`${base}/${run.id}/cancel`, { method: "POST" }).catch(() => null);
  const shown = new Set();
  while (!TERMINAL.has(run.status)) {
    if (signal.aborted) { await cancel(); return { ...run, status: "cancelled" }; }
    const approvals = run.status === "requires_action" ? run.required_action?.jan_tool_approvals : null;
    if (run.status === "requires_action" && !approvals) {
      await cancel();  // client-side function tools: the UI has nothing to run them with
      throw new Error("this assistant asks for client-side tool outputs, which the UI cannot provide");
    }
    for (const a of approvals || []) {
      if (shown.has(a.approval_id)) continue;
      shown.add(a.approval_id);
      const card = approvalCard(a);
      host.append(card);
      card.querySelector("button").focus();
      onChange?.();
    }
    await pause(POLL_MS, signal);
    if (!signal.aborted) run = await api(`${base}/${run.id}`);
  }
  return run;
}
