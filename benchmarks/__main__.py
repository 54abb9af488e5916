"""``python -m benchmarks [planning] [--patients N] [--quick] [--json PATH]``"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import planning
from inventory.config import normalize_database_url
from inventory.schema_version import upgrade

ADMIN_URL = normalize_database_url(
    os.environ.get("INVENTORY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)


def scratch_database() -> tuple[str, callable]:  # type: ignore[valid-type]
    name = f"inventory_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    upgrade(url)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench")
    parser.add_argument("which", nargs="?", default="planning", choices=["planning"])
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument("--quick", action="store_true", help="100 patients, for CI")
    parser.add_argument("--json", type=Path, default=Path("bench-results/latest.json"))
    args = parser.parse_args()
    patients = 100 if args.quick else args.patients
    results = []
    for _ in [args.which]:
        url, drop = scratch_database()
        try:
            results.append(planning.run(url, patients))
        finally:
            drop()
    for result in results:
        width = max(len(key) for key in result)
        print(f"== {result['benchmark']}")
        for key, value in result.items():
            print(f"  {key:<{width}}  {value}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
