"""``GET /openapi.json`` lists every route; a property-based fuzz of all of them from it.

The fuzz (hypothesis) sends generated path ids, query strings and JSON bodies, guided by the
document's schemas, to every operation, and checks: no 5xx, every error in OpenAI's shape, and
afterwards every stored file still parses. ``JAN_FUZZ_EXAMPLES`` sets examples per operation
(default 25, about a minute).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import asgi_client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jan.sdk.storage import read_lines

EXAMPLES = int(os.environ.get("JAN_FUZZ_EXAMPLES", "25"))
# No model may be loaded during the fuzz (a generated chat request would otherwise run one):
# a 1 MiB memory budget makes every load a 400 from the load-setting bounds.
FUZZ_SETTINGS = {"engine": {"memory_budget_mb": 1}}

json_leaf = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
             | st.floats() | st.text(max_size=40))
json_value = st.recursive(json_leaf, lambda inner: st.lists(inner, max_size=4)
                          | st.dictionaries(st.text(max_size=10), inner, max_size=4),
                          max_leaves=12)
ids = st.sampled_from(["thread_x", "asst_x", "msg_x", "run_x", "..", "a/b", "%2e%2e",
                       "smollm2-135m-instruct", "x" * 300, "ünï", " ", "\x00"]) | st.text(
    min_size=1, max_size=20)


def body_for(schema: dict, components: dict) -> st.SearchStrategy:
    """Objects with the schema's property names (so validators are reached) and any values."""
    if "$ref" in schema:
        schema = components[schema["$ref"].rsplit("/", 1)[1]]
    names = list(schema.get("properties", {})) or ["model", "messages", "prompt", "input"]
    keys = st.sampled_from(names) | st.text(max_size=8)
    return st.dictionaries(keys, json_value, max_size=6) | json_value


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, item in doc["paths"].items()
            for method, op in item.items()]


async def test_openapi_lists_every_route_with_its_models(client):
    r = await client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json()
    assert doc["openapi"].startswith("3.")
    ops = {(m.upper(), p) for p, item in doc["paths"].items() for m in item}
    for route in [("GET", "/health"), ("GET", "/v1/models"), ("POST", "/v1/chat/completions"),
                  ("POST", "/v1/completions"), ("POST", "/v1/embeddings"),
                  ("POST", "/v1/models/{model_id}/start"), ("POST", "/v1/threads"),
                  ("PATCH", "/v1/threads/{thread_id}"),
                  ("POST", "/v1/threads/{thread_id}/messages"),
                  ("DELETE", "/v1/assistants/{assistant_id}"),
                  ("POST", "/v1/threads/{thread_id}/runs"), ("POST", "/v1/threads/runs")]:
        assert route in ops, route
    body = doc["paths"]["/v1/threads/{thread_id}/messages"]["post"]["requestBody"]
    ref = body["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(doc["components"]["schemas"][ref]["required"]) == {"role", "content"}
    err = doc["components"]["schemas"]["ErrorDetail"]
    assert set(err["properties"]) == {"message", "type", "param", "code"}


@pytest.mark.slow
async def test_fuzz_every_route_from_openapi(make_host, data_folder):
    async with make_host(settings=FUZZ_SETTINGS) as jan, asgi_client(jan) as c:
        doc = (await c.get("/openapi.json")).json()
        thread = (await c.post("/v1/threads", json={"metadata": {"k": "v"}})).json()["id"]
        r = await c.post(f"/v1/threads/{thread}/messages", json={"role": "user",
                                                                 "content": "keep me"})
        assert r.status_code == 200
        kept = r.json()["id"]
        known = st.sampled_from([thread, kept])
        problems: list[str] = []
        sent = [0]
        for path, method, op in operations(doc):
            if path == "/health":
                continue
            # Deletes get made-up ids only: the kept thread and message must survive.
            target = ids if method == "delete" else ids | known
            names = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            queries = [p["name"] for p in op.get("parameters", []) if p["in"] == "query"]
            schema = (op.get("requestBody", {}).get("content", {})
                      .get("application/json", {}).get("schema"))
            strategy = st.fixed_dictionaries({
                "path": st.fixed_dictionaries({n: target for n in names}),
                "query": st.dictionaries(st.sampled_from(queries or ["limit"]),
                                         st.text(max_size=12) | st.integers().map(str),
                                         max_size=3),
                "body": body_for(schema, doc["components"]["schemas"]) if schema
                else st.none(),
            })
            await fuzz_operation(c, path, method, strategy, problems, sent)
        assert not problems, "\n".join(problems[:20])
        assert sent[0] >= len(operations(doc)) * min(EXAMPLES, 5)
        # The data folder is intact: the kept message is there and every file parses.
        r = await c.get(f"/v1/threads/{thread}/messages/{kept}")
        assert r.status_code == 200 and r.json()["content"][0]["text"]["value"] == "keep me"
        assert_data_folder_parses(data_folder)


def _not_json(name: str):  # noqa: ANN202
    raise ValueError(f"{name} is not JSON")


async def fuzz_operation(c, path: str, method: str, strategy, problems: list[str],
                         sent: list[int]) -> None:
    seen: list[tuple] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def collect(case) -> None:
        seen.append(case)

    collect()  # hypothesis drives generation; the requests are sent from the event loop
    for case in seen:
        url = path
        for name, value in case["path"].items():
            url = url.replace("{" + name + "}", quote(value, safe=""))
        kw = {"params": case["query"]}
        if case["body"] is not None:
            kw["content"] = json.dumps(case["body"]).encode()
        r = await c.request(method.upper(), url, **kw)
        where = f"{method.upper()} {url} {case}"
        sent[0] += 1
        if r.headers.get("content-type", "").startswith("application/json"):
            try:
                json.loads(r.content, parse_constant=_not_json)
            except ValueError as exc:
                problems.append(f"invalid JSON answered ({exc}) on {where}: {r.text[:200]}")
        if r.status_code >= 500:
            problems.append(f"{r.status_code} on {where}: {r.text[:300]}")
        elif r.status_code >= 400:
            try:
                err = r.json()["error"]
                assert set(err) == {"message", "type", "param", "code"}
            except Exception:  # noqa: BLE001 - any non-OpenAI shape is the finding
                problems.append(f"bad error shape {r.status_code} on {where}: {r.text[:300]}")


def assert_data_folder_parses(root: Path) -> None:
    for dirpath, _, files in os.walk(root):
        for name in files:
            path = Path(dirpath) / name
            if name.endswith(".jsonl"):
                assert read_lines(path)[1] == [], path
            elif name.endswith(".json") and not name.startswith("."):
                json.loads(path.read_bytes())
