"""A seccomp denylist built with libseccomp through ctypes (stdlib only).

Default action is *allow* (Python and arbitrary wheels need a wide syscall surface); what we
deny is what lets code leave the sandbox: every new socket (IP, packet, netlink and AF_UNIX too:
a pathname UNIX socket such as a session bus or docker.sock is a door out of the sandbox;
``socketpair`` stays, asyncio's self-pipe needs it), ptrace and cross-process
memory access, namespaces and mounts, kernel modules/bpf/perf, io_uring (it can open sockets
behind seccomp's back), signals to other processes, every call that acts on *another* process
(``prlimit64`` on the host would lower its open-file or CPU limit; scheduling, priority, I/O
priority, memory placement and robust-list reads likewise) and (unless allowed) new processes.
Those per-process calls stay allowed on this process through pid 0 (what glibc's ``setrlimit``,
``os.sched_setaffinity(0, ...)`` and ``os.setpriority(PRIO_PROCESS, 0, ...)`` pass); a non-zero
pid is refused even when it is our own (one comparison per argument is all libseccomp allows).
Denied calls fail with EPERM/EACCES so user code sees a clear ``PermissionError``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os

ACT_ALLOW = 0x7FFF0000
ACT_KILL_PROCESS = 0x80000000
CMP_NE = 1
CMP_EQ = 4
CMP_MASKED_EQ = 7
ATTR_CTL_TSYNC = 4
AF_UNIX = 1
CLONE_THREAD = 0x00010000
CLONE_NAMESPACES = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000,
                    0x40000000)
TIOCSTI = 0x5412

DENIED = (
    "ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_open", "pidfd_getfd",
    "pidfd_send_signal", "tkill", "mount", "umount2", "pivot_root", "chroot", "unshare", "setns",
    "move_mount", "open_tree", "fsopen", "fsconfig", "fsmount", "fspick", "mount_setattr",
    "bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module", "finit_module",
    "delete_module", "reboot", "swapon", "swapoff", "acct", "quotactl", "keyctl", "add_key",
    "request_key", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "fanotify_init", "settimeofday", "clock_settime",
    "clock_adjtime", "adjtimex", "syslog", "mknod", "mknodat", "setsid", "setpgid", "vhangup",
    "iopl", "ioperm", "personality", "lookup_dcookie", "uselib", "nfsservctl",
    "process_madvise", "process_mrelease",
)
# (syscall, index of its pid argument): allowed only with pid 0 (this process).
SELF_ONLY = (
    ("prlimit64", 0), ("sched_setaffinity", 0), ("sched_setscheduler", 0),
    ("sched_setparam", 0), ("sched_setattr", 0), ("migrate_pages", 0), ("move_pages", 0),
    ("get_robust_list", 0), ("setpriority", 1), ("ioprio_set", 1),
)
PRIO_PROCESS = 0
IOPRIO_WHO_PROCESS = 1
NO_SPAWN = ("fork", "vfork", "execve", "execveat")


class _ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


class SeccompError(OSError):
    pass


def act_errno(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


_LIB: ctypes.CDLL | None = None


def load_library() -> ctypes.CDLL:
    global _LIB
    if _LIB is not None:
        return _LIB
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError:
        name = ctypes.util.find_library("seccomp")
        try:
            lib = ctypes.CDLL(name or "libseccomp.so", use_errno=True)
        except OSError as exc:
            raise SeccompError(errno.ENOENT, f"libseccomp not found ({exc})") from None
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                           ctypes.c_uint, ctypes.POINTER(_ArgCmp)]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_load.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
    _LIB = lib
    return lib


def available() -> tuple[bool, str]:
    try:
        load_library()
    except SeccompError as exc:
        return False, str(exc)
    try:
        with open("/proc/self/status") as f:
            if "Seccomp:" not in f.read():
                return False, "kernel built without seccomp"
    except OSError:
        pass
    return True, "libseccomp loaded"


class _Filter:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        self.ctx = lib.seccomp_init(ACT_ALLOW)
        if not self.ctx:
            raise SeccompError(errno.ENOMEM, "seccomp_init failed")
        self.rules = 0

    def deny(self, name: str, action: int, *cmps: tuple[int, int, int, int]) -> None:
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:
            return  # not a syscall on this architecture
        arr = (_ArgCmp * max(1, len(cmps)))(*[_ArgCmp(*c) for c in cmps])
        rc = self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(cmps), arr)
        if rc != 0:
            raise SeccompError(-rc, f"seccomp_rule_add({name}): {os.strerror(-rc)}")
        self.rules += 1


def install(*, allow_spawn: bool = False) -> dict[str, object]:
    """Load the filter into this process (irrevocable). Returns a summary."""
    lib = load_library()
    flt = _Filter(lib)
    try:
        eperm, eacces = act_errno(errno.EPERM), act_errno(errno.EACCES)
        pid = os.getpid()
        # No socket() at all, whatever the domain: connect() needs one, socketpair() does not.
        flt.deny("socket", eacces)
        flt.deny("socketpair", eacces, (0, CMP_NE, AF_UNIX, 0))
        for name in DENIED:
            flt.deny(name, eperm)
        for name, arg in SELF_ONLY:
            flt.deny(name, eperm, (arg, CMP_NE, 0, 0))
        # ...and priorities by process only (not by process group or by user).
        flt.deny("setpriority", eperm, (0, CMP_NE, PRIO_PROCESS, 0))
        flt.deny("ioprio_set", eperm, (0, CMP_NE, IOPRIO_WHO_PROCESS, 0))
        # Signals only to ourselves: the host, siblings and other sandboxes are out of reach.
        for name in ("kill", "tgkill", "rt_sigqueueinfo", "rt_tgsigqueueinfo"):
            flt.deny(name, eperm, (0, CMP_NE, pid, 0))
        flt.deny("ioctl", eperm, (1, CMP_EQ, TIOCSTI, 0))
        # glibc falls back from clone3 to clone on ENOSYS, where flags are inspectable.
        flt.deny("clone3", act_errno(errno.ENOSYS))
        for bit in CLONE_NAMESPACES:
            flt.deny("clone", eperm, (0, CMP_MASKED_EQ, bit, bit))
        if not allow_spawn:
            for name in NO_SPAWN:
                flt.deny(name, eperm)
            flt.deny("clone", eperm, (0, CMP_MASKED_EQ, CLONE_THREAD, 0))
        lib.seccomp_attr_set(flt.ctx, ATTR_CTL_TSYNC, 1)
        rc = lib.seccomp_load(flt.ctx)
        if rc != 0:
            raise SeccompError(-rc, f"seccomp_load: {os.strerror(-rc)}")
        return {"rules": flt.rules, "spawn": allow_spawn}
    finally:
        lib.seccomp_release(flt.ctx)
