"""Prometheus metrics: requests by endpoint and status, ledger movements by type, reservation
shortfalls and idempotent replays.

Business counters count only what was committed: they are staged on the SQLAlchemy session
and published after its commit (dropped on rollback). Under gunicorn, set
``PROMETHEUS_MULTIPROC_DIR`` (gunicorn.conf.py does) and every worker's counts are summed.
"""

from __future__ import annotations

import os
from collections import Counter as Tally

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from sqlalchemy import event
from sqlalchemy.orm import Session

REQUESTS = Counter(
    "inventory_http_requests_total",
    "HTTP requests by method, endpoint (the URL rule) and status",
    ["method", "endpoint", "status"],
)
LATENCY = Histogram(
    "inventory_http_request_duration_seconds",
    "HTTP request latency by method and endpoint",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
MOVEMENTS = Counter(
    "inventory_ledger_movements_total", "Committed ledger movements by type", ["type"]
)
SHORTFALLS = Counter(
    "inventory_reservation_shortfalls_total",
    "Lines a planning run could not reserve (supplies per day, equipment per course)",
    ["kind"],
)
REPLAYS = Counter(
    "inventory_idempotent_replays_total",
    "Requests answered from a stored response (same Idempotency-Key, same body)",
    ["endpoint"],
)

_STAGED = "inventory.metrics.staged"


def count_on_commit(session: Session, counter: str, label: str, amount: int) -> None:
    """Add ``amount`` to a business counter once (and only if) the session commits."""
    if amount:
        staged: Tally[tuple[str, str]] = session.info.setdefault(_STAGED, Tally())
        staged[(counter, label)] += amount


_COUNTERS = {"movements": MOVEMENTS, "shortfalls": SHORTFALLS}


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    staged: Tally[tuple[str, str]] | None = session.info.pop(_STAGED, None)
    for (counter, label), amount in (staged or {}).items():
        _COUNTERS[counter].labels(label).inc(amount)


@event.listens_for(Session, "after_rollback")
def _drop(session: Session) -> None:
    session.info.pop(_STAGED, None)


def exposition() -> tuple[bytes, str]:
    """The metrics page: this process's, or all workers' in multiprocess mode."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(), CONTENT_TYPE_LATEST
