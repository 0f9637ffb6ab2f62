"""A real PostgreSQL server for tests, from Debian's ``postgresql`` packages.

``pg_server`` (session) is the server: ``JAN_TEST_POSTGRES_DSN`` when set (CI may provide one),
otherwise a private cluster started on a free loopback port in a temp dir (``initdb`` as the
``postgres`` user when running as root, since PostgreSQL refuses to run as root). ``pg_dsn``
(function) is a fresh database on it, dropped after the test. ``own_pg_server`` always starts a
private cluster, for tests that must stop and restart it.

When no server can be had the test is skipped with the reason, except under ``CI=true`` where a
missing database is a failure rather than a silently skipped suite.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

FAST = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


def unavailable(reason: str) -> None:
    """Skip (developer machine) or fail (CI) because PostgreSQL cannot be had."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"PostgreSQL unavailable in CI: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason} (apt-get install postgresql, "
                "or set JAN_TEST_POSTGRES_DSN)")


def bin_dir() -> Path | None:
    """The newest installed server's bin folder (Debian keeps them out of PATH)."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def kill_postmaster(data: Path) -> bool:
    """SIGQUIT (immediate shutdown) the postmaster serving ``data``, found through /proc, so
    it works even when the data folder itself is gone; True if one was found."""
    found = False
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            args = Path("/proc", entry, "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"-D" in args and str(data).encode() in args:
            with contextlib.suppress(OSError):
                os.kill(int(entry), signal.SIGQUIT)
                found = True
    return found


def reap_when_gone(parent: int, data: Path) -> None:
    """Wait for ``parent`` to exit, then stop the cluster it may have left running."""
    while True:
        try:  # a zombie counts as gone (the container's init may never reap it)
            state = Path(f"/proc/{parent}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            break
        if state in ("Z", "X"):
            break
        time.sleep(1)
    kill_postmaster(data)
    shutil.rmtree(data.parent, ignore_errors=True)


class PgCluster:
    """One private PostgreSQL cluster in a temp dir, on 127.0.0.1:<port>."""

    def __init__(self, *, durable: bool = False) -> None:
        self.bin = bin_dir()
        if self.bin is None:
            raise RuntimeError("no PostgreSQL server binaries (initdb) found")
        # As root the postgres user must reach the folder (and a socket path must stay short):
        # a world-traversable temp dir rather than a TMPDIR that may sit under a private home.
        base = next((d for d in ("/var/tmp", "/tmp") if os.path.isdir(d)), None)
        self.root = Path(tempfile.mkdtemp(prefix="jan-pg-",
                                          dir=base if os.geteuid() == 0 else None))
        self.data = self.root / "data"
        self.sockets = self.root / "sock"
        self.log = self.root / "server.log"
        self.port = free_port()
        self.durable = durable
        self._reaper = False
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            # initdb refuses root: hand the temp dir to the postgres system user.
            pw = pwd.getpwnam("postgres")
            self.sockets.mkdir()
            for p in (self.root, self.sockets):
                os.chown(p, pw.pw_uid, pw.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]
        else:
            self.sockets.mkdir()

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*self._as_user, *args], capture_output=True, text=True,
                              check=check, timeout=120)

    def init(self) -> None:
        self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                  "--auth=trust", "-E", "UTF8", "--no-locale", "--no-sync")

    def start(self) -> None:
        opts = f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1"
        if not self.durable:
            opts += " " + FAST
        result = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                           "-o", opts, "-w", "-t", "60", "start", check=False)
        if result.returncode != 0:
            tail = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {result.stderr.strip()} {tail}")
        if not self._reaper:
            # A test run killed before its teardown must not leave a server behind.
            self._reaper = True
            subprocess.Popen([sys.executable, __file__, "--reap", str(os.getpid()),
                              str(self.data)], start_new_session=True,
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)

    def stop(self, mode: str = "fast") -> None:
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop",
                  check=False)

    def restart(self) -> None:
        self.stop()
        self.start()

    def cleanup(self) -> None:
        result = self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                           "-w", "stop", check=False)
        if result.returncode != 0:  # e.g. the data folder was deleted under the server
            kill_postmaster(self.data)
        shutil.rmtree(self.root, ignore_errors=True)


@contextlib.contextmanager
def started_cluster(*, durable: bool = False) -> Iterator[PgCluster]:
    """Start a private cluster for the duration of the block (used by tests and bench)."""
    cluster = PgCluster(durable=durable)
    try:
        cluster.init()
        cluster.start()
        yield cluster
    finally:
        cluster.cleanup()


def with_dbname(dsn: str, dbname: str) -> str:
    params = psycopg.conninfo.conninfo_to_dict(dsn)
    params["dbname"] = dbname
    return psycopg.conninfo.make_conninfo(**params)


@contextlib.contextmanager
def fresh_database(server_dsn: str) -> Iterator[str]:
    """A new empty database on ``server_dsn``'s server; dropped (forcefully) afterwards."""
    name = f"jan_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_dbname(server_dsn, name)
    finally:
        with psycopg.connect(server_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def _private_or_skip() -> Iterator[PgCluster]:
    try:
        cluster = PgCluster()
    except (RuntimeError, OSError, KeyError) as exc:
        unavailable(str(exc))
    try:
        try:
            cluster.init()
            cluster.start()
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            unavailable(str(exc))
        yield cluster
    finally:
        cluster.cleanup()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """A DSN to a PostgreSQL server where tests may create databases."""
    external = os.environ.get("JAN_TEST_POSTGRES_DSN")
    if external:
        try:
            psycopg.connect(external, connect_timeout=10).close()
        except psycopg.Error as exc:
            unavailable(f"JAN_TEST_POSTGRES_DSN does not connect: {exc}")
        yield external
        return
    with _private_or_skip() as cluster:
        yield cluster.dsn


@pytest.fixture
def pg_dsn(pg_server: str) -> Iterator[str]:
    """A fresh, empty database for one test."""
    with fresh_database(pg_server) as dsn:
        yield dsn


@pytest.fixture
def own_pg_server() -> Iterator[PgCluster]:
    """A private cluster this test may stop and restart (fault tests)."""
    with _private_or_skip() as cluster:
        yield cluster


if __name__ == "__main__" and sys.argv[1:2] == ["--reap"]:
    reap_when_gone(int(sys.argv[2]), Path(sys.argv[3]))
