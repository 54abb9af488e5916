"""Operations against real gunicorn workers: /metrics sums every worker's counters, and a
SIGTERM lets an in-flight request finish before the server stops."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from inventory.config import Settings
from inventory.db import Database
from inventory.users.models import Role
from tests.conftest import create_scratch_database
from tests.e2e.server import BIN, ROOT, free_port, gunicorn
from tests.integration.stockyard import Stockyard

pytestmark = pytest.mark.slow


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=30) as r:
        return r.status, r.read().decode()


def _requests_counted(metrics: str, endpoint: str) -> float:
    total = 0.0
    for line in metrics.splitlines():
        counted = line.startswith("inventory_http_requests_total{")
        if counted and f'endpoint="{endpoint}"' in line and 'status="200"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_metrics_add_up_the_requests_of_every_worker(tmp_path: Path):
    url, drop = create_scratch_database("sqlite", tmp_path)
    try:
        token = Stockyard(Database(Settings(database_url=url))).token(Role.ADMIN)
        with gunicorn(url, workers=3) as base:
            for _ in range(30):
                assert _get(f"{base}/api/v1/me", token)[0] == 200
            # Whichever worker answers /metrics, it reports all 30.
            for _ in range(5):
                _, text = _get(f"{base}/metrics")
                assert _requests_counted(text, "/api/v1/me") == 30
    finally:
        drop()


def test_sigterm_lets_the_request_in_flight_finish(tmp_path: Path):
    url, drop = create_scratch_database("sqlite", tmp_path)
    try:
        database = Database(Settings(database_url=url))
        token = Stockyard(database).token(Role.ADMIN)
        port = free_port()
        env = {
            **os.environ,
            "INVENTORY_DATABASE_URL": url,
            "WEB_CONCURRENCY": "1",
            "BIND": f"127.0.0.1:{port}",
            "INVENTORY_LOG_LEVEL": "WARNING",
            "INVENTORY_SQLITE_BUSY_TIMEOUT_MS": "20000",
        }
        server = subprocess.Popen(
            [BIN / "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "inventory.wsgi:app"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    _get(f"{base}/ready")
                    break
                except OSError:
                    assert time.monotonic() < deadline and server.poll() is None
                    time.sleep(0.2)
            # Hold SQLite's write lock so the next write request waits inside the worker.
            path = url.removeprefix("sqlite:///")
            blocker = sqlite3.connect(path, isolation_level=None)
            blocker.execute("BEGIN IMMEDIATE")
            result: dict[str, object] = {}

            def create_location() -> None:
                body = json.dumps(
                    {"code": "GRACEFUL-1", "name": "bin", "kind": "storage", "site": "S1"}
                ).encode()
                request = urllib.request.Request(
                    f"{base}/api/v1/locations",
                    data=body,
                    method="POST",
                    headers={
                        "Authorization": f"Bearer {token}",
                        "Content-Type": "application/json",
                    },
                )
                with urllib.request.urlopen(request, timeout=60) as response:
                    result["status"] = response.status

            client = threading.Thread(target=create_location)
            client.start()
            time.sleep(1.0)  # the request is now in the worker, waiting for the lock
            server.send_signal(signal.SIGTERM)
            time.sleep(1.0)
            assert server.poll() is None, "the server stopped with a request in flight"
            blocker.execute("ROLLBACK")
            blocker.close()
            client.join(timeout=30)
            assert result.get("status") == 201
            assert server.wait(timeout=30) == 0
        finally:
            if server.poll() is None:
                server.kill()
                server.wait()
        check = sqlite3.connect(url.removeprefix("sqlite:///"))
        try:
            codes = [row[0] for row in check.execute("SELECT code FROM locations")]
        finally:
            check.close()
        assert "GRACEFUL-1" in codes
    finally:
        drop()
