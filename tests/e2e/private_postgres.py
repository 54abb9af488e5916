"""A private, throw-away PostgreSQL server for tests that must stop and restart the database.

The shared server other tests use must never be disturbed, so a crash test gets its own
cluster: ``initdb`` into a fresh directory, a free port, a socket directory of its own, and
``pg_ctl`` to stop it (``-m immediate``: no checkpoint, crash recovery on the next start) and
start it again. Running as root, every server command runs as the ``postgres`` OS user through
``runuser`` (``initdb`` refuses root).

The binaries come from ``INVENTORY_TEST_PG_BINDIR``, else ``/usr/lib/postgresql/15/bin``, else
wherever ``pg_ctl`` is on the PATH. Without them the test skips; with them but unable to run
(no ``postgres`` user, ``initdb`` failing) it skips too, except under ``CI=true``, where that
fails the run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import IN_CI
from tests.e2e.server import free_port

DEFAULT_BINDIR = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"  # the OS user the server runs as when the tests run as root


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl, or None."""
    override = os.environ.get("INVENTORY_TEST_PG_BINDIR")
    candidates = [Path(override)] if override else []
    candidates.append(DEFAULT_BINDIR)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for candidate in candidates:
        if (candidate / "initdb").is_file() and (candidate / "pg_ctl").is_file():
            return candidate
    return None


class NotRunnable(RuntimeError):
    """The binaries exist but a server cannot be made or started here."""


@dataclass
class PrivatePostgres:
    bindir: Path
    root: Path  # owned by the server's OS user: data directory, socket, log
    port: int

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def log(self) -> Path:
        return self.root / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / args[0]), *args[1:]]
        if os.geteuid() == 0:
            command = ["runuser", "-u", OS_USER, "--", *command]
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, cwd=self.root, check=False
        )
        if done.returncode != 0:
            raise NotRunnable(f"{args[0]} failed: {done.stdout}{done.stderr}".strip())
        return done

    def init(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            timeout=120,
        )
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(
                f"\n# private test server\n"
                f"port = {self.port}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\n"
                # A commit still writes its WAL to the kernel before it is acknowledged
                # (synchronous_commit stays on), and a stopped or killed server cannot lose what
                # the kernel holds: only power loss could, which no test here simulates. Not
                # forcing every write to disk keeps the run fast on a busy shared disk.
                "fsync = off\n"
                "synchronous_commit = on\n"
                "full_page_writes = on\n"
            )

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def is_running(self) -> bool:
        try:
            self._run("pg_ctl", "-D", str(self.data), "status")
        except (NotRunnable, OSError, subprocess.TimeoutExpired):
            return False
        return True

    def create_database(self, name: str) -> str:
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                connection.execute(text(f'CREATE DATABASE "{name}"'))
        finally:
            admin.dispose()
        return self.url(name)

    def server_log(self) -> str:
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def _owned_temp_dir() -> Path:
    """A fresh directory the server's OS user owns (pytest's tmp_path is root's, mode 700)."""
    root = Path(tempfile.mkdtemp(prefix="inventory-private-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, OS_USER, OS_USER)
    root.chmod(0o700)
    return root


def _unavailable(reason: str) -> None:
    if IN_CI:
        pytest.fail(f"PostgreSQL binaries are present but cannot run a private server: {reason}")
    pytest.skip(f"cannot run a private PostgreSQL server: {reason}")


@contextmanager
def private_postgres() -> Iterator[PrivatePostgres]:
    """A running private server; stopped and deleted afterwards."""
    bindir = find_bindir()
    if bindir is None:
        pytest.skip(
            f"PostgreSQL server binaries (initdb, pg_ctl) not found in {DEFAULT_BINDIR} or on "
            "the PATH; set INVENTORY_TEST_PG_BINDIR to run the crash test"
        )
    if os.geteuid() == 0:
        try:
            import pwd

            pwd.getpwnam(OS_USER)
        except KeyError:
            _unavailable(f"running as root, and there is no {OS_USER!r} OS user to run it as")
        if shutil.which("runuser") is None:
            _unavailable("running as root, and runuser is not installed")
    root = _owned_temp_dir()
    server = PrivatePostgres(bindir, root, free_port())
    try:
        try:
            server.init()
            server.start()
        except (NotRunnable, OSError, subprocess.TimeoutExpired) as error:
            _unavailable(str(error))
        yield server
    finally:
        if server.is_running():
            with suppress(NotRunnable, OSError, subprocess.TimeoutExpired):
                server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)
