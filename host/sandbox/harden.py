"""The hardening steps the bootstrap applies to itself before any assistant code runs.

Stdlib only: this module is loaded by file path inside ``python -I`` before ``jan`` is importable.
Every step returns a ``(active, detail)`` pair so the worker can tell the host exactly which
isolation it reached; ``harden()`` raises ``HardeningError`` in strict mode when a required
layer could not be applied (the assistant's code is then never imported).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import resource
import sys
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_CAPBSET_DROP = 24
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
CAP_VERSION_3 = 0x20080522


class HardeningError(RuntimeError):
    pass


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def clean_env(env: dict[str, str]) -> tuple[bool, str]:
    os.environ.clear()
    os.environ.update({str(k): str(v) for k, v in env.items()})
    return True, "allowlist: " + ",".join(sorted(env))


def close_fds(keep: set[int]) -> tuple[bool, str]:
    # stdin/stdout/stderr are /dev/null and the host's drained pipes; everything else goes.
    keep = keep | {0, 1, 2}
    try:
        fds = [int(n) for n in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    closed = 0
    for fd in fds:
        if fd not in keep:
            try:
                os.close(fd)
                closed += 1
            except OSError:
                pass
    return True, f"kept {sorted(keep)}"


def ensure_session() -> tuple[bool, str]:
    if os.getpgid(0) != os.getpid():
        try:
            os.setsid()
        except OSError as exc:
            return False, f"setsid failed: {exc}"
    return True, f"pgid={os.getpgid(0)} sid={os.getsid(0)}"


def die_with_host(host_pid: int | None) -> tuple[bool, str]:
    """SIGKILL this worker when the host goes away, however it ends (even kill -9)."""
    libc = _libc()
    if libc.prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0) != 0:
        return False, f"prctl(PDEATHSIG): {os.strerror(ctypes.get_errno())}"
    if host_pid and os.getppid() != host_pid:
        os._exit(3)  # the host died before the request above took effect
    return True, "killed with the host"


def set_rlimits(limits: dict[str, int]) -> tuple[bool, str]:
    # No RLIMIT_NPROC here: it counts every task of the uid, not ours (see limit_processes).
    table = {
        "cpu_seconds": (resource.RLIMIT_CPU, 1, 5),
        "memory_mb": (resource.RLIMIT_AS, 1024 * 1024, 0),
        "open_files": (resource.RLIMIT_NOFILE, 1, 0),
        "file_size_mb": (resource.RLIMIT_FSIZE, 1024 * 1024, 0),
    }
    done = []
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    done.append("core=0")
    for key, (which, scale, slack) in table.items():
        value = limits.get(key)
        if not value:
            continue
        soft = int(value) * scale
        hard = soft + slack * scale  # CPU: SIGXCPU first, SIGKILL a bit later
        _, cur_hard = resource.getrlimit(which)
        if cur_hard != resource.RLIM_INFINITY:
            soft, hard = min(soft, cur_hard), min(hard, cur_hard)
        resource.setrlimit(which, (soft, hard))
        done.append(f"{key}={value}")
    return True, " ".join(done)


def count_user_tasks() -> int | None:
    """Tasks (threads included) of our real uid: what RLIMIT_NPROC counts. Read before Landlock
    hides other processes' /proc entries."""
    uid, total = str(os.getuid()), 0
    try:
        pids = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return None
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                fields = dict(line.split(":", 1) for line in f if ":" in line)
        except (OSError, ValueError):
            continue  # gone meanwhile, or not ours to read
        if fields.get("Uid", "").split()[:1] == [uid]:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


def limit_processes(budget: int, existing: int | None, seccomp_blocks: bool) -> str:
    """RLIMIT_NPROC only as the fallback fork-bomb guard when seccomp does not stop new
    processes; set above what the uid already runs so this worker can still start threads."""
    if not budget:
        return "processes: not limited"
    if seccomp_blocks:
        return "processes: no RLIMIT_NPROC (seccomp denies new processes)"
    if existing is None:
        return "processes: not limited (cannot count the user's tasks)"
    soft = existing + int(budget)
    _, cur_hard = resource.getrlimit(resource.RLIMIT_NPROC)
    if cur_hard != resource.RLIM_INFINITY:
        soft = min(soft, cur_hard)
    try:
        resource.setrlimit(resource.RLIMIT_NPROC, (soft, soft))
    except (OSError, ValueError) as exc:
        return f"processes: not limited (setrlimit: {exc})"
    return f"processes: RLIMIT_NPROC={soft} ({existing} tasks of the uid + {budget})"


def _netns_inode() -> int | None:
    try:
        return os.stat("/proc/self/ns/net").st_ino
    except OSError:
        return None


def _write(path: str, text: str) -> None:
    with open(path, "w") as f:
        f.write(text)


