"""The README's curl walk-through, run as written against gunicorn on a fresh demo database."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[int, str]]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    env = {**os.environ, "INVENTORY_DATABASE_URL": f"sqlite:///{tmp_path / 'demo.db'}"}
    subprocess.run([BIN / "inventory", "db", "upgrade"], env=env, check=True, capture_output=True)
    loaded = subprocess.run(
        [BIN / "inventory", "demo", "load"], env=env, check=True, capture_output=True, text=True
    )
    token = re.search(r"^\s+warehouse\s+.*\s(inv_\S+)$", loaded.stdout, re.MULTILINE)
    assert token, loaded.stdout
    port = _free_port()
    server = subprocess.Popen(
        [BIN / "gunicorn", "-c", str(ROOT / "gunicorn.conf.py"), "inventory.wsgi:app"],
        env={**env, "PORT": str(port), "WEB_CONCURRENCY": "2", "BIND": f"127.0.0.1:{port}"},
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/ready", timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.2)
        yield port, token.group(1)
    finally:
        server.terminate()
        server.wait(timeout=30)


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    return block.split("```bash\n", 1)[1].rsplit("```", 1)[0]


def test_the_readme_walkthrough_runs_as_written(demo_server: tuple[int, str]):
    port, token = demo_server
    script = _walkthrough()
    assert "export TOKEN=paste-the-warehouse-token-here" in script
    script = script.replace("paste-the-warehouse-token-here", token).replace(
        "localhost:8000", f"127.0.0.1:{port}"
    )
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert '"expiry":"2029-06-30"' in out.replace(" ", "")  # DD=00 → the month's last day
    assert "Idempotent-Replayed: true" in out
    assert '"status":409' in out.replace(" ", "")
    assert '"available":440' in out.replace(" ", "")  # 500 - 48 moved - 12 damaged
