"""Markdown to safe HTML for the browser UI: markdown-it-py, Pygments, then nh3.

Raw HTML in the source is escaped (markdown-it's ``html`` option off), code blocks are
highlighted with CSS classes (no inline styles, so the page's CSP needs no 'unsafe-inline'),
and nh3 (ammonia) has the last word over tags, attributes and URL schemes. Images never become
``<img>``: a Markdown image is rendered as a link, so no model output can make the browser
fetch anything, whatever the Content-Security-Policy.
"""

from __future__ import annotations

import html
from functools import lru_cache

import nh3
from markdown_it import MarkdownIt
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound

MAX_SOURCE = 200_000  # characters per text: a longer one is rendered as plain text

TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "del", "s", "code",
    "pre", "blockquote", "ul", "ol", "li", "a", "span", "div", "table", "thead", "tbody", "tr",
    "th", "td",
}
ATTRIBUTES = {
    "a": {"href", "title"},
    "span": {"class"},
    "code": {"class"},
    "div": {"class", "data-lang"},
    "ol": {"start"},
    "th": {"style"},
    "td": {"style"},
}
_FORMATTER = HtmlFormatter(nowrap=True, classprefix="tok-")


def _code(code: str, info: str) -> str:
    """A code block: highlighted when the language is known, escaped otherwise."""
    name = info.strip().split()[0] if info.strip() else ""
    try:
        lexer = get_lexer_by_name(name) if name else None
    except ClassNotFound:
        lexer = None
    body = highlight(code, lexer, _FORMATTER) if lexer else html.escape(code)
    label = html.escape(name or "text")
    return f'<div class="code" data-lang="{label}"><pre><code>{body}</code></pre></div>\n'


def _fence(renderer, tokens, idx, options, env) -> str:  # noqa: ANN001 - markdown-it rule
    token = tokens[idx]
    return _code(token.content, token.info if token.type == "fence" else "")


def _image(renderer, tokens, idx, options, env) -> str:  # noqa: ANN001 - markdown-it rule
    token = tokens[idx]
    alt = html.escape(token.content or "image")
    src = token.attrGet("src") or ""
    return f'<a href="{html.escape(str(src), quote=True)}" title="image (not loaded)">🖼 {alt}</a>'


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    md = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False,
                                   "breaks": True})
    md.enable(["table", "strikethrough"])
    md.add_render_rule("image", _image)
    md.add_render_rule("fence", _fence)
    md.add_render_rule("code_block", _fence)
    return md


def render(text: str) -> str:
    """Markdown ``text`` as HTML that is safe to assign to ``innerHTML``."""
    if len(text) > MAX_SOURCE:
        return f"<pre>{html.escape(text)}</pre>"
    raw = _parser().render(text)
    return nh3.clean(raw, tags=TAGS, attributes=ATTRIBUTES, url_schemes={"http", "https", "mailto"},
                     link_rel="noopener noreferrer nofollow", strip_comments=True,
                     filter_style_properties={"text-align"})


def pygments_css() -> str:
    """Token colours for light and dark themes, as plain CSS (served as a static file).

    Dark applies when chosen (``data-theme=dark``) or when the system prefers dark and the user
    did not pick light; the selectors have equal weight, so the later (dark) rules win.
    """
    light = HtmlFormatter(style="friendly", classprefix="tok-").get_style_defs(
        ":root:not([data-theme=dark]) .code")
    chosen = HtmlFormatter(style="monokai", classprefix="tok-").get_style_defs(
        "[data-theme=dark] .code")
    system = HtmlFormatter(style="monokai", classprefix="tok-").get_style_defs(
        ":root:not([data-theme=light]) .code")
    return f"{light}\n{chosen}\n@media (prefers-color-scheme: dark) {{\n{system}\n}}\n"
