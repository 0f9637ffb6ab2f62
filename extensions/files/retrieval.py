"""The ``files`` service: retrieval for whoever answers (assistant runs, responses, chat).

``search(vector_store_ids, query)`` returns chunks with file ids, file names and quotes.
``for_run(assistant, thread, messages)`` does what a run with ``file_search`` (or Jan's
``retrieval`` tool) needs: it gathers the stores from the assistant's and the thread's
``tool_resources``, indexes files attached to the thread's messages (and the assistant's
``file_ids``) into a store of the thread's, searches with the last user message, and returns
the excerpts for the prompt plus ``cite(text)``, which appends ``【n:m†file】`` markers with
OpenAI ``file_citation`` annotations pointing at each file and the quoted passage.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from jan.sdk import Context
from jan.sdk.errors import ApiError, NotFound
from jan.sdk.services import HealthReport

from .backend import Files
from .service import VectorStores
from .settings import files_settings

DEFAULT_TOP_K = 3
QUOTE_CHARS = 1000
TEMPLATE = ("Use the following excerpts from the user's files to answer. If they do not hold "
            "the answer, say so.\n\n{CONTEXT}")


@dataclass
class Found:
    """Retrieved passages for one answer."""

    hits: list[dict[str, Any]]
    template: str = TEMPLATE
    question: str = ""
    vector_store_ids: list[str] = field(default_factory=list)

    @property
    def instructions(self) -> str:
        """Text to add to the system prompt ('' when nothing was found)."""
        if not self.hits:
            return ""
        context = "\n\n".join(f"[{i}] {h['filename']}:\n{h['text']}"
                              for i, h in enumerate(self.hits))
        return "\n\n" + self.template.replace("{CONTEXT}", context).replace(
            "{QUESTION}", self.question)

    def cite(self, text: str) -> tuple[str, list[dict[str, Any]]]:
        """``text`` with one source marker per passage used, and their annotations."""
        if not self.hits:
            return text, []
        # Only ever appended, so a streamed answer's deltas plus the markers equal the text.
        annotations, out = [], text
        for i, hit in enumerate(self.hits):
            marker = f"【{i}:0†{hit['filename'] or hit['file_id']}】"
            out += marker if i or not out or out[-1].isspace() else " " + marker
            annotations.append({
                "type": "file_citation", "text": marker,
                "start_index": len(out) - len(marker), "end_index": len(out),
                "file_citation": {"file_id": hit["file_id"], "quote": hit["text"][:QUOTE_CHARS]},
            })
        return out, annotations


def _tool(assistant: Any, kinds: tuple[str, ...]) -> dict[str, Any] | None:
    for tool in getattr(assistant, "tools", None) or []:
        if isinstance(tool, dict) and tool.get("type") in kinds and tool.get("enabled", True):
            return tool
    return None


def _store_ids(owner: Any) -> list[str]:
    extra = getattr(owner, "model_extra", None) or {}
    resources = extra.get("tool_resources") if isinstance(extra, dict) else None
    ids = ((resources or {}).get("file_search") or {}).get("vector_store_ids") or []
    return [i for i in ids if isinstance(i, str)]


def _attached(messages: list[Any]) -> list[str]:
    out: list[str] = []
    for message in messages:
        for item in (getattr(message, "model_extra", None) or {}).get("attachments") or []:
            if not isinstance(item, dict) or not isinstance(item.get("file_id"), str):
                continue
            tools = {t.get("type") for t in item.get("tools") or [] if isinstance(t, dict)}
            if not tools or tools & {"file_search", "retrieval"}:
                out.append(item["file_id"])
    return list(dict.fromkeys(out))


class Retrieval:
    def __init__(self, ctx: Context, files: Files, stores: VectorStores) -> None:
        self.ctx, self.files, self.stores = ctx, files, stores

    async def search(self, vector_store_ids: list[str], query: str, *,
                     max_num_results: int = 10, filters: dict[str, Any] | None = None,
                     score_threshold: float = 0.0) -> list[dict[str, Any]]:
        hits = await self.stores.search(vector_store_ids, query, limit=max_num_results,
                                        threshold=score_threshold, filters=filters)
        out = []
        for hit in hits:
            try:
                name = self.files.get(hit.file_id).filename
            except ApiError:
                continue  # deleted while searching
            doc = self.stores.db.file(hit.vs_id, hit.file_id) or {}
            out.append({"file_id": hit.file_id, "filename": name, "score": hit.score,
                        "text": hit.text, "vector_store_id": hit.vs_id,
                        "attributes": doc.get("attributes") or {}})
        return out

    async def for_run(self, assistant: Any, thread: Any, messages: list[Any]) -> Found | None:
        """Passages for a run's answer, or ``None`` when the assistant has no retrieval tool."""
        tool = _tool(assistant, ("file_search", "retrieval"))
        attached = _attached(messages)
        if tool is None and not attached:
            return None
        question = next((m.text for m in reversed(messages) if m.role == "user"), "")
        ids = _store_ids(assistant) + _store_ids(thread)
        files = attached + [f for f in getattr(assistant, "file_ids", None) or []
                            if isinstance(f, str)]
        if files:
            ids.append(await self._thread_store(thread, files))
        settings = (tool or {}).get("settings") or (tool or {}).get("file_search") or {}
        top_k = settings.get("top_k") or settings.get("max_num_results") or DEFAULT_TOP_K
        template = settings.get("retrieval_template") or TEMPLATE
        if "{CONTEXT}" not in template:
            template = TEMPLATE
        ids = [i for i in dict.fromkeys(ids) if self._exists(i)]
        if not ids or not question.strip():
            return Found([], template, question, ids)
        hits = await self.search(ids, question, max_num_results=max(1, min(int(top_k), 20)))
        return Found(hits, template, question, ids)

    async def for_stores(self, vector_store_ids: list[str], question: str, *,
                         max_num_results: int | None = None,
                         filters: dict[str, Any] | None = None) -> Found:
        """Passages from named stores (``/v1/responses`` ``file_search``); an unknown store
        is a 404."""
        for vs_id in vector_store_ids:
            self.stores.store(vs_id)
        hits = await self.search(vector_store_ids, question, filters=filters,
                                 max_num_results=max_num_results or DEFAULT_TOP_K
                                 ) if question.strip() else []
        return Found(hits, TEMPLATE, question, list(vector_store_ids))

    def _exists(self, vs_id: str) -> bool:
        try:
            self.stores.store(vs_id)
            return True
        except NotFound:
            return False

    async def _thread_store(self, thread: Any, file_ids: list[str]) -> str:
        """The thread's own store, holding ``file_ids`` indexed (waits for the indexer)."""
        key = {"jan_thread_id": thread.id}
        found = next((d for d in self.stores.db.stores()
                      if (d.get("metadata") or {}).get("jan_thread_id") == thread.id), None)
        doc = found or self.stores.create_store(name=f"thread {thread.id}", metadata=key,
                                                expires_after=None)
        for file_id in file_ids:
            if self.stores.db.file(doc["id"], file_id) is not None:
                continue
            with contextlib.suppress(ApiError):  # a deleted attachment is skipped
                self.files.move_to_thread(file_id, thread.id)
                self.stores.add_file(doc["id"], file_id)
        timeout = files_settings(self.ctx).attach_timeout
        await self.stores.indexer.wait_idle(timeout)
        return doc["id"]

    async def delete_file(self, file_id: str) -> list[str]:
        """Delete a file and its chunks everywhere; returns the stores it was in."""
        self.files.get(file_id)
        # Index first: a crash after this leaves a file without results, never results
        # pointing at a file that is gone.
        stores = self.stores.forget_file(file_id)
        self.files.delete(file_id)
        await self.ctx.events.emit("file.deleted", {"id": file_id, "vector_store_ids": stores})
        return stores

    def forget_missing(self) -> int:
        """Drop the chunks of files that vanished (a deleted thread took its files along)."""
        gone = 0
        for file_id in self.stores.db.indexed_files():
            try:
                self.files.get(file_id)
            except ApiError:
                self.stores.forget_file(file_id)
                gone += 1
        return gone

    def health_report(self) -> HealthReport:
        """``jan.sdk.services.ReportsHealth``: counts only; a file that failed to index is
        that file's ``last_error``, not a server problem."""
        return HealthReport(details=self.counts())

    def counts(self) -> dict[str, int]:
        stores = self.stores.db.stores()
        counts = {"files": self.files.count(), "vector_stores": len(stores),
                  "chunks": self.stores.db.chunk_count(), "indexing": 0, "failed": 0}
        for doc in stores:
            c = self.stores.db.file_counts(doc["id"])
            counts["indexing"] += c["in_progress"]
            counts["failed"] += c["failed"]
        return counts
