"""The README's curl walk-through, run as written against gunicorn on a fresh demo database."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.server import BIN, ROOT, gunicorn


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[tuple[int, str, str]]:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {**os.environ, "INVENTORY_DATABASE_URL": url}
    subprocess.run([BIN / "inventory", "db", "upgrade"], env=env, check=True, capture_output=True)
    loaded = subprocess.run(
        [BIN / "inventory", "demo", "load"], env=env, check=True, capture_output=True, text=True
    )
    tokens = {
        role: re.search(rf"^\s+{role}\s+.*\s(inv_\S+)$", loaded.stdout, re.MULTILINE)
        for role in ("warehouse", "finance")
    }
    assert all(tokens.values()), loaded.stdout
    with gunicorn(url) as base:
        yield (
            int(base.rsplit(":", 1)[1]),
            tokens["warehouse"].group(1),  # type: ignore[union-attr]
            tokens["finance"].group(1),  # type: ignore[union-attr]
        )


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("<!-- walkthrough:start -->")[1].split("<!-- walkthrough:end -->")[0]
    return block.split("```bash\n", 1)[1].rsplit("```", 1)[0]


def test_the_readme_walkthrough_runs_as_written(demo_server: tuple[int, str, str]):
    port, token, finance_token = demo_server
    script = _walkthrough()
    assert "export TOKEN=paste-the-warehouse-token-here" in script
    script = (
        script.replace("paste-the-warehouse-token-here", token)
        .replace("paste-the-finance-token-here", finance_token)
        .replace("localhost:8000", f"127.0.0.1:{port}")
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
    assert '"shortfall":' in out and '"suggested_quantity":' in out
    assert '"status":"reserved"' in out.replace(" ", "")
    assert '"group_by":"payer"' in out.replace(" ", "")  # the per diem report
    assert "\nTOTAL," in out  # its CSV, with the totals line
