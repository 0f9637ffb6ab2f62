"""Text out of the documents people have: plain text, Markdown, source code, HTML and PDF.

``extract(name, data)`` returns the document as *sections* (a PDF page, an HTML block, a Markdown
heading's body), so chunking can respect the document's own structure. Anything that cannot be
read raises ``ExtractError`` with a message meant for the file's ``last_error``.
"""

from __future__ import annotations

import io
import json
import re
from html.parser import HTMLParser
from pathlib import PurePath

TEXT_EXTENSIONS = {
    ".txt", ".md", ".markdown", ".rst", ".csv", ".tsv", ".log", ".json", ".jsonl", ".yaml",
    ".yml", ".toml", ".ini", ".cfg", ".xml", ".tex", ".py", ".js", ".ts", ".tsx", ".jsx", ".java",
    ".c", ".h", ".cc", ".cpp", ".hpp", ".cs", ".go", ".rs", ".rb", ".php", ".sh", ".sql", ".kt",
    ".swift", ".scala", ".lua", ".r", ".m", ".pl", ".css", ".scss", ".vue", ".svelte", "",
}
HTML_EXTENSIONS = {".html", ".htm", ".xhtml"}


class ExtractError(Exception):
    """The file cannot be turned into text (``code`` is OpenAI's last_error code)."""

    def __init__(self, message: str, code: str = "invalid_file") -> None:
        super().__init__(message)
        self.message, self.code = message, code


def extract(filename: str, data: bytes) -> list[str]:
    suffix = PurePath(filename).suffix.lower()
    if suffix == ".pdf" or data[:5] == b"%PDF-":
        sections = _pdf(data)
    elif suffix in HTML_EXTENSIONS:
        sections = _html(_decode(data))
    elif suffix in (".md", ".markdown"):
        sections = _markdown(_decode(data))
    elif suffix in TEXT_EXTENSIONS:
        text = _decode(data)
        sections = [text] if suffix != ".json" else [_json_text(text)]
    else:
        raise ExtractError(f"Unsupported file type '{suffix}': supported are PDF, HTML, "
                           "Markdown, plain text and source code", "unsupported_file")
    sections = [s.strip() for s in sections if s and s.strip()]
    if not sections:
        raise ExtractError("The file holds no extractable text")
    return sections


def _decode(data: bytes) -> str:
    if b"\x00" in data[:8192]:
        raise ExtractError("The file looks binary, not text", "unsupported_file")
    for encoding in ("utf-8-sig", "utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else (
            "utf-8-sig",):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            pass
    return data.decode("latin-1")  # every byte decodes: better odd accents than no text


def _json_text(text: str) -> str:
    try:
        return json.dumps(json.loads(text), ensure_ascii=False, indent=1)
    except ValueError:
        return text


def _pdf(data: bytes) -> list[str]:
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise ExtractError("The PDF is encrypted", "unsupported_file")
        # PDF text arrives line by line as laid out: a lone newline is a wrapped line.
        return [_LINE_WRAP.sub(" ", page.extract_text() or "") for page in reader.pages]
    except ExtractError:
        raise
    except (PyPdfError, ValueError, KeyError, TypeError, AttributeError, OSError,
            RecursionError, AssertionError) as exc:
        raise ExtractError(f"The PDF cannot be read: {type(exc).__name__}: {exc}"[:300]) from None


_LINE_WRAP = re.compile(r"(?<=\S)[ \t]*\n(?=[ \t]*\S)")
_HEADING = re.compile(r"^(#{1,6})\s+\S", re.MULTILINE)


def _markdown(text: str) -> list[str]:
    """One section per heading (the heading kept with its body, so a chunk knows its topic)."""
    starts = [m.start() for m in _HEADING.finditer(text)]
    if not starts or starts[0] != 0:
        starts = [0, *starts]
    return [text[a:b] for a, b in zip(starts, [*starts[1:], len(text)], strict=True)]


class _HTMLText(HTMLParser):
    BLOCK = {"p", "div", "section", "article", "li", "tr", "br", "h1", "h2", "h3", "h4", "h5",
             "h6", "pre", "blockquote", "table", "ul", "ol", "header", "footer", "main", "dd",
             "dt"}
    SKIP = {"script", "style", "noscript", "template", "svg", "head"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[list[str]] = [[]]
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in self.SKIP:
            self.skipping += 1
        elif tag in ("h1", "h2", "h3"):
            self.sections.append([])  # a new heading starts a new section
        elif tag in self.BLOCK:
            self.sections[-1].append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self.BLOCK:
            self.sections[-1].append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            self.sections[-1].append(data)


def _html(text: str) -> list[str]:
    parser = _HTMLText()
    parser.feed(text)
    parser.close()
    out = []
    for parts in parser.sections:
        joined = re.sub(r"[ \t\r\f\v]+", " ", "".join(parts))
        out.append(re.sub(r"\n\s*\n+", "\n\n", joined))
    return out
