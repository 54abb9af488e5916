"""The README's configuration table names every variable the service reads."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_inventory_variable_is_in_the_readme_table():
    read = set(re.findall(r'"(INVENTORY_[A-Z_]+)"', (ROOT / "inventory" / "config.py").read_text()))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = readme.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"\| `(INVENTORY_[A-Z_]+)` \|", table))
    assert read, "config.py reads no INVENTORY_ variable?"
    assert read - documented == set()
