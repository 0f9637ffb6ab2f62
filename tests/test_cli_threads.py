"""Thread titles from the first exchange, and ``jan threads list|show|rm|rename`` as users run
them (subprocesses over a data folder filled through the API)."""

from __future__ import annotations

import asyncio
import json
import subprocess

from cli_fixtures import JAN, jan
from conftest import asgi_client


async def _wait_title(client, thread_id: str, want: str) -> dict:
    for _ in range(200):
        thread = (await client.get(f"/v1/threads/{thread_id}")).json()
        if thread.get("title") == want:
            return thread
        await asyncio.sleep(0.02)
    raise AssertionError(f"title never became {want!r}: {thread}")


async def _fill(make_host) -> dict[str, str]:
    """Three threads made through the API; 'old' gets the latest message."""
    ids: dict[str, str] = {}
    async with make_host() as host, asgi_client(host) as c:
        for name in ("old", "middle", "new"):
            ids[name] = (await c.post("/v1/threads", json={})).json()["id"]
            await c.post(f"/v1/threads/{ids[name]}/messages",
                         json={"role": "user", "content": f"  Question   about {name}\n?"})
            await _wait_title(c, ids[name], f"Question about {name} ?")
        await c.post(f"/v1/threads/{ids['old']}/messages",
                     json={"role": "assistant", "content": "A late answer"})
    return ids


async def test_api_threads_get_titles_from_the_first_message(client):
    made = (await client.post("/v1/threads", json={})).json()
    assert made["title"] in ("", "New Thread", None)
    long_text = "Tell me " + "very " * 30 + "much"
    await client.post(f"/v1/threads/{made['id']}/messages", json={"role": "user",
                                                                   "content": long_text})
    thread = await _wait_title(client, made["id"], long_text[:59] + "…")
    assert len(thread["title"]) == 60
    await client.post(f"/v1/threads/{made['id']}/messages", json={"role": "user",
                                                                   "content": "Other"})
    named = (await client.post("/v1/threads", json={"title": "Mine"})).json()
    await client.post(f"/v1/threads/{named['id']}/messages", json={"role": "user",
                                                                    "content": "Hello"})
    await asyncio.sleep(0.2)  # nothing to wait for: the title must simply stay
    assert (await client.get(f"/v1/threads/{named['id']}")).json()["title"] == "Mine"
    assert (await client.get(f"/v1/threads/{made['id']}")).json()["title"] == thread["title"]


async def test_list_show_rename_rm(make_host, data_folder):
    ids = await _fill(make_host)
    listed = jan(data_folder, "threads", "list")
    assert listed.returncode == 0, listed.stderr
    rows = [line.split("\t") for line in listed.stdout.splitlines()]
    assert [r[0] for r in rows] == [ids["old"], ids["new"], ids["middle"]]
    assert rows[0][2] == "2 messages" and rows[0][3] == "Question about old ?"

    as_json = json.loads(jan(data_folder, "threads", "list", "--json").stdout)
    assert [t["id"] for t in as_json] == [r[0] for r in rows]
    assert as_json[0]["message_count"] == 2 and as_json[0]["title"] == "Question about old ?"

    shown = jan(data_folder, "threads", "show", ids["old"])
    assert shown.returncode == 0, shown.stderr
    assert "Question about old ?" in shown.stdout and "A late answer" in shown.stdout
    assert json.loads(jan(data_folder, "threads", "show", ids["old"], "--json").stdout
                      )["messages"][1]["role"] == "assistant"

    renamed = jan(data_folder, "threads", "rename", ids["middle"], "Better", "name")
    assert renamed.returncode == 0, renamed.stderr
    removed = jan(data_folder, "threads", "rm", ids["new"])
    assert removed.returncode == 0, removed.stderr
    rows = [line.split("\t") for line in jan(data_folder, "threads", "list").stdout.splitlines()]
    assert [(r[0], r[3]) for r in rows] == [(ids["old"], "Question about old ?"),
                                            (ids["middle"], "Better name")]
    gone = jan(data_folder, "threads", "show", ids["new"])
    assert gone.returncode == 1 and "Traceback" not in gone.stderr


async def test_show_piped_into_head_is_quiet(make_host, data_folder):
    async with make_host() as host, asgi_client(host) as c:
        thread_id = (await c.post("/v1/threads", json={})).json()["id"]
        for _ in range(4):  # far more than a pipe buffer: the writer meets a closed pipe
            r = await c.post(f"/v1/threads/{thread_id}/messages",
                             json={"role": "user", "content": "line\n" * 40_000})
            assert r.status_code == 200, r.text
    cmd = " ".join([*JAN, "threads", "show", thread_id, "--data-folder", str(data_folder)])
    done = subprocess.run(["/bin/sh", "-c", f"{cmd} | head -n 1"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("line line") and done.stdout.count("\n") == 1  # the title
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr, done.stderr
