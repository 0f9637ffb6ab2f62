# expect: denied
# requires: seccomp

"""Every other syscall that acts on another pid, aimed at the host; each writes back the value
it just read (or a harmless one), so a broken sandbox fails this test without hurting the host."""
import ctypes
import os

from jan.sdk.assistant import assistant, events

SYS_IOPRIO_GET, SYS_IOPRIO_SET, SYS_GET_ROBUST_LIST = 252, 251, 274
IOPRIO_WHO_PROCESS, IOPRIO_WHO_PGRP, PRIO_PGRP = 1, 2, 1


def robust_list(libc, pid):
    head, size = ctypes.c_void_p(), ctypes.c_size_t()
    return libc.syscall(SYS_GET_ROBUST_LIST, pid, ctypes.byref(head), ctypes.byref(size))


@events.on(f"assistant:{assistant.id}")
def attack(event):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    ppid, pgid = os.getppid(), os.getpgid(os.getppid())
    io = libc.syscall(SYS_IOPRIO_GET, IOPRIO_WHO_PROCESS, ppid)
    attempts = {
        "sched_setaffinity(host)": lambda: os.sched_setaffinity(ppid, os.sched_getaffinity(ppid)),
        "sched_setparam(host)": lambda: os.sched_setparam(ppid, os.sched_getparam(ppid)),
        "sched_setscheduler(host)": lambda: os.sched_setscheduler(
            ppid, os.sched_getscheduler(ppid), os.sched_getparam(ppid)),
        "setpriority(host)": lambda: os.setpriority(
            os.PRIO_PROCESS, ppid, os.getpriority(os.PRIO_PROCESS, ppid)),
        "setpriority(host group)": lambda: os.setpriority(
            PRIO_PGRP, pgid, os.getpriority(PRIO_PGRP, pgid)),
        "setpriority(user)": lambda: os.setpriority(
            os.PRIO_USER, os.getuid(), os.getpriority(os.PRIO_USER, os.getuid())),
    }
    allowed = []
    for name, fn in attempts.items():
        try:
            fn()
            allowed.append(name)
        except OSError:
            pass
    if io >= 0 and libc.syscall(SYS_IOPRIO_SET, IOPRIO_WHO_PROCESS, ppid, io) == 0:
        allowed.append("ioprio_set(host)")
    if io >= 0 and libc.syscall(SYS_IOPRIO_SET, IOPRIO_WHO_PGRP, pgid, io) == 0:
        allowed.append("ioprio_set(host group)")
    if robust_list(libc, ppid) == 0:
        allowed.append("get_robust_list(host)")
    # Our own process keeps these (pid 0).
    os.sched_setaffinity(0, os.sched_getaffinity(0))
    os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0))
    return f"LEAK {allowed}" if allowed else "DENIED nothing reaches another pid"
