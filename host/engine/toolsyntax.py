"""How each model family writes a tool call: one table, easy to extend.

A family is recognised from the chat template text (the first row whose markers all appear
wins); templates that know nothing of tools get ``GENERIC``, our own Hermes-like syntax that the
generic tool prompt (``toolprompt``) teaches the model. Every syntax is JSON objects of the shape
``{"name": ..., "<args_key>": {...}}`` wrapped in family markers, so one parser and one grammar
builder serve them all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CallSyntax:
    name: str
    starts: tuple[str, ...]  # text that opens a call (or, in list form, the list of calls)
    end: str = ""  # text that closes each call ("" = the object's closing brace does)
    args_key: str = "arguments"  # the other accepted key is "parameters"
    list_form: bool = False  # [TOOL_CALLS][{...}, {...}]
    bare_json: bool = False  # a reply that starts with '{"' is a call too (Llama 3.x)
    parallel: bool = True  # whether the family can write several calls in one reply
    native: bool = True  # the model's own template renders tools (else our prompt does)
    detect: tuple[str, ...] = ()  # markers in the chat template that identify the family


HERMES = CallSyntax("hermes", starts=("<tool_call>",), end="</tool_call>",
                    detect=("<tool_call>",))
LLAMA3 = CallSyntax("llama3", starts=("<|python_tag|>",), args_key="parameters",
                    bare_json=True, parallel=False, detect=("<|python_tag|>",))
LLAMA3_JSON = CallSyntax("llama3", starts=("<|python_tag|>",), args_key="parameters",
                         bare_json=True, parallel=False,
                         detect=("<|start_header_id|>", "ipython", "tools"))
MISTRAL = CallSyntax("mistral", starts=("[TOOL_CALLS]",), list_form=True,
                     detect=("[TOOL_CALLS]",))
GENERIC = CallSyntax("generic", starts=("<tool_call>",), end="</tool_call>", native=False)

FAMILIES: tuple[CallSyntax, ...] = (HERMES, MISTRAL, LLAMA3, LLAMA3_JSON)


def detect(template: str | None) -> CallSyntax:
    """The family of a chat template; ``GENERIC`` when the template does not render tools."""
    if template and "tools" in template:
        for fam in FAMILIES:
            if all(marker in template for marker in fam.detect):
                return fam
    return GENERIC
