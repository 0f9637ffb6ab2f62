"""A data folder written by Jan 0.4/0.5 loads as-is and is served unchanged.

``tests/fixtures/jan_data`` holds threads with Jan's ids (``jan_<seconds>``), ULID message ids,
millisecond times, Jan-only fields (``type``, ``error_code``, ``attachments`` with ``retrieval``
tools, ``pdf`` content parts, numeric metadata) and Jan's own default assistant file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from threads_fixtures import JAN_DATA, copy_jan_data, tree_hashes

from jan.sdk.storage import read_lines

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

STATUS = {"ready": "completed", "error": "incomplete", "stopped": "incomplete"}


def file_threads() -> dict[str, dict]:
    return {p.parent.name: json.loads(p.read_text())
            for p in (JAN_DATA / "threads").glob("*/thread.json")}


def file_messages(thread_id: str) -> list[dict]:
    records, bad = read_lines(JAN_DATA / "threads" / thread_id / "messages.jsonl")
    assert bad == []
    return records


def expect_message(line: dict) -> dict:
    """What the API must show for one line of Jan's messages.jsonl."""
    meta = {k: v if isinstance(v, str) else json.dumps(v)
            for k, v in (line.get("metadata") or {}).items()}
    status = STATUS[line["status"]]
    out = {
        "id": line["id"], "object": "thread.message", "thread_id": line["thread_id"],
        "role": line["role"], "created_at": line["created"] // 1000,
        "content": [c for c in line["content"] if c["type"] == "text"],
        "assistant_id": line.get("assistant_id"), "run_id": None, "metadata": meta,
        "status": status,
        "attachments": [{"file_id": a["file_id"], "tools": [{"type": "file_search"}]}
                        for a in line.get("attachments", [])],
        "completed_at": line["updated"] // 1000 if status == "completed" else None,
        "incomplete_at": line["updated"] // 1000 if status == "incomplete" else None,
        "incomplete_details": {"reason": "run_failed" if line["status"] == "error"
                               else "run_cancelled"} if status == "incomplete" else None,
    }
    return out


@pytest.fixture
def jan_folder(data_folder: Path) -> Path:
    return copy_jan_data(data_folder)


async def test_jan_folder_is_served_unchanged(make_host, jan_folder):
    before = tree_hashes(jan_folder, "threads", "assistants")
    async with make_host(jan_folder) as jan:
        import httpx
        import openai

        transport = httpx.ASGITransport(app=jan.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            sdk = openai.AsyncOpenAI(base_url="http://test/v1", api_key="x", http_client=http,
                                     _strict_response_validation=True, max_retries=0)
            threads = file_threads()
            listed = (await http.get("/v1/threads")).json()
            newest_first = sorted(threads.values(), key=lambda t: t["created"], reverse=True)
            assert [t["id"] for t in listed["data"]] == [t["id"] for t in newest_first]
            for api in listed["data"]:
                f = threads[api["id"]]
                assert api["object"] == "thread" and api["title"] == f["title"]
                assert api["created_at"] == f["created"] // 1000
                assert api["updated_at"] == f["updated"] // 1000
                assert api["metadata"] == f.get("metadata", {})
                assert api["assistants"] == f["assistants"]
                assert (await sdk.beta.threads.retrieve(api["id"])).id == api["id"]
            for thread_id in threads:
                if not (JAN_DATA / "threads" / thread_id / "messages.jsonl").exists():
                    assert (await sdk.beta.threads.messages.list(thread_id)).data == []
                    continue
                lines = file_messages(thread_id)
                got = [m async for m in sdk.beta.threads.messages.list(
                    thread_id, order="asc", limit=2)]  # strict validation of every message
                raw = (await http.get(f"/v1/threads/{thread_id}/messages",
                                      params={"order": "asc", "limit": 100})).json()["data"]
                assert [m.id for m in got] == [m["id"] for m in raw]
                assert raw == [expect_message(line) for line in lines]
                newest = (await http.get(f"/v1/threads/{thread_id}/messages",
                                         params={"limit": 1})).json()
                assert newest["data"][0]["id"] == lines[-1]["id"]
                one = await http.get(f"/v1/threads/{thread_id}/messages/{lines[0]['id']}")
                assert one.json() == expect_message(lines[0])
            jan_assistant = await sdk.beta.assistants.retrieve("jan")
            assert jan_assistant.name == "Jan" and jan_assistant.created_at == 1715132389
            assert jan_assistant.tools == []  # Jan's retrieval tool stays in the file only
            bard = await sdk.beta.assistants.retrieve("shakespeare")
            assert bard.name == "shakespeare" and bard.created_at == 1698984975
            assert {a.id async for a in sdk.beta.assistants.list()} == {"jan", "shakespeare"}
    assert tree_hashes(jan_folder, "threads", "assistants") == before


async def test_writing_to_a_jan_thread_keeps_its_format(make_host, jan_folder):
    thread_id = "jan_1717666232"
    path = jan_folder / "threads" / thread_id / "messages.jsonl"
    original = path.read_bytes()
    async with make_host(jan_folder) as jan:
        import httpx

        transport = httpx.ASGITransport(app=jan.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
            r = await http.post(f"/v1/threads/{thread_id}/messages",
                                json={"role": "user", "content": "and now?"})
            assert r.status_code == 200, r.text
            r = await http.patch(f"/v1/threads/{thread_id}", json={"title": "QC"})
            assert r.status_code == 200, r.text
    data = path.read_bytes()
    assert data.startswith(original)  # appended, nothing before it touched
    added = json.loads(data[len(original):])
    assert added["thread_id"] == thread_id and added["status"] == "ready"
    assert added["content"] == [{"type": "text", "text": {"value": "and now?",
                                                          "annotations": []}}]
    assert added["created"] > 1_600_000_000_000  # milliseconds, like Jan
    thread = json.loads((jan_folder / "threads" / thread_id / "thread.json").read_text())
    original_thread = file_threads()[thread_id]
    assert thread["title"] == "QC" and thread["updated"] > original_thread["updated"]
    assert {k: v for k, v in thread.items() if k not in ("title", "updated")} == {
        k: v for k, v in original_thread.items() if k not in ("title", "updated")}
