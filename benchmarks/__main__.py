"""``python -m benchmarks [planning|report|http|all] [--patients N] [--quick] [--json PATH]``

``http`` serves the app with gunicorn and drives it over HTTP (see benchmarks/http_load.py);
``--clients`` and ``--workers`` size it, ``--patients`` does not apply to it. ``all`` runs
planning, report and http, each on a scratch database of its own."""

from __future__ import annotations

import argparse
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from benchmarks import http_load, planning, report
from inventory.config import normalize_database_url
from inventory.schema_version import upgrade

ADMIN_URL = normalize_database_url(
    os.environ.get("INVENTORY_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)


def scratch_database() -> tuple[str, Callable[[], None]]:
    name = f"inventory_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    try:
        upgrade(url)
    except BaseException:
        drop()
        raise
    return url, drop


def main() -> None:
    parser = argparse.ArgumentParser(prog="scripts/bench")
    parser.add_argument(
        "which", nargs="?", default="planning", choices=["planning", "report", "http", "all"]
    )
    parser.add_argument("--patients", type=int, default=1000)
    parser.add_argument(
        "--quick", action="store_true", help="for CI: 100 patients; http: short and small"
    )
    parser.add_argument("--json", type=Path, default=Path("bench-results/latest.json"))
    parser.add_argument("--clients", type=int, default=16, help="http: concurrent clients")
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="http: gunicorn workers (default gunicorn.conf.py's: min(2 x cores + 1, 8))",
    )
    args = parser.parse_args()
    patients = 100 if args.quick else args.patients
    results = []
    chosen = ["planning", "report", "http"] if args.which == "all" else [args.which]
    for which in chosen:
        started = time.perf_counter()
        url, drop = scratch_database()
        try:
            if which == "http":
                results.extend(
                    http_load.run(url, ADMIN_URL, args.quick, args.clients, args.workers)
                )
            else:
                bench = {"planning": planning.run, "report": report.run}[which]
                results.append(bench(url, patients))
        finally:
            drop()
        print(f"{which}: {time.perf_counter() - started:.1f} s")
    for result in results:
        width = max(len(key) for key in result)
        print(f"== {result['benchmark']}")
        for key, value in result.items():
            print(f"  {key:<{width}}  {value}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    if any(result.get("totals_match") is False for result in results):
        raise SystemExit("the per diem report and the hand-written SQL disagree (see above)")
    if any(
        result.get("problems") or result.get("ledger_consistent") is False for result in results
    ):
        raise SystemExit("the HTTP benchmark saw failed requests or a broken ledger (see above)")


if __name__ == "__main__":
    main()
