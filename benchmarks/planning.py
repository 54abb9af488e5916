"""Planning benchmark: 1,000 patients with the demo therapy mix on PostgreSQL, a 28-day run.

Times the run from empty and again with nothing changed, counts SQL statements, and measures a
baseline in the same run on the same database: hand-written SQL that writes the same
reservation rows and balance updates (the floor any implementation pays), so the figure that
matters is the ratio, which machine noise moves much less than seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, event, select, text

from inventory.auth import Caller
from inventory.care.models import (
    Counting,
    KitTemplate,
    Patient,
    Payer,
    PayerRate,
    TemplateEquipment,
    TemplateLine,
)
from inventory.catalog import service as catalog
from inventory.catalog.models import LocationKind, Tracking
from inventory.config import Settings
from inventory.db import Database, utcnow
from inventory.demo.catalog import DEMO_ITEMS
from inventory.demo.loader import create_catalog
from inventory.ledger.models import Reservation
from inventory.planning import service as planning
from inventory.stock import service as stock
from inventory.therapies import service as therapies
from inventory.users.models import Role, User

SITE = "BENCH"
# (name, hcpcs, schedule, supply lines (sku, per day), equipment (sku, quantity))
THERAPY_MIX = (
    (
        "enzyme replacement",
        "S9357",
        {"every_days": 14},
        [
            ("ADM-SET-104", 1),
            ("FLT-022-LPB", 1),
            ("CTH-PIV-22", 1),
            ("FLS-NS-10", 4),
            ("PRP-ALC-001", 4),
            ("PRP-CHG-3ML", 1),
            ("DRS-TSP-0203", 1),
            ("PPE-GLV-NIT-M", 2),
            ("OTH-UPD-2336", 1),
        ],
        [("EQP-PMP-AMB", 1), ("EQP-POLE-5W", 1)],
    ),
    (
        "immune globulin",
        "S9338",
        {"every_days": 28},
        [
            ("ADM-SET-104", 1),
            ("FLT-022-LPB", 1),
            ("CTH-PIV-24", 1),
            ("FLS-NS-10", 3),
            ("PRP-ALC-001", 4),
            ("DRS-TSP-0203", 1),
            ("PPE-GLV-NIT-M", 2),
        ],
        [("EQP-PMP-AMB", 1)],
    ),
    (
        "daily anti-infective",
        "S9500",
        {"every_days": 1},
        [
            ("FLS-NS-10", 2),
            ("FLS-HEP-100", 1),
            ("PRP-ALC-001", 2),
            ("PPE-GLV-NIT-M", 1),
            ("ADM-SET-104", 1),
        ],
        [],
    ),
)


@dataclass
class Timing:
    seconds: float
    statements: int


class StatementCounter:
    def __init__(self, engine: Engine) -> None:
        self.count = 0
        event.listen(engine, "before_cursor_execute", self._seen)

    def _seen(self, *args: Any) -> None:
        self.count += 1


def build_pharmacy(database: Database, patients: int, serial_units: int | None = None) -> None:
    """Catalog, plenty of stock in two lots per item, templates, payers, patients, therapies.
    ``serial_units``: how many of each pump and pole (default 800 pumps and 400 poles;
    receiving serial units is the slow part of the set-up)."""
    today = utcnow().date()
    with database.transaction() as session:
        admin = User(name="bench admin", role=Role.ADMIN)
        session.add(admin)
        session.flush()
        caller = Caller(admin.id, admin.name, admin.role, None, None)
        shelf = catalog.create_location(
            session,
            {"code": "BENCH-STOR", "name": "storage", "kind": LocationKind.STORAGE, "site": SITE},
        )
        items = create_catalog(session)
        lines = []
        for demo in DEMO_ITEMS:
            item = items[demo.sku]
            if item.tracking is Tracking.SERIAL:
                count = serial_units or (800 if demo.category == "pump" else 400)
                lines.append(
                    {
                        "item_id": item.id,
                        "quantity": count,
                        "unit_cost": demo.unit_cost,
                        "location_id": shelf.id,
                        "serials": [f"{demo.sku}-{n:05d}" for n in range(count)],
                    }
                )
                continue
            for lot, days in (("A", 20), ("B", 400)):
                line = {
                    "item_id": item.id,
                    "quantity": 60_000,
                    "unit_cost": demo.unit_cost,
                    "location_id": shelf.id,
                }
                if item.tracking is Tracking.LOT:
                    line |= {
                        "lot": f"{demo.sku[:12]}-{lot}",
                        "expiry": today + timedelta(days=days),
                    }
                lines.append(line)
        stock.receive(session, caller, {"reference": "BENCH", "lines": lines})
        payer = Payer(name="bench payer", modifier_multipliers={})
        session.add(payer)
        session.flush()
        templates = []
        for name, hcpcs, schedule, supply, equipment in THERAPY_MIX:
            session.add(
                PayerRate(
                    payer_id=payer.id,
                    hcpcs=hcpcs,
                    rate=Decimal("150"),
                    counting=Counting.DOSE_DAY,
                    effective_from=today,
                )
            )
            template = KitTemplate(name=name, hcpcs=hcpcs)
            session.add(template)
            session.flush()
            session.add_all(
                TemplateLine(template_id=template.id, item_id=items[s].id, quantity_per_day=q)
                for s, q in supply
            )
            session.add_all(
                TemplateEquipment(template_id=template.id, item_id=items[s].id, quantity=q)
                for s, q in equipment
            )
            templates.append((template.id, hcpcs, schedule))
        for n in range(patients):
            patient = Patient(
                external_ref=f"BENCH-{n:05d}",
                name="Bench Patient",
                address_line1=f"{n + 1} Main St",
                city="Austin",
                state="TX",
                postal_code="78701",
                payer_id=payer.id,
                site=SITE,
            )
            session.add(patient)
            session.flush()
            template_id, hcpcs, schedule = templates[n % len(templates)]
            therapies.create_therapy(
                session,
                {
                    "patient_id": patient.id,
                    "template_id": template_id,
                    "hcpcs": hcpcs,
                    "start_date": today + timedelta(days=n % 7),
                    "schedule": schedule,
                },
                today=today,
            )


def baseline_write(database: Database, rows: list[dict[str, Any]]) -> float:
    """Hand-written SQL for the same effect: insert the reservation rows, bump the balances."""
    if not rows:
        return 0.0
    per_balance: dict[tuple[int, Any, int], int] = {}
    for row in rows:
        key = (row["item_id"], row["lot_id"], row["location_id"])
        per_balance[key] = per_balance.get(key, 0) + row["quantity"]
    raw = database.engine.raw_connection()
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        cursor.executemany(
            "INSERT INTO reservations (site, therapy_id, infusion_day_id, item_id, lot_id,"
            " location_id, quantity, status, created_at)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, 'active', now())",
            [
                (
                    r["site"],
                    r["therapy_id"],
                    r["infusion_day_id"],
                    r["item_id"],
                    r["lot_id"],
                    r["location_id"],
                    r["quantity"],
                )
                for r in rows
            ],
        )
        cursor.executemany(
            "UPDATE stock_balances SET reserved = reserved + %s"
            " WHERE item_id = %s AND lot_id IS NOT DISTINCT FROM %s AND location_id = %s",
            [(q, i, lot, loc) for (i, lot, loc), q in per_balance.items()],
        )
        elapsed = time.perf_counter() - started
        raw.rollback()
    finally:
        raw.close()
    return elapsed


def run(database_url: str, patients: int, horizon_days: int = 28) -> dict[str, Any]:
    database = Database(Settings(database_url=database_url, log_level="WARNING"))
    started = time.perf_counter()
    build_pharmacy(database, patients)
    setup_seconds = time.perf_counter() - started
    counter = StatementCounter(database.engine)

    def timed_run() -> tuple[Timing, planning.PlanResult]:
        counter.count = 0
        begin = time.perf_counter()
        with database.transaction() as session:
            result = planning.run(session, horizon_days)
        return Timing(time.perf_counter() - begin, counter.count), result

    first, first_result = timed_run()
    second, second_result = timed_run()
    with database.transaction() as session:
        rows = [
            {
                "site": r.site,
                "therapy_id": r.therapy_id,
                "infusion_day_id": r.infusion_day_id,
                "item_id": r.item_id,
                "lot_id": r.lot_id,
                "location_id": r.location_id,
                "quantity": r.quantity,
            }
            for r in session.scalars(
                select(Reservation).where(Reservation.infusion_day_id.is_not(None))
            ).all()
        ]
    baseline = baseline_write(database, rows)
    with database.engine.connect() as connection:
        day_count = connection.execute(text("SELECT count(*) FROM infusion_days")).scalar_one()
    database.dispose()
    days = max(first_result.days_considered, 1)
    return {
        "benchmark": "planning",
        "patients": patients,
        "horizon_days": horizon_days,
        "infusion_days_total": day_count,
        "setup_seconds": round(setup_seconds, 2),
        "days_planned": first_result.days_considered,
        "reservation_lines": first_result.reserved_lines,
        "first_run_seconds": round(first.seconds, 3),
        "first_run_statements": first.statements,
        "statements_per_day": round(first.statements / days, 4),
        "second_run_seconds": round(second.seconds, 3),
        "second_run_statements": second.statements,
        "second_run_reserved_lines": second_result.reserved_lines,
        "baseline_sql_seconds": round(baseline, 3),
        "ratio_to_baseline": round(first.seconds / baseline, 2) if baseline else None,
        "target_first_run_seconds": 5.0,
    }
