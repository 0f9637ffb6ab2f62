"""Turn a request into prompt tokens: the model's own chat template, else fallbacks.

Order: ``LoadSpec.chat_template`` (explicit override) → the GGUF ``tokenizer.chat_template``
(rendered by llama-cpp-python's ``Jinja2ChatFormatter``, as its high-level API does) → Jan's
``prompt_template`` (``{system_message}`` / ``{prompt}`` placeholders) → ChatML.
"""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.llama_chat_format import Jinja2ChatFormatter

from jan.sdk.inference import ChatMessage, GenerationRequest, LoadSpec

from .errors import RequestError
from .native import Model
from .toolsyntax import GENERIC, CallSyntax, detect
from .tooluse import active_tools, generic_messages

__all__ = ["RequestError", "Prompter"]

CHATML_STOP = "<|im_end|>"


class Prompter:
    def __init__(self, model: Model, spec: LoadSpec) -> None:
        self.model = model
        self.eos_text = model.token_text(model.eos)
        bos_text = model.token_text(model.bos)
        template = spec.chat_template or model.meta("tokenizer.chat_template")
        self.jinja: Jinja2ChatFormatter | None = None
        self.prompt_template = spec.prompt_template
        if template:
            self.kind = "spec" if spec.chat_template else "gguf"
            self.jinja = Jinja2ChatFormatter(template, self.eos_text, bos_text)
        elif self.prompt_template and "{prompt}" in self.prompt_template:
            self.kind = "prompt_template"
        else:
            self.kind = "chatml"
        # How this model writes tool calls; templates that ignore tools get our generic prompt.
        self.syntax: CallSyntax = detect(template) if self.jinja is not None else GENERIC
        self.stops = [s for s in {*spec.stop, self.eos_text} if s]
        if self.kind == "chatml":
            self.stops.append(CHATML_STOP)

    def tokens(self, req: GenerationRequest) -> tuple[list[int], str]:
        """Prompt tokens and the name of the request field they came from (for errors)."""
        if req.messages is not None:
            if not req.messages:
                raise RequestError("messages must not be empty", param="messages")
            return self._chat(req), "messages"
        if req.prompt is None:
            raise RequestError("either messages or prompt is required", param="messages")
        toks = self.model.tokenize(req.prompt, add_special=True, parse_special=True)
        if not toks:
            toks = [self.model.bos]
        return toks, "prompt"

    def _chat(self, req: GenerationRequest) -> list[int]:
        messages = req.messages or []
        native = self.syntax.native
        if not native:  # tools and tool turns as plain text the template can carry
            messages = generic_messages(req, self.syntax)
        if self.jinja is not None:
            tools = [t.model_dump(exclude_none=True) for t in active_tools(req)] if native else []
            try:
                text = self.jinja(messages=[_msg(m) for m in messages],
                                  tools=tools or None).prompt
            except Exception as exc:  # a template's raise_exception() or a Jinja error
                raise RequestError(f"chat template rejected the messages: {exc}",
                                   param="messages") from exc
            # The template placed any BOS itself, as llama-cpp-python's high-level API assumes.
            return self.model.tokenize(text, add_special=False, parse_special=True)
        if self.kind == "prompt_template":
            text = _jan_template(self.prompt_template or "", messages)
        else:
            text = _chatml(messages)
        return self.model.tokenize(text, add_special=self.model.add_bos, parse_special=True)


def _msg(m: ChatMessage) -> dict[str, Any]:
    """A message as chat templates expect it (tool-call arguments as objects, as HF's do)."""
    d: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        d["tool_calls"] = [{"id": c.id, "type": "function",
                            "function": {"name": c.name, "arguments": _args(c.arguments)}}
                           for c in m.tool_calls]
    if m.role == "tool":
        d["tool_call_id"] = m.tool_call_id
        if m.name:
            d["name"] = m.name
    return d


def _args(arguments: str) -> Any:
    try:
        return json.loads(arguments or "{}")
    except ValueError:
        return arguments


def _chatml(messages: list[ChatMessage]) -> str:
    body = "".join(f"<|im_start|>{m.role}\n{m.content or ''}<|im_end|>\n" for m in messages)
    return body + "<|im_start|>assistant\n"


def _jan_template(template: str, messages: list[ChatMessage]) -> str:
    """Jan/cortex style: text before ``{system_message}`` opens a system turn, text between it
    and ``{prompt}`` opens a user turn, text after ``{prompt}`` opens the assistant's turn."""
    if "{system_message}" in template:
        sys_pre, rest = template.split("{system_message}", 1)
    else:
        sys_pre, rest = "", template
    user_pre, ai_pre = rest.split("{prompt}", 1)
    out = []
    for m in messages:
        if m.role == "system":
            out.append(sys_pre + (m.content or ""))
        elif m.role == "assistant":
            out.append(ai_pre + (m.content or ""))
        else:
            out.append(user_pre + (m.content or ""))
    return "".join(out) + ai_pre
