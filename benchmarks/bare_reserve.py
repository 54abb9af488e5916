"""The reservation benchmark's second baseline: the same reservation as a bare Flask endpoint
with hand-written SQL, served by the same gunicorn (``gunicorn.conf.py``) on the same database
in the same run, so ``scripts/bench http`` can say what the service adds on top of the bare
work, not only how it compares with ``pgbench``.

``POST /api/v1/infusion-days/<id>/reserve`` does what the service's endpoint does for a
scheduled day, and nothing else:

- the day, if it is scheduled (or short) and not in the past, and its therapy's template lines;
- the template's items locked in id order (the ledger's lock order);
- the site's storage balances with units free, lots neither recalled nor expired by the day,
  earliest expiry first, read under the locks;
- each line allocated FEFO, counted in its balances' ``reserved``, one active reservation
  per balance drawn on, and the day marked reserved; one commit.

No authentication, no input schema or response schema, no ORM, no idempotency, no metrics, no
equipment top-up and no re-check of a plan drafted before the locks: it is the floor the
service's reservation is measured against, not a second implementation of the service (it
never runs outside ``benchmarks``). A short day answers 409 and changes nothing.

One psycopg connection per worker process: gunicorn's sync workers serve one request at a
time."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
from flask import Flask, jsonify

from inventory.config import Settings
from inventory.db import postgresql_options

app = Flask(__name__)
_connection: psycopg.Connection[Any] | None = None

DAY = """
SELECT therapy_id, site, date FROM infusion_days
WHERE id = %s AND status IN ('scheduled', 'short') AND date >= CURRENT_DATE
"""
LINES = """
SELECT l.item_id, l.quantity_per_day FROM therapies t
JOIN kit_template_lines l ON l.template_id = t.template_id
WHERE t.id = %s ORDER BY l.item_id
"""
LOCK = "SELECT id FROM items WHERE id = ANY(%s) ORDER BY id FOR UPDATE"
FREE = """
SELECT b.id, b.item_id, b.lot_id, b.location_id, b.on_hand - b.reserved
FROM stock_balances b
JOIN locations l ON l.id = b.location_id
LEFT JOIN lots ON lots.id = b.lot_id
WHERE b.item_id = ANY(%s) AND b.site = %s AND l.kind = 'storage' AND b.on_hand > b.reserved
  AND (lots.id IS NULL OR (lots.recalled_at IS NULL AND lots.expiry >= %s))
ORDER BY b.item_id, lots.expiry NULLS LAST, b.id
"""
HOLD = "UPDATE stock_balances SET reserved = reserved + %s WHERE id = %s"
RESERVE = """
INSERT INTO reservations (site, therapy_id, infusion_day_id, item_id, lot_id, location_id,
                          quantity, status, created_at, packed_quantity)
VALUES (%s, %s, %s, %s, %s, %s, %s, 'active', %s, 0)
"""
MARK = "UPDATE infusion_days SET status = 'reserved', version = version + 1 WHERE id = %s"


def connection() -> psycopg.Connection[Any]:
    """The worker's connection, with the service's own session settings (timeouts, UTC)."""
    global _connection
    if _connection is None or _connection.closed:
        settings = Settings.from_env()
        url = settings.database_url.replace("postgresql+psycopg://", "postgresql://")
        _connection = psycopg.connect(  # autocommit: transaction() brackets each request
            url, autocommit=True, options=postgresql_options(settings)
        )
    return _connection


@app.get("/ready")
def ready() -> Any:  # what the benchmark waits for before it starts the clients
    connection().execute("SELECT 1")
    return jsonify(status="ready")


class Refused(Exception):
    pass


@app.post("/api/v1/infusion-days/<int:day_id>/reserve")
def reserve(day_id: int) -> Any:
    try:
        return jsonify(reserved_lines=_reserve(connection(), day_id), days_fully_reserved=1)
    except Refused as refused:  # the transaction rolled back
        return jsonify(detail=str(refused)), 409


def _reserve(db: psycopg.Connection[Any], day_id: int) -> int:
    with db.transaction():
        day = db.execute(DAY, (day_id,)).fetchone()
        if day is None:
            raise Refused(f"day {day_id} is not open")
        therapy_id, site, on = day
        lines = db.execute(LINES, (therapy_id,)).fetchall()
        item_ids = [item_id for item_id, _ in lines]
        db.execute(LOCK, (item_ids,))
        free: dict[int, list[tuple[int, int | None, int, int]]] = {}
        for balance_id, item_id, lot_id, location_id, available in db.execute(
            FREE, (item_ids, site, on)
        ):
            free.setdefault(item_id, []).append((balance_id, lot_id, location_id, available))
        holds: list[tuple[int, int]] = []
        reservations: list[tuple[Any, ...]] = []
        now = datetime.now(UTC)
        for item_id, wanted in lines:
            choices = free.get(item_id, [])
            for index, (balance_id, lot_id, location_id, available) in enumerate(choices):
                take = min(wanted, available)
                if not take:
                    continue
                choices[index] = (balance_id, lot_id, location_id, available - take)
                holds.append((take, balance_id))
                reservations.append(
                    (site, therapy_id, day_id, item_id, lot_id, location_id, take, now)
                )
                wanted -= take
                if not wanted:
                    break
            if wanted:
                raise Refused(f"day {day_id} is short of item {item_id}")
        with db.cursor() as cursor:
            cursor.executemany(HOLD, holds)
            cursor.executemany(RESERVE, reservations)
            cursor.execute(MARK, (day_id,))
    return len(reservations)
