# expect: denied
# requires: seccomp

"""Namespaces, mounts, cross-process memory, bpf, io_uring: the usual ways out.

Each attempt is chosen to be harmless even if it succeeds (a mount over its own workspace that
is undone at once, a read of the host's memory that never stops the host), so a broken
sandbox fails this test instead of damaging the machine running it.
"""
import ctypes
import os

from jan.sdk.assistant import assistant, events


class IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


def read_host_memory(libc):
    buf = ctypes.create_string_buffer(8)
    local, remote = IOVec(ctypes.addressof(buf), 8), IOVec(0x10000, 8)
    libc.process_vm_readv.restype = ctypes.c_ssize_t
    rc = libc.process_vm_readv(os.getppid(), ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)
    # EFAULT means the permission check passed (only the address was bad): that is a leak.
    return 0 if rc >= 0 or ctypes.get_errno() == 14 else -1


def mount_over_workspace(libc):
    target = str(assistant.workspace).encode()
    rc = libc.mount(b"none", target, b"tmpfs", 0, None)
    if rc == 0:
        libc.umount2(target, 2)
    return rc


@events.on(f"assistant:{assistant.id}")
def attack(event):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    attempts = {
        "unshare(NEWUSER|NEWNS)": lambda: libc.unshare(0x10000000 | 0x00020000),
        "mount": lambda: mount_over_workspace(libc),
        "process_vm_readv(host)": lambda: read_host_memory(libc),
        "io_uring_setup": lambda: libc.syscall(425, 8, ctypes.create_string_buffer(120)),
        "bpf": lambda: libc.syscall(321, 0, None, 0),
    }
    escaped = [name for name, fn in attempts.items() if fn() >= 0]
    return f"LEAK {escaped}" if escaped else "DENIED all escape syscalls failed"
