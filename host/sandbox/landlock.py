"""Landlock through raw syscalls (ctypes, stdlib only: the bootstrap loads this before anything).

Landlock lets an unprivileged process drop its own file-system (ABI 1+), TCP (ABI 4+) and IPC
(ABI 6+: abstract unix sockets, signals) rights for itself and its future children. Rules are
additive allowlists on file hierarchies; whatever access a ruleset *handles* and no rule grants
is denied. We ask the kernel which ABI it speaks and only handle what it knows, so the same code
runs on old kernels with fewer guarantees (reported, never silent).
"""

from __future__ import annotations

import ctypes
import os

# Same numbers on every architecture (added after the syscall table unification).
SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1 << 0
RULE_PATH_BENEATH = 1
PR_SET_NO_NEW_PRIVS = 38

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

READ = FS_READ_FILE | FS_READ_DIR
FILE_READ = FS_READ_FILE
WRITE = (FS_WRITE_FILE | FS_REMOVE_DIR | FS_REMOVE_FILE | FS_MAKE_DIR | FS_MAKE_REG
         | FS_MAKE_SYM | FS_REFER | FS_TRUNCATE)
FILE_WRITE = FS_WRITE_FILE | FS_TRUNCATE
_FILE_ONLY = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV


class _RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64),
                ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


class LandlockError(OSError):
    pass


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The Landlock ABI the kernel supports, or 0 when Landlock is off or missing."""
    try:
        libc = _libc()
    except OSError:
        return 0
    ret = libc.syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0),
                       ctypes.c_uint32(CREATE_RULESET_VERSION))
    return int(ret) if ret > 0 else 0


def handled_fs(abi: int) -> int:
    mask = (1 << 13) - 1
    if abi >= 2:
        mask |= FS_REFER
    if abi >= 3:
        mask |= FS_TRUNCATE
    if abi >= 5:
        mask |= FS_IOCTL_DEV
    return mask


def restrict(read_paths: list[str], write_paths: list[str], *, deny_tcp: bool = True,
             scope: bool = True) -> dict[str, object]:
    """Confine this process to the given paths. Returns what was enforced.

    ``read_paths``/``write_paths`` that do not exist are skipped. Raises ``LandlockError``
    when the kernel has no Landlock or a syscall fails (the caller decides strictness).
    """
    abi = abi_version()
    if abi < 1:
        raise LandlockError("Landlock is not supported or disabled by the kernel")
    libc = _libc()
    fs_mask = handled_fs(abi)
    attr = _RulesetAttr(fs_mask, 0, 0)
    size = 8
    if abi >= 4 and deny_tcp:
        attr.handled_access_net = NET_BIND_TCP | NET_CONNECT_TCP
        size = 16
    if abi >= 6 and scope:
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        size = 24
    fd = libc.syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                      ctypes.c_uint32(0))
    if fd < 0:
        err = ctypes.get_errno()
        raise LandlockError(err, f"landlock_create_ruleset: {os.strerror(err)}")
    try:
        rules = 0
        for paths, access in ((read_paths, READ), (write_paths, READ | WRITE)):
            for path in paths:
                rules += _add_rule(libc, int(fd), path, access & fs_mask)
        if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"prctl(NO_NEW_PRIVS): {os.strerror(err)}")
        if libc.syscall(SYS_RESTRICT_SELF, ctypes.c_int(fd), ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_restrict_self: {os.strerror(err)}")
    finally:
        os.close(int(fd))
    return {"abi": abi, "rules": rules, "tcp": bool(attr.handled_access_net),
            "scoped": bool(attr.scoped)}


def _add_rule(libc: ctypes.CDLL, ruleset_fd: int, path: str, access: int) -> int:
    try:
        pfd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        if not os.path.isdir(path):
            access &= _FILE_ONLY  # directory-only rights on a file are EINVAL
        rule = _PathBeneath(access, pfd)
        if libc.syscall(SYS_ADD_RULE, ctypes.c_int(ruleset_fd), ctypes.c_int(RULE_PATH_BENEATH),
                        ctypes.byref(rule), ctypes.c_uint32(0)) != 0:
            err = ctypes.get_errno()
            raise LandlockError(err, f"landlock_add_rule({path}): {os.strerror(err)}")
        return 1
    finally:
        os.close(pfd)