def enter_netns() -> tuple[bool, str]:
    """A fresh network namespace: no interfaces up, so no route anywhere (not even the host)."""
    libc = _libc()
    before = _netns_inode()
    if libc.unshare(CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        uid, gid = os.getuid(), os.getgid()
        # Unprivileged: a user namespace grants the right to make a network namespace.
        if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
            err2 = ctypes.get_errno()
            return False, (f"unshare(NEWNET): {os.strerror(err)}; "
                           f"with NEWUSER: {os.strerror(err2)}")
        try:
            _write("/proc/self/setgroups", "deny")
            _write("/proc/self/uid_map", f"{uid} {uid} 1")
            _write("/proc/self/gid_map", f"{gid} {gid} 1")
        except OSError as exc:
            return True, f"user+net namespace (id map failed: {exc})"
    after = _netns_inode()
    if before is not None and before == after:
        return False, "namespace did not change"
    return True, "private network namespace (loopback down)"


def drop_capabilities() -> tuple[bool, str]:
    """As root, keep uid 0 but give up every capability (bounding, ambient, effective...)."""
    libc = _libc()
    libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    for cap in range(64):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and cap > 40:
            break
    header = (ctypes.c_uint32 * 2)(CAP_VERSION_3, 0)
    data = (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:
        return False, f"capset: {os.strerror(ctypes.get_errno())}"
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        return False, f"no_new_privs: {os.strerror(ctypes.get_errno())}"
    return True, "all capabilities dropped, no_new_privs"


def _load_sibling(name: str) -> Any:
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(f"_jan_sandbox_{name}",
                                                  os.path.join(here, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def apply_landlock(landlock: Any, read: list[str], write: list[str]) -> tuple[bool, str]:
    read = [p.replace("{pid}", str(os.getpid())) for p in read]
    try:
        info = landlock.restrict(read, write)
    except OSError as exc:
        return False, str(exc)
    tcp = "denied" if info["tcp"] else "n/a"
    scoped = "scoped" if info["scoped"] else "n/a"
    return True, f"ABI {info['abi']}, {info['rules']} rules, tcp={tcp}, signals={scoped}"


def apply_seccomp(seccomp: Any, allow_spawn: bool) -> tuple[bool, str]:
    try:
        info = seccomp.install(allow_spawn=allow_spawn)
    except OSError as exc:
        return False, str(exc)
    spawn = "allowed" if allow_spawn else "denied"
    return True, f"{info['rules']} deny rules; new processes {spawn}"


def _note_processes(layers: dict[str, dict[str, Any]], detail: str) -> None:
    if "rlimits" in layers:
        layers["rlimits"]["detail"] = f"{layers['rlimits']['detail']}; {detail}"


def harden(cfg: dict[str, Any], keep_fds: set[int]) -> dict[str, dict[str, Any]]:
    """Apply every layer ``cfg`` asks for, in the only order that works, and report."""
    mode = cfg.get("mode", "best_effort")
    required = set(cfg.get("required", []))
    layers: dict[str, dict[str, Any]] = {}

    def step(name: str, fn: Any, *args: Any) -> None:
        try:
            active, detail = fn(*args)
        except Exception as exc:  # noqa: BLE001 - reported as an inactive layer
            active, detail = False, f"{type(exc).__name__}: {exc}"
        layers[name] = {"active": bool(active), "detail": detail}
        if mode == "strict" and name in required and not active:
            raise HardeningError(f"required isolation layer '{name}' unavailable: {detail}")

    step("env", clean_env, cfg.get("env", {}))
    step("fds", close_fds, keep_fds)
    step("process_group", ensure_session)
    step("parent_death", die_with_host, cfg.get("host_pid"))
    step("rlimits", set_rlimits, cfg.get("limits", {}))
    budget = int(cfg.get("limits", {}).get("processes") or 0)
    existing = count_user_tasks() if budget else None
    if mode == "off":
        _note_processes(layers, limit_processes(budget, existing, False))
        return layers
    want = cfg.get("layers", {})
    # Load everything needed before Landlock hides this folder.
    landlock, seccomp = _load_sibling("landlock"), _load_sibling("seccomp")
    if want.get("seccomp", True):
        with contextlib.suppress(OSError):
            seccomp.load_library()
    if want.get("netns", True):
        step("netns", enter_netns)
    if want.get("landlock", True):
        step("landlock", apply_landlock, landlock, cfg.get("read_paths", []),
             cfg.get("write_paths", []))
    allow_spawn = bool(cfg.get("allow_spawn", False))
    if want.get("seccomp", True):
        step("seccomp", apply_seccomp, seccomp, allow_spawn)
    blocks = layers.get("seccomp", {}).get("active", False) and not allow_spawn
    _note_processes(layers, limit_processes(budget, existing, blocks))
    if os.getuid() == 0 and want.get("capabilities", True):
        step("capabilities", drop_capabilities)
    sys.dont_write_bytecode = True
    return layers
