// Streams one chat completion into a reply's bubble as it is generated: the new text is painted
// at most ~20 times a second however fast tokens arrive, tool-call fragments are joined into
// whole calls, and a stop (abort) is told apart from a failure. Saving the reply is chat.js's.
import { stream } from "./api.js";

// m: the reply ({text}), its text grows as tokens arrive. prepare: awaited first (e.g. loading
// the model); its failure counts as the stream's. onPaint: after each paint (keep it in view).
export async function streamReply(m, body, { signal, prepare, request, onPaint }) {
  const live = document.createTextNode("");
  body.replaceChildren(live);
  let pending = false;
  const paint = () => {
    if (pending) return;
    pending = true;
    setTimeout(() => requestAnimationFrame(() => {
      pending = false;
      live.appendData(m.text.slice(live.length));
      onPaint();
    }), 50);
  };
  const out = { calls: [], stopped: false, failed: null };
  try {
    await prepare();
    await stream("/v1/chat/completions", {
      signal,
      body: request,
      onEvent: (_name, chunk) => {
        const delta = chunk.choices?.[0]?.delta;
        if (delta?.content) { m.text += delta.content; paint(); }
        for (const t of delta?.tool_calls || []) {  // shown collapsed once the reply is saved
          const call = (out.calls[t.index ?? 0] ||= { id: t.id, function: { name: "", arguments: "" } });
          if (t.function?.name) call.function.name = t.function.name;
          if (t.function?.arguments) call.function.arguments += t.function.arguments;
        }
      },
    });
  } catch (err) {
    if (err.name === "AbortError") out.stopped = true; else out.failed = err;
  }
  return out;
}
