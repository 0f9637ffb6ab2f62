"""The trusted bootstrap of an assistant worker: ``python -I bootstrap.py <read_fd> <write_fd>``.

Order matters and is the whole point: read the host's init message, harden this process (see
``harden.py``), and only then import ``jan.sdk.assistant`` and the assistant's ``index.py``.
After that it serves the host's calls: a reader thread routes replies to waiting requests and
calls to the main thread, which runs the handlers (a failure is reported as
``worker_errors.py`` words it). Stdlib only until the sdk is loaded.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import queue
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any

MAX_INBOUND = 256 * 1024 * 1024
HERE = os.path.dirname(os.path.abspath(__file__))


def _load(name: str, path: str, package_dir: str | None = None) -> types.ModuleType:
    locations = [package_dir] if package_dir else None
    spec = importlib.util.spec_from_file_location(name, path,
                                                  submodule_search_locations=locations)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# By file, like harden.py: this script runs with -I, outside any package; before hardening.
errors = _load("_jan_sandbox_worker_errors", os.path.join(HERE, "worker_errors.py"))


class Transport:
    """The worker's end of the RPC pipes."""

    def __init__(self, rfd: int, wfd: int) -> None:
        self.rfd, self.wfd = rfd, wfd
        self._wlock = threading.Lock()
        self._ids = iter(range(1, 2**53))
        self._pending: dict[int, queue.Queue[tuple[str, Any]]] = {}
        self.calls: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self._buf = b""

    def send(self, obj: dict[str, Any]) -> None:
        line = (json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=str)
                + "\n").encode()
        with self._wlock:
            view = memoryview(line)
            while view:
                view = view[os.write(self.wfd, view):]

    def read_message(self) -> dict[str, Any] | None:
        while b"\n" not in self._buf:
            chunk = os.read(self.rfd, 1 << 16)
            if not chunk:
                return None
            self._buf += chunk
            if len(self._buf) > MAX_INBOUND:
                raise RuntimeError("host message too large")
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def start_reader(self) -> None:
        threading.Thread(target=self._reader, name="jan-rpc", daemon=True).start()

    def _reader(self) -> None:
        try:
            while (msg := self.read_message()) is not None:
                self._route(msg)
        except Exception:  # noqa: BLE001 - the host closed or sent garbage: stop serving
            pass
        self.calls.put(None)
        for q in list(self._pending.values()):
            q.put(("error", {"code": -32099, "message": "host connection closed"}))

    def _route(self, msg: dict[str, Any]) -> None:
        method = msg.get("method")
        if method in ("call", "shutdown"):
            self.calls.put(msg if method == "call" else None)
        elif method == "chunk":
            q = self._pending.get(msg["params"]["id"])
            if q is not None:
                q.put(("chunk", msg["params"].get("text", "")))
        elif isinstance(msg.get("id"), int):
            q = self._pending.get(msg["id"])
            if q is not None:
                error = msg.get("error")
                q.put(("error", error) if error else ("result", msg.get("result")))

    def _open(self, method: str, params: dict[str, Any]) -> tuple[int, queue.Queue]:
        rid = next(self._ids)
        q: queue.Queue[tuple[str, Any]] = queue.Queue()
        self._pending[rid] = q
        self.send({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return rid, q

    def stream(self, method: str, params: dict[str, Any]) -> Iterator[Any]:
        rid, q = self._open(method, params)
        try:
            while True:
                kind, value = q.get()
                if kind == "chunk":
                    yield value
                elif kind == "error":
                    raise _host_error(value)
                else:
                    return
        finally:
            self._pending.pop(rid, None)

    def request(self, method: str, params: dict[str, Any]) -> Any:
        rid, q = self._open(method, params)
        try:
            while True:
                kind, value = q.get()
                if kind == "error":
                    raise _host_error(value)
                if kind == "result":
                    return value
        finally:
            self._pending.pop(rid, None)


def _host_error(err: dict[str, Any]) -> Exception:
    from jan.sdk.assistant import HostError

    message = str(err.get("message", "host error"))
    return PermissionError(message) if err.get("code") == -32003 else HostError(message)


def _register_sdk(sdk_dir: str) -> types.ModuleType:
    """Make ``jan.sdk`` the host's own copy, whatever is (not) installed in site-packages."""
    if "jan" not in sys.modules:
        jan = types.ModuleType("jan")
        jan.__path__ = []  # type: ignore[attr-defined]
        sys.modules["jan"] = jan
    sdk = _load("jan.sdk", os.path.join(sdk_dir, "__init__.py"), sdk_dir)
    sys.modules["jan"].sdk = sdk  # type: ignore[attr-defined]
    return _load("jan.sdk.assistant", os.path.join(sdk_dir, "assistant.py"))


def _setup_output() -> None:
    """print() and logging reach the host (and so the assistant's log file) line by line."""
    import logging

    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(AttributeError, ValueError):
            stream.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _load_user_code(cfg: dict[str, Any]) -> None:
    import site

    for path in cfg.get("site_dirs", []):
        if os.path.isdir(path):
            site.addsitedir(path)
    folder = cfg["folder"]
    sys.path.insert(0, folder)
    os.chdir(cfg.get("workspace") or folder)
    _load("__assistant__", os.path.join(folder, "index.py"))


def _probe_checks() -> dict[str, Any]:
    """Observe, from inside, what the applied layers actually deny."""
    import socket

    out: dict[str, Any] = {}
    try:
        socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
        out["inet_socket"] = "allowed"
    except OSError as exc:
        out["inet_socket"] = f"denied ({exc.strerror})"
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        out["unix_socket"] = "allowed"
    except OSError as exc:
        out["unix_socket"] = f"denied ({exc.strerror})"
    try:
        open("/etc/passwd", "rb").close()
        out["read_etc_passwd"] = "allowed"
    except OSError as exc:
        out["read_etc_passwd"] = f"denied ({exc.strerror})"
    with open("/proc/self/status") as f:
        status = dict(line.split(":", 1) for line in f if ":" in line)
    out["seccomp_mode"] = status.get("Seccomp", "").strip()
    out["no_new_privs"] = status.get("NoNewPrivs", "").strip()
    return out


def serve(transport: Transport, sdk: types.ModuleType) -> None:
    while (msg := transport.calls.get()) is not None:
        params = msg.get("params", {})
        try:
            value = sdk._dispatch(params["topic"], params.get("data"), params.get("context", {}))
            reply: dict[str, Any] = {"result": {"value": value}}
        except BaseException as exc:  # noqa: BLE001 - user code failing is a normal answer
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            reply = {"error": errors.error_reply(exc)}
        transport.send({"jsonrpc": "2.0", "id": msg["id"], **reply})


def main(argv: list[str]) -> int:
    rfd, wfd = int(argv[1]), int(argv[2])
    transport = Transport(rfd, wfd)
    init = transport.read_message()
    if init is None:
        return 2
    cfg = init["params"]
    harden = _load("_jan_sandbox_harden", os.path.join(HERE, "harden.py"))
    try:
        layers = harden.harden(cfg, {rfd, wfd})
        result: dict[str, Any] = {"pid": os.getpid(), "layers": layers}
        if cfg.get("probe"):
            result["checks"] = _probe_checks()
            transport.send({"jsonrpc": "2.0", "id": init["id"], "result": result})
            return 0
        errors.WHERE.update({k: str(cfg.get(k, "")) for k in ("assistant_id", "folder")})
        errors.block_network(layers)
        _setup_output()
        sdk = _register_sdk(cfg["sdk_dir"])
        sdk._bind(transport, {k: cfg.get(k) for k in ("assistant_id", "folder", "workspace")})
        transport.start_reader()
        _load_user_code(cfg)
        sdk._live = True
        result["subscriptions"] = sdk._subscriptions()
    except BaseException as exc:  # noqa: BLE001 - reported to the host, then exit
        transport.send({"jsonrpc": "2.0", "id": init["id"], "error": errors.error_reply(exc)})
        return 1
    transport.send({"jsonrpc": "2.0", "id": init["id"], "result": result})
    serve(transport, sdk)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
