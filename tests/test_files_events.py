"""Events and ``/health`` counts of files and vector stores, through the API (no model needed:
with an embedding model that does not exist every file fails its indexing, clearly)."""

from __future__ import annotations

import asyncio

from conftest import asgi_client


async def wait_for(condition, timeout: float = 20) -> None:
    for _ in range(int(timeout * 20)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met")


async def test_vector_store_events_and_health_counts(make_host):
    settings = {"extensions": {"files": {"embedding_model": "no-such-model"}}}
    async with make_host(settings=settings) as jan, asgi_client(jan) as http:
        seen: list[tuple[str, str]] = []
        for pattern in ("file.*", "vector_store.*"):  # fnmatch: '*' spans dots too
            jan.host.bus.on(pattern, lambda topic, data: seen.append((topic, data["id"])))

        async def upload(name: str) -> str:
            r = await http.post("/v1/files", files={"file": (name, b"Some notes.")},
                                data={"purpose": "assistants"})
            return r.json()["id"]

        first, second = await upload("a.txt"), await upload("b.txt")
        vs = (await http.post("/v1/vector_stores", json={"file_ids": [first]})).json()["id"]
        await wait_for(lambda: ("vector_store.file.failed", first) in seen)
        failed = (await http.get(f"/v1/vector_stores/{vs}/files/{first}")).json()
        assert "no-such-model" in failed["last_error"]["message"]

        batch = (await http.post(f"/v1/vector_stores/{vs}/file_batches",
                                 json={"file_ids": [second]})).json()["id"]
        await wait_for(lambda: ("vector_store.file_batch.failed", batch) in seen)
        health = (await http.get("/health")).json()["files"]
        assert health == {"files": 2, "vector_stores": 1, "chunks": 0, "indexing": 0,
                          "failed": 2}

        await http.delete(f"/v1/vector_stores/{vs}/files/{second}")
        await http.delete(f"/v1/files/{first}")
        await http.delete(f"/v1/vector_stores/{vs}")
        await wait_for(lambda: ("vector_store.deleted", vs) in seen)
        health = (await http.get("/health")).json()["files"]
        assert health == {"files": 1, "vector_stores": 0, "chunks": 0, "indexing": 0,
                          "failed": 0}
    assert seen == [
        ("file.created", first), ("file.created", second),
        ("vector_store.created", vs), ("vector_store.file.created", first),
        ("vector_store.file.failed", first),
        ("vector_store.file_batch.created", batch), ("vector_store.file.created", second),
        ("vector_store.file.failed", second), ("vector_store.file_batch.failed", batch),
        ("vector_store.file.deleted", second), ("file.deleted", first),
        ("vector_store.deleted", vs)]
