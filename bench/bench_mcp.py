"""One MCP tool call round trip through the host against the same MCP server called directly.

Host: ``POST /v1/tools/calls`` (policy ``always`` for the server) over the ASGI app, which goes
through the ``tools`` service, the ``mcp`` extension's session and the stdio server. Peer, in the
same run: a ``ClientSession`` of the official SDK on its own subprocess of the same server.
Usage: python bench/bench_mcp.py [calls]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from jan.host.runtime import Jan

SERVER = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "mcp_test_server.py"


async def timed(n: int, call) -> list[float]:
    for _ in range(5):  # warm up
        await call()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        await call()
        out.append(time.perf_counter() - t0)
    return out


async def direct(n: int) -> list[float]:
    params = StdioServerParameters(command=sys.executable, args=[str(SERVER)])
    async with stdio_client(params) as (r, w), ClientSession(r, w) as session:
        await session.initialize()

        async def call():
            res = await session.call_tool("echo", {"text": "hi"})
            assert res.content[0].text == "hi"
        return await timed(n, call)


async def through_host(n: int, folder: Path) -> list[float]:
    (folder / "mcp_config.json").write_text(json.dumps({"mcpServers": {
        "demo": {"command": sys.executable, "args": [str(SERVER)]}}}))
    policy = folder / "storage" / "tools" / "policy.json"
    policy.parent.mkdir(parents=True, exist_ok=True)
    policy.write_text(json.dumps({"servers": {"demo": "always"}}))
    jan = Jan(folder, core_services=False)
    await jan.start()
    try:
        transport = httpx.ASGITransport(app=jan.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            async def call():
                r = await c.post("/v1/tools/calls", json={"name": "demo__echo",
                                                          "arguments": {"text": "hi"}})
                assert r.json().get("result", {}).get("output") == "hi", r.text
            return await timed(n, call)
    finally:
        await jan.stop()


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        host = await through_host(n, Path(tmp))
    peer = await direct(n)
    h, d = statistics.median(host) * 1000, statistics.median(peer) * 1000
    print(f"calls: {n}")
    print(f"direct SDK call  median {d:.2f} ms  p90 {sorted(peer)[int(n * .9)] * 1000:.2f} ms")
    print(f"through the host median {h:.2f} ms  p90 {sorted(host)[int(n * .9)] * 1000:.2f} ms")
    print(f"host/direct ratio {h / d:.2f}x  (overhead {h - d:.2f} ms per call)")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 200))
