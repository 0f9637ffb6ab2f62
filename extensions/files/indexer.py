"""Background indexing: extract → chunk → embed (through ``inference``) → store, one file at a time.

One worker drains a queue of (vector store, file) jobs, so indexing never competes with itself
for the model and a request never waits for it. The embedding model is the extension's
``embedding_model`` setting, else the default model; its id is stored with every chunk and on
the vector store, and a store indexed with another model is re-indexed rather than mixed.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np

from jan.sdk import Context
from jan.sdk.errors import ApiError, InvalidRequest

from .backend import Files, Index
from .chunking import chunk
from .extract import ExtractError, extract
from .settings import files_settings
from .vectors import Graphs

EMBED_BATCH = 16


class Embedder:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def model_id(self) -> str:
        chosen = files_settings(self.ctx).embedding_model or await self.ctx.services.get(
            "models").default_model()
        if not chosen:
            raise InvalidRequest("No embedding model: set the files extension's "
                                 "'embedding_model' or download a model", param="model")
        return str(chosen)

    async def embed(self, texts: list[str], model: str | None = None,
                    progress: Callable[[int], Awaitable[None]] | None = None
                    ) -> tuple[str, np.ndarray]:
        import numpy as np  # here, not at import: it costs seconds at startup

        model = model or await self.model_id()
        registry = self.ctx.services.get("models")
        spec = registry.load_spec(await registry.get(model))
        engine = self.ctx.services.get("inference")
        out: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            result = await engine.embed(spec, texts[start:start + EMBED_BATCH])
            out += result.vectors
            if progress is not None:
                await progress(len(out))
        vectors = np.asarray(out, dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return model, vectors / np.where(norms == 0, 1.0, norms)


class Indexer:
    def __init__(self, ctx: Context, db: Index, graphs: Graphs, files: Files,
                 embedder: Embedder, on_done: Callable[[str, dict[str, Any]], Awaitable[None]]
                 ) -> None:
        self.ctx, self.db, self.graphs, self.files = ctx, db, graphs, files
        self.embedder, self.on_done = embedder, on_done
        self.queue: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self.idle = asyncio.Event()
        self.idle.set()
        self.worker: Any = None

    def start(self) -> None:
        self.worker = self.ctx.spawn(self._run(), name="files indexer")

    def submit(self, vs_id: str, file_id: str) -> None:
        self.idle.clear()
        self.queue.put_nowait((vs_id, file_id))

    async def _run(self) -> None:
        while True:
            vs_id, file_id = await self.queue.get()
            try:
                await self._index(vs_id, file_id)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - _index records failures; this is a last guard
                self.ctx.log.exception("indexing %s into %s failed", file_id, vs_id)
            finally:
                if self.queue.empty():
                    with contextlib.suppress(Exception):
                        await asyncio.to_thread(self.graphs.save)
                    self.idle.set()

    async def _index(self, vs_id: str, file_id: str) -> None:
        doc = self.db.file(vs_id, file_id)
        if doc is None or doc["status"] != "in_progress":
            return  # removed or cancelled while queued
        if not self.db.claim(vs_id, file_id):
            return  # another instance on the shared database is indexing it
        try:
            model, ids, vectors, size = await self._embed_file(doc)
        except (ExtractError, ApiError) as exc:
            code = getattr(exc, "code", None)
            code = code if code in ("unsupported_file", "invalid_file") else "server_error"
            return await self._finish(vs_id, doc, "failed",
                                      last_error={"code": code, "message": exc.message})
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the others
            self.ctx.log.exception("indexing %s failed", file_id)
            return await self._finish(vs_id, doc, "failed", last_error={
                "code": "server_error", "message": f"Indexing failed: {type(exc).__name__}"})
        if ids is None:
            return
        self.graphs.add(vs_id, model, ids, vectors)
        await self._finish(vs_id, doc, "completed", usage_bytes=size)

    async def _embed_file(self, doc: dict[str, Any]) -> tuple[str, Any, Any, int]:
        vs_id, file_id = doc["vector_store_id"], doc["id"]
        record = self.files.get(file_id)
        data = await asyncio.to_thread(self.files.read, file_id)
        sections = await asyncio.to_thread(extract, record.filename, data)
        static = (doc.get("chunking_strategy") or {}).get("static") or {}
        texts = chunk(sections, int(static.get("max_chunk_size_tokens", 400)),
                      int(static.get("chunk_overlap_tokens", 100)))

        async def renew(_done: int) -> None:  # our claim stays fresh while we embed
            await asyncio.to_thread(self.db.renew, vs_id, file_id)

        model, vectors = await self.embedder.embed(texts, progress=renew)
        current = self.db.file(vs_id, file_id)
        ids = None
        if current is not None and current["status"] == "in_progress":
            ids = self.db.replace_chunks(vs_id, file_id, model, texts, vectors)
        if ids is None:
            return model, None, None, 0  # removed or cancelled while embedding
        store = self.db.store(vs_id)
        if store is not None and store[1] != model:
            self.db.put_store(store[0], model)
        size = sum(len(t.encode()) for t in texts) + vectors.nbytes
        return model, ids, vectors, size

    async def _finish(self, vs_id: str, doc: dict[str, Any], status: str, **fields: Any) -> None:
        if self.db.file(vs_id, doc["id"]) is None:
            return
        doc = {**doc, "status": status, **fields}
        self.db.put_file(vs_id, doc)
        await self.on_done(vs_id, doc)

    async def wait_idle(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
            return True
        except TimeoutError:
            return False

    @staticmethod
    def now() -> int:
        return int(time.time())
