"""Per diem report benchmark: one pharmacy-year (2025) on PostgreSQL, the report as the service
computes it against hand-written SQL, in the same run on the same database.

**Data.** 1,000 patients (``--quick``: 100) over two sites, SMALL (10 %) and BIG (90 %), three
payers, ten lot-tracked supplies and one pump per patient, written with COPY (about
20 seconds for the full year), not through the API. Every patient has a primary therapy (enzyme replacement S9357
every 14 days, or immune globulin S9338 on Mondays and Thursdays); a quarter also get a daily
anti-infective course (S9500) of two to twelve weeks. Some therapies start mid-year (a share of
them on the first of a month), some end or are discontinued within the year, some carry the
modifier SH or SJ. Every infusion day is ``delivered`` and sits in a ``delivered`` kit of one or
two days (a kit of the daily course also takes the patient's other infusion day of the same
date, as :func:`inventory.kits.service.build` allows). Each kit line is picked (storage to
staging), dispatched (staging to a vehicle) and delivered (vehicle to the patient) in three
documents carrying the kit's id; about one line in eight drew on two cost layers and is two
movements at two unit costs. About 2 % of kits are delivered a day late (after their first
day), about 1 % have their delivery reversed and redone, about 4 % have unopened goods
(quarantine) or opened goods (disposal) brought back. The pump goes out with the patient's
first kit (serial unit movements plus ``equipment_events`` reserved → at_patient) and comes back
to cleaning (at_patient → dirty) when the therapy ends within the year.

What the report does not read is not kept consistent: stock balances, cost layers,
reservations, routes, deliveries and kit returns are not written, and the receipts are only
there so that every lot has an origin. Movements are only ever inserted (the table is
append-only).

**Measures.** ``GET /api/v1/reports/per-diem?group_by=patient`` through the Flask app (test
client, a finance token) for June 2025 and for the year, best of five after a warm-up; the same
figures per patient from one hand-written SQL statement (:data:`FIGURES_SQL`, written from the
rules in :mod:`inventory.finance.rules`' docstring, not from the implementation), timed the same
way. The report and the SQL must agree to the cent, per patient and in total: that equality
cross-checks the implementation, and the run exits non-zero if it does not hold. Then the peak
Python memory (tracemalloc) while streaming the yearly drill-down CSV for site SMALL and for
every site (ten times the rows), and the yearly report CSV grouped by therapy likewise. The
report works a batch of ``costing.BATCH_PATIENT_DAYS`` patient-days (100 patients for a year) at
a time, so that ratio compares
batches, not sites, unless SMALL spans as many batches as the rest: with ``--quick`` SMALL is
10 patients against 100, a ratio that says little.
"""

from __future__ import annotations

import gc
import json
import os
import random
import time
import tracemalloc
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from decimal import Decimal
from functools import partial
from typing import Any

import psycopg
from flask.testing import FlaskClient
from sqlalchemy import Connection, text
from sqlalchemy.engine import make_url

from inventory import create_app
from inventory.config import Settings
from inventory.db import Database
from inventory.finance import costing
from inventory.users import service as users
from inventory.users.models import Role

FIRST = date(2025, 1, 1)
LAST = date(2025, 12, 31)
MONTH = (date(2025, 6, 1), date(2025, 6, 30))
SITES = ("SMALL", "BIG")
ZONE = "UTC"  # Settings' default INVENTORY_TIMEZONE; the SQL takes it as a parameter
RUNS = 5
CREATED = datetime(2024, 12, 1, 8, tzinfo=UTC)
FIGURES = (
    "per_diem_units",
    "supply_cost",
    "return_credit",
    "waste_cost",
    "equipment_cost",
    "expected_revenue",
)

# sku, category, unit cost of the first and of the second cost layer (4 decimals on purpose)
SUPPLIES = (
    ("RPT-ADM-SET", "administration_set", "4.1235", "4.1265"),
    ("RPT-FLT-022", "filter", "6.8750", "6.9050"),
    ("RPT-CTH-PIV", "catheter", "2.3333", "2.3367"),
    ("RPT-FLS-NS10", "flush", "0.3150", "0.3175"),
    ("RPT-PRP-ALC", "prep", "0.0425", "0.0435"),
    ("RPT-PRP-CHG", "prep", "1.2345", "1.2355"),
    ("RPT-DRS-TSP", "dressing", "0.8765", "0.8795"),
    ("RPT-PPE-GLV", "ppe", "0.1105", "0.1115"),
    ("RPT-FLS-HEP", "flush", "0.9995", "1.0005"),
    ("RPT-SHP-CNT", "sharps", "3.4550", "3.4450"),
)
PUMP_SKU, PUMP_DAILY_RATE, PUMP_COST = "RPT-PUMP", "15.5050", "1850.0000"
# hcpcs: (template name, supplies per infusion day by sku)
TEMPLATES: dict[str, tuple[str, dict[str, int]]] = {
    "S9357": (
        "enzyme replacement",
        {
            "RPT-ADM-SET": 1,
            "RPT-FLT-022": 1,
            "RPT-CTH-PIV": 1,
            "RPT-FLS-NS10": 4,
            "RPT-PRP-ALC": 4,
            "RPT-PRP-CHG": 1,
            "RPT-DRS-TSP": 1,
        },
    ),
    "S9338": (
        "immune globulin",
        {
            "RPT-ADM-SET": 1,
            "RPT-CTH-PIV": 1,
            "RPT-FLS-NS10": 3,
            "RPT-PRP-ALC": 4,
            "RPT-DRS-TSP": 1,
            "RPT-PPE-GLV": 2,
        },
    ),
    "S9500": (
        "daily anti-infective",
        {"RPT-FLS-NS10": 2, "RPT-FLS-HEP": 1, "RPT-PRP-ALC": 2, "RPT-PPE-GLV": 1},
    ),
}
D2024 = date(2024, 1, 1)
# name, modifier multipliers, rates (hcpcs, rate, counting, effective from)
PAYERS: tuple[tuple[str, dict[str, str], tuple[tuple[str, str, str, date], ...]], ...] = (
    (
        "Acme Health",
        {"SH": "0.5000", "SJ": "0.0000"},
        (
            ("S9357", "400.0000", "dose_day", D2024),
            ("S9357", "420.0000", "dose_day", date(2025, 7, 1)),
            ("S9338", "310.1250", "dose_day", D2024),
            ("S9500", "75.0050", "dose_day", D2024),
        ),
    ),
    (
        "Blue Plan",
        {"SH": "0.7500"},
        (
            ("S9500", "60.0050", "calendar_day", D2024),
            ("S9357", "398.7650", "dose_day", D2024),
            ("S9338", "305.0000", "dose_day", D2024),
        ),
    ),
    (
        "Cardinal Care",
        {},
        (
            ("S9357", "410.0000", "dose_day", D2024),
            ("S9338", "299.9950", "dose_day", D2024),
            ("S9500", "55.5550", "dose_day", D2024),
            ("S9500", "58.0000", "calendar_day", date(2025, 10, 1)),
        ),
    ),
)
# New patients starting on the first of a month start in these months, in turn.
FIRST_OF_MONTH_STARTS = (7, 3, 10, 5, 12, 2, 8, 4, 11, 6, 9)
LAYER_DATES = (date(2025, 3, 3), date(2025, 7, 1), date(2025, 9, 1))


def units(amount: str) -> int:
    """Money as stored: whole ten-thousandths."""
    return int(Decimal(amount) * 10_000)


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day, clock(hour, minute), UTC)


# --- the pharmacy-year, planned in memory -----------------------------------------------------

Row = tuple[Any, ...]
Endpoint = tuple[int | None, str | None]  # (location id, party)
DOCUMENT_TYPES = {  # kind: (document type, reason, movement type)
    "pick": ("kit", "packed", "pick"),
    "dispatch": ("dispatch", "dispatched", "dispatch"),
    "delivery": ("delivery", "delivered", "delivery"),
    "reversal": ("reversal", "delivery reversed", "reversal"),
    "return": ("return", "returned", "return"),
    "pump_return": ("return", "returned", "return"),
}


@dataclass
class Line:
    """One line of a kit: an item and lot, in one or two cost chunks (quantity, unit cost)."""

    item_id: int
    lot_id: int
    chunks: list[tuple[int, int]]


@dataclass
class Document:
    id: int
    kind: str  # a key of DOCUMENT_TYPES
    occurred_at: datetime
    # a return's parts: (line index, quantity, disposed of?)
    returned: list[tuple[int, int, bool]] = field(default_factory=list)


@dataclass
class KitPlan:
    id: int
    patient: int
    site: str
    days: list[tuple[date, int]]  # (date, therapy id), in date order
    lines: list[Line] = field(default_factory=list)
    pump: int | None = None  # the serial unit it takes out
    documents: list[Document] = field(default_factory=list)

    @property
    def first_day(self) -> date:
        return self.days[0][0]

    @property
    def last_day(self) -> date:
        return self.days[-1][0]


@dataclass
class TherapyPlan:
    id: int
    hcpcs: str
    start: date
    end: date | None
    discontinued: date | None
    modifier: str | None
    days: list[date] = field(default_factory=list)

    @property
    def stop(self) -> date | None:
        ends = [day for day in (self.end, self.discontinued) if day is not None]
        return min(ends) if ends else None


@dataclass
class Year:
    """Rows of the small tables, and the kits the documents and movements are derived from."""

    rows: dict[str, list[Row]] = field(default_factory=lambda: defaultdict(list))
    kits: list[KitPlan] = field(default_factory=list)
    locations: dict[tuple[str, str], int] = field(default_factory=dict)
    items: dict[str, int] = field(default_factory=dict)
    lots: dict[tuple[int, str], int] = field(default_factory=dict)
    events: list[Row] = field(default_factory=list)
    # receipts: (document id, site, occurred at, [(item, lot, serial unit, quantity, cost)])
    receipts: list[tuple[int, str, datetime, list[Row]]] = field(default_factory=list)
    ids: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def next_id(self, table: str) -> int:
        self.ids[table] += 1
        return self.ids[table]


def site_of(index: int) -> str:
    return "SMALL" if index % 10 == 3 else "BIG"


def _catalog(year: Year, patients: int) -> None:
    rows = year.rows
    rows["users"].append((1, "bench admin", "admin", None, None, True, CREATED, 1))
    for site in SITES:
        for code, kind in (
            ("STOR", "storage"),
            ("STAGE", "staging"),
            ("QUAR", "quarantine"),
            ("CLEAN", "cleaning"),
            ("VAN1", "vehicle"),
            ("VAN2", "vehicle"),
        ):
            number = year.locations[(site, code)] = year.next_id("locations")
            rows["locations"].append(
                (number, f"{site}-{code}", f"{site} {kind}", kind, site, True, CREATED, 1)
            )
    for sku, category, _, _ in SUPPLIES:
        item = year.items[sku] = year.next_id("items")
        rows["items"].append(
            (
                item,
                sku,
                sku.lower(),
                category,
                "each",
                "lot",
                None,
                0,
                0,
                None,
                True,
                CREATED,
                CREATED,
                1,
            )
        )
        for lot, expiry in (("A", date(2026, 6, 30)), ("B", date(2027, 6, 30))):
            number = year.lots[(item, lot)] = year.next_id("lots")
            rows["lots"].append((number, item, f"{sku[4:]}-{lot}", expiry, None, CREATED))
    pump = year.items[PUMP_SKU] = year.next_id("items")
    rows["items"].append(
        (
            pump,
            PUMP_SKU,
            "ambulatory pump",
            "pump",
            "each",
            "serial",
            None,
            0,
            0,
            units(PUMP_DAILY_RATE),
            True,
            CREATED,
            CREATED,
            1,
        )
    )
    for name, multipliers, rates in PAYERS:
        payer = year.next_id("payers")
        rows["payers"].append((payer, name, json.dumps(multipliers), CREATED, 1))
        for hcpcs, rate, counting, effective_from in rates:
            rows["payer_rates"].append(
                (year.next_id("payer_rates"), payer, hcpcs, units(rate), counting, effective_from)
            )
    for hcpcs, (name, supplies) in TEMPLATES.items():
        template = year.next_id("kit_templates")
        rows["kit_templates"].append((template, name, hcpcs, CREATED))
        for sku, quantity in supplies.items():
            rows["kit_template_lines"].append(
                (year.next_id("kit_template_lines"), template, year.items[sku], quantity)
            )
        if hcpcs != "S9500":
            rows["kit_template_equipment"].append(
                (year.next_id("kit_template_equipment"), template, pump, 1)
            )
    # Receipts: each lot of each supply at both of its costs, and each site's pumps.
    for site in SITES:
        for lot, layer, received in (
            ("A", 2, date(2024, 12, 10)),
            ("A", 3, LAYER_DATES[0]),
            ("B", 2, LAYER_DATES[1] - timedelta(days=10)),
            ("B", 3, LAYER_DATES[2]),
        ):
            lines: list[Row] = [
                (
                    year.items[spec[0]],
                    year.lots[year.items[spec[0]], lot],
                    None,
                    50000,
                    units(spec[layer]),
                )
                for spec in SUPPLIES
            ]
            year.receipts.append((year.next_id("stock_documents"), site, at(received, 9), lines))
        pumps: list[Row] = [
            (pump, None, index + 1, 1, units(PUMP_COST))
            for index in range(patients)
            if site_of(index) == site
        ]
        year.receipts.append(
            (year.next_id("stock_documents"), site, at(date(2024, 12, 10), 10), pumps)
        )


def _therapies(year: Year, index: int, rng: random.Random) -> list[TherapyPlan]:
    """A patient's therapies and their infusion days in 2025."""
    enzyme = index % 10 < 7
    if index % 4 == 0:  # a new patient this year
        if (index // 4) % 5 == 0:
            month = FIRST_OF_MONTH_STARTS[(index // 20) % len(FIRST_OF_MONTH_STARTS)]
            start = date(2025, month, 1)
        else:
            start = date(2025, 2, 1) + timedelta(days=rng.randrange(300))
    else:
        start = FIRST + timedelta(days=index % (14 if enzyme else 7))
    end = discontinued = None
    if index % 9 == 0:
        candidate = min(start + timedelta(days=90 + rng.randrange(120)), date(2025, 12, 15))
        end = candidate if candidate > start + timedelta(days=28) else None
    if index % 27 == 0 and end is None:
        candidate = start + timedelta(days=60 + rng.randrange(60))
        discontinued = candidate if candidate < date(2025, 12, 15) else None
    modifier = "SH" if index % 5 == 1 else ("SJ" if index % 23 == 7 else None)
    primary = TherapyPlan(
        year.next_id("therapies"),
        "S9357" if enzyme else "S9338",
        start,
        end,
        discontinued,
        modifier,
    )
    through = min(primary.stop or LAST, LAST)
    day = start
    while day <= through:
        if enzyme or day.weekday() in (0, 3):
            primary.days.append(day)
        day += timedelta(days=14 if enzyme else 1)
    plans = [primary]
    if index % 4 == 1:  # a daily course of two to twelve weeks
        start = date(2025, 1, 5) + timedelta(days=rng.randrange(330))
        length = 14 + rng.randrange(71)
        end = min(start + timedelta(days=length - 1), LAST)
        discontinued = start + timedelta(days=(2 * length) // 3) if index % 8 == 1 else None
        if discontinued is not None and discontinued >= end:
            discontinued = None
        course = TherapyPlan(
            year.next_id("therapies"),
            "S9500",
            start,
            end,
            discontinued,
            "SH" if index % 3 == 0 else None,
        )
        stop = course.stop or end
        course.days = [start + timedelta(days=n) for n in range((stop - start).days + 1)]
        plans.append(course)
    return plans


def _kits(therapies: Sequence[TherapyPlan], patient: int, site: str) -> list[KitPlan]:
    """Kits of one or two days: the daily course two days at a time (with the patient's other
    infusion day on the same date), enzyme replacement a day at a time, immune globulin a week
    (Monday and Thursday) at a time."""
    by_date: dict[date, KitPlan] = {}
    kits: list[KitPlan] = []
    for therapy in therapies[1:]:
        for pair in range(0, len(therapy.days), 2):
            kit = KitPlan(
                0, patient, site, [(day, therapy.id) for day in therapy.days[pair : pair + 2]]
            )
            for day, _ in kit.days:
                by_date[day] = kit
            kits.append(kit)
    primary = therapies[0]
    weekly: dict[tuple[int, int], KitPlan] = {}
    for day in primary.days:
        if day in by_date:
            by_date[day].days.append((day, primary.id))
        elif primary.hcpcs == "S9338":
            week = (day.isocalendar()[0], day.isocalendar()[1])
            if week not in weekly:
                weekly[week] = KitPlan(0, patient, site, [])
                kits.append(weekly[week])
            weekly[week].days.append((day, primary.id))
        else:
            kits.append(KitPlan(0, patient, site, [(day, primary.id)]))
    for kit in kits:
        kit.days.sort()
    kits.sort(key=lambda kit: kit.first_day)
    return kits


def _fill(year: Year, kit: KitPlan, hcpcs: dict[int, str], rng: random.Random) -> None:
    """The kit's lines: its days' templates added up, from one lot, at one or two costs."""
    needed: dict[str, int] = defaultdict(int)
    for _, therapy_id in kit.days:
        for sku, quantity in TEMPLATES[hcpcs[therapy_id]][1].items():
            needed[sku] += quantity
    lot = "A" if kit.first_day < LAYER_DATES[1] else "B"
    later = kit.first_day >= (LAYER_DATES[0] if lot == "A" else LAYER_DATES[2])
    for spec in SUPPLIES:
        quantity = needed.get(spec[0], 0)
        if not quantity:
            continue
        item = year.items[spec[0]]
        cheap, dear = units(spec[2]), units(spec[3])
        if quantity >= 2 and rng.random() < 0.12:  # the pick drew on two cost layers
            split = 1 + rng.randrange(quantity - 1)
            chunks = [(split, cheap), (quantity - split, dear)]
        else:
            chunks = [(quantity, dear if later else cheap)]
        kit.lines.append(Line(item, year.lots[(item, lot)], chunks))


def _documents(
    year: Year, kits: Sequence[KitPlan], primary: TherapyPlan, rng: random.Random
) -> bool:
    """Each kit's pick, dispatch and delivery (a few late, a few reversed and redone), a few
    returns, and the pump's way out and, if the therapy ends within the year, back. True if
    the pump came back."""

    def document(kit: KitPlan, kind: str, moment: datetime) -> Document:
        made = Document(year.next_id("stock_documents"), kind, moment)
        kit.documents.append(made)
        return made

    for kit in kits:
        late = rng.random() < 0.02
        if late:  # delivered the day after the kit's first day
            delivered = at(kit.first_day + timedelta(days=1), 9, 30)
        else:
            delivered = at(kit.first_day - timedelta(days=1), 13 + kit.id * 37 % 8, kit.id * 7 % 60)
        document(kit, "pick", delivered - timedelta(hours=20))
        document(kit, "dispatch", delivered - timedelta(hours=2))
        document(kit, "delivery", delivered)
        if kit.pump is not None:
            picked = delivered - timedelta(hours=20)
            year.events.append((kit.pump, "available", "reserved", None, None, "reserved", picked))
            year.events.append(
                (kit.pump, "reserved", "at_patient", kit.patient, kit.id, "delivered", delivered)
            )
        elif not late and rng.random() < 0.01:
            if rng.random() < 0.3:  # found out after the kit's days
                reversed_at = at(kit.last_day + timedelta(days=1), 10)
                again = at(kit.last_day + timedelta(days=1), 12)
            else:
                reversed_at = delivered + timedelta(hours=3)
                again = delivered + timedelta(hours=6)
            document(kit, "reversal", reversed_at)
            document(kit, "delivery", again)
        elif rng.random() < 0.04:
            moment = at(kit.last_day + timedelta(days=1 + rng.randrange(3)), 15)
            back = document(kit, "return", moment)
            count = min(len(kit.lines), 1 + rng.randrange(2))
            for line_index in sorted(rng.sample(range(len(kit.lines)), count)):
                quantity = sum(q for q, _ in kit.lines[line_index].chunks)
                returned = 1 + rng.randrange(min(quantity, 3))
                if returned >= 2 and rng.random() < 0.2:  # one unopened, the rest opened
                    back.returned.append((line_index, 1, False))
                    back.returned.append((line_index, returned - 1, True))
                else:
                    back.returned.append((line_index, returned, rng.random() >= 0.6))
    stop = primary.stop
    if stop is None or stop >= LAST - timedelta(days=7):
        return False
    last_kit = [kit for kit in kits if any(t == primary.id for _, t in kit.days)][-1]
    moment = at(max(stop, last_kit.last_day) + timedelta(days=2), 11)
    document(last_kit, "pump_return", moment)
    year.events.append(
        (kits[0].pump, "at_patient", "dirty", last_kit.patient, last_kit.id, "returned", moment)
    )
    return True


def plan_year(patients: int) -> Year:
    """Everything but the documents' and movements' rows, which are derived from the kits as
    they are written."""
    year = Year()
    rng = random.Random(2025)  # noqa: S311 - reproducible data, not security
    _catalog(year, patients)
    rows = year.rows
    templates = {hcpcs: number for number, hcpcs in enumerate(TEMPLATES, start=1)}
    schedules = {
        "S9357": {"every_days": 14},
        "S9338": {"weekdays": ["mon", "thu"]},
        "S9500": {"every_days": 1},
    }
    for index in range(patients):
        patient = index + 1
        site = site_of(index)
        rows["patients"].append(
            (
                patient,
                f"RPT-{index:05d}",
                "Bench Patient",
                "1 Main St",
                None,
                "Austin",
                "TX",
                "78701",
                None,
                index % len(PAYERS) + 1,
                site,
                CREATED,
                1,
            )
        )
        therapies = _therapies(year, index, rng)
        for therapy in therapies:
            rows["therapies"].append(
                (
                    therapy.id,
                    patient,
                    templates[therapy.hcpcs],
                    site,
                    therapy.hcpcs,
                    therapy.modifier,
                    None,
                    therapy.start,
                    therapy.end,
                    json.dumps(schedules[therapy.hcpcs]),
                    "discontinued" if therapy.discontinued else "active",
                    min(therapy.stop or LAST, LAST),
                    therapy.discontinued,
                    None,
                    None,
                    CREATED,
                    1,
                )
            )
        hcpcs = {therapy.id: therapy.hcpcs for therapy in therapies}
        kits = _kits(therapies, patient, site)
        for kit in kits:
            kit.id = year.next_id("kits")
            for day, therapy_id in kit.days:
                rows["infusion_days"].append(
                    (
                        year.next_id("infusion_days"),
                        therapy_id,
                        patient,
                        site,
                        day,
                        "delivered",
                        kit.id,
                        CREATED,
                        1,
                    )
                )
            _fill(year, kit, hcpcs, rng)
        kits[0].pump = patient  # one pump per patient: serial unit id = patient id
        pump_back = _documents(year, kits, therapies[0], rng)
        rows["serial_units"].append(
            (patient, year.items[PUMP_SKU], f"PMP-{index:05d}")
            + (("dirty", year.locations[(site, "CLEAN")]) if pump_back else ("at_patient", None))
            + (units(PUMP_COST), None, CREATED, 1, None if pump_back else patient)
        )
        year.kits.extend(kits)
        for kit in kits:
            rows["kits"].append(
                (
                    kit.id,
                    site,
                    patient,
                    "delivered",
                    kit.first_day,
                    kit.last_day,
                    json.dumps({str(year.items[PUMP_SKU]): 1} if kit.pump else {}),
                    None,
                    None,
                    1,
                    CREATED,
                    CREATED,
                    1,
                    None,
                    None,
                    CREATED,
                    1,
                    None,
                )
            )
    return year


def document_rows(year: Year) -> Iterator[Row]:
    for number, site, moment, _ in year.receipts:
        yield (number, "receipt", site, f"PO-{number}", None, None, 1, moment, moment, None)
    for kit in year.kits:
        reference = f"K{kit.id:07d}"
        for document in kit.documents:
            kind, reason, _ = DOCUMENT_TYPES[document.kind]
            moment = document.occurred_at
            yield (document.id, kind, kit.site, reference, reason, None, 1, moment, moment, kit.id)


def _take_back(chunks: Sequence[tuple[int, int]], skip: int, wanted: int) -> list[tuple[int, int]]:
    """The delivered chunks ``wanted`` returned units come from, first delivered first back,
    after the ``skip`` units that came back before."""
    taken = []
    for quantity, cost in chunks:
        used = min(skip, quantity)
        skip -= used
        here = min(quantity - used, wanted)
        if here > 0:
            taken.append((here, cost))
            wanted -= here
    return taken


def movement_rows(year: Year) -> Iterator[Row]:
    """Every movement as the ledger posts it: one per document line and cost chunk."""
    for number, site, moment, lines in year.receipts:
        storage = year.locations[(site, "STOR")]
        for item, lot, unit, quantity, cost in lines:
            yield (
                *(number, "receipt", site, item, lot, unit, quantity),
                *(None, "supplier", storage, None, cost),
                *(moment, moment, 1, "received", f"PO-{number}"),
            )
    pump_item, pump_cost = year.items[PUMP_SKU], units(PUMP_COST)
    for kit in year.kits:
        site = kit.site
        place = {code: year.locations[(site, code)] for code in ("STOR", "STAGE", "QUAR", "CLEAN")}
        vehicle = year.locations[(site, "VAN1" if kit.id % 2 else "VAN2")]
        routes: dict[str, tuple[Endpoint, Endpoint]] = {
            "pick": ((place["STOR"], None), (place["STAGE"], None)),
            "dispatch": ((place["STAGE"], None), (vehicle, None)),
            "delivery": ((vehicle, None), (None, "patient")),
            "reversal": ((None, "patient"), (vehicle, None)),
        }
        reference = f"K{kit.id:07d}"
        for document in kit.documents:
            _, reason, movement_type = DOCUMENT_TYPES[document.kind]
            head = (document.id, movement_type, site)
            tail = (document.occurred_at, document.occurred_at, 1, reason, reference)
            if document.kind in routes:
                source, destination = routes[document.kind]
                for line in kit.lines:
                    for quantity, cost in line.chunks:
                        yield (
                            head
                            + (line.item_id, line.lot_id, None, quantity)
                            + (source + destination + (cost,) + tail)
                        )
                if kit.pump is not None:
                    yield (
                        (
                            *head,
                            pump_item,
                            None,
                            kit.pump,
                            1,
                            *source,
                            *destination,
                            pump_cost,
                            *tail,
                        )
                    )
            elif document.kind == "return":
                back: dict[int, int] = defaultdict(int)
                for index, quantity, disposed in document.returned:
                    line = kit.lines[index]
                    where = (None, "disposal") if disposed else (place["QUAR"], None)
                    for part, cost in _take_back(line.chunks, back[index], quantity):
                        yield (
                            (
                                *head,
                                line.item_id,
                                line.lot_id,
                                None,
                                part,
                                None,
                                "patient",
                                *where,
                                cost,
                                *tail,
                            )
                        )
                    back[index] += quantity
            else:  # the pump back to cleaning; its serial unit id is the patient's id
                yield (
                    (
                        *head,
                        pump_item,
                        None,
                        kit.patient,
                        1,
                        None,
                        "patient",
                        place["CLEAN"],
                        None,
                        pump_cost,
                        *tail,
                    )
                )


def event_rows(year: Year) -> Iterator[Row]:
    for unit, before, after, patient, kit, reason, moment in year.events:
        yield (unit, before, after, patient, kit, reason, moment, moment, 1)


TABLES = (  # loaded in this order, ids given
    ("users", "id, name, role, site, vehicle_location_id, active, created_at, version"),
    ("locations", "id, code, name, kind, site, active, created_at, version"),
    (
        "items",
        "id, sku, name, category, unit, tracking, gtin, reorder_point, reorder_quantity,"
        " daily_rate, active, created_at, updated_at, version",
    ),
    ("lots", "id, item_id, lot_number, expiry, recalled_at, created_at"),
    ("payers", "id, name, modifier_multipliers, created_at, version"),
    ("payer_rates", "id, payer_id, hcpcs, rate, counting, effective_from"),
    ("kit_templates", "id, name, hcpcs, created_at"),
    ("kit_template_lines", "id, template_id, item_id, quantity_per_day"),
    ("kit_template_equipment", "id, template_id, item_id, quantity"),
    (
        "patients",
        "id, external_ref, name, address_line1, address_line2, city, state, postal_code, phone,"
        " payer_id, site, created_at, version",
    ),
    (
        "serial_units",
        "id, item_id, serial, status, location_id, unit_cost, pm_due, created_at, version,"
        " patient_id",
    ),
    (
        "therapies",
        "id, patient_id, template_id, site, hcpcs, modifier, drug, start_date, end_date,"
        " schedule, status, scheduled_through, discontinued_on, equipment_pickup_due, note,"
        " created_at, version",
    ),
    (
        "kits",
        "id, site, patient_id, status, first_day, last_day, equipment, staging_location_id,"
        " hold_reason, created_by, created_at, packed_at, packed_by, cancelled_at,"
        " cancel_reason, updated_at, version, vehicle_location_id",
    ),
    (
        "infusion_days",
        "id, therapy_id, patient_id, site, date, status, kit_id, created_at, version",
    ),
)
STREAMED = (  # ids from their sequences, but for the documents
    (
        "stock_documents",
        "id, type, site, reference, reason, note, actor_id, occurred_at, recorded_at, kit_id",
        document_rows,
    ),
    (
        "stock_movements",
        "document_id, type, site, item_id, lot_id, serial_unit_id, quantity, from_location_id,"
        " from_party, to_location_id, to_party, unit_cost, occurred_at, recorded_at, actor_id,"
        " reason, reference",
        movement_rows,
    ),
    (
        "equipment_events",
        "serial_unit_id, from_status, to_status, patient_id, kit_id, reason, occurred_at,"
        " recorded_at, actor_id",
        event_rows,
    ),
)
COUNTED = (
    "patients",
    "therapies",
    "infusion_days",
    "kits",
    "stock_documents",
    "stock_movements",
    "equipment_events",
)


def libpq_url(database_url: str) -> str:
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


def load(database_url: str, year: Year) -> dict[str, int]:
    """COPY the year in, move the id sequences past it, ANALYZE; the tables' row counts."""
    with psycopg.connect(libpq_url(database_url)) as connection, connection.cursor() as cursor:
        sources: list[tuple[str, str, Iterable[Row]]] = [
            (table, columns, year.rows[table]) for table, columns in TABLES
        ]
        sources += [(table, columns, rows(year)) for table, columns, rows in STREAMED]
        for table, columns, rows in sources:
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        for table in [table for table, _ in TABLES] + ["stock_documents"]:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), max(id)) FROM {table}"
            )
        connection.commit()
        cursor.execute("ANALYZE")
        counts = {}
        for table in COUNTED:
            cursor.execute(f"SELECT count(*) FROM {table}")
            found = cursor.fetchone()
            counts[table] = int(found[0]) if found else 0
    return counts


# --- the figures by hand ------------------------------------------------------------------------

FIGURES_SQL = """
WITH bounds AS (
    SELECT CAST(:first AS date) AS first_day,
           CAST(:last AS date) AS last_day,
           CAST(:first AS date)::timestamp AT TIME ZONE CAST(:zone AS text) AS first_at,
           (CAST(:last AS date) + 1)::timestamp AT TIME ZONE CAST(:zone AS text) AS end_at
),
therapy AS (  -- a therapy's last day is its end or discontinuation, whichever is earlier
    SELECT t.id, t.patient_id, t.hcpcs, t.start_date, p.payer_id,
           LEAST(t.end_date, t.discontinued_on) AS stop_day,
           CASE WHEN t.modifier IS NULL THEN 1
                ELSE COALESCE(CAST(py.modifier_multipliers ->> t.modifier AS numeric), 1)
           END AS multiplier
    FROM therapies t
    JOIN patients p ON p.id = t.patient_id
    JOIN payers py ON py.id = p.payer_id
),
rate AS (  -- each rate is in force from its date up to the next one's
    SELECT payer_id, hcpcs, rate, counting, effective_from,
           lead(effective_from) OVER (PARTITION BY payer_id, hcpcs ORDER BY effective_from)
               AS until
    FROM payer_rates
),
dose AS (  -- delivered infusion days, once per therapy and date, where dose_day is in force
    SELECT th.patient_id, count(*) AS units,
           sum(COALESCE(floor((r.rate * th.multiplier + 50) / 100), 0)) AS revenue
    FROM (SELECT DISTINCT d.therapy_id, d.date
          FROM infusion_days d CROSS JOIN bounds b
          WHERE d.status = 'delivered' AND d.date BETWEEN b.first_day AND b.last_day) d
    JOIN therapy th ON th.id = d.therapy_id
    LEFT JOIN rate r ON r.payer_id = th.payer_id AND r.hcpcs = th.hcpcs
        AND r.effective_from <= d.date AND (r.until IS NULL OR d.date < r.until)
    WHERE r.counting IS NULL OR r.counting = 'dose_day'
    GROUP BY th.patient_id
),
calendar AS (  -- every day from start to stop where calendar_day is in force
    SELECT th.patient_id, count(*) AS units,
           sum(floor((r.rate * th.multiplier + 50) / 100)) AS revenue
    FROM therapy th
    CROSS JOIN bounds b
    CROSS JOIN LATERAL generate_series(
        GREATEST(th.start_date, b.first_day)::timestamp,
        LEAST(COALESCE(th.stop_day, b.last_day), b.last_day)::timestamp,
        interval '1 day') AS g(moment)
    JOIN rate r ON r.payer_id = th.payer_id AND r.hcpcs = th.hcpcs
        AND r.counting = 'calendar_day'
        AND r.effective_from <= g.moment::date
        AND (r.until IS NULL OR g.moment::date < r.until)
    WHERE EXISTS (SELECT 1 FROM payer_rates c
                  WHERE c.payer_id = th.payer_id AND c.hcpcs = th.hcpcs
                    AND c.counting = 'calendar_day')
    GROUP BY th.patient_id
),
kit_day AS (  -- a kit's infusion days (its live ones, if any), n of them, which is the last
    SELECT kit_id, patient_id, date,
           count(*) OVER (PARTITION BY kit_id) AS n,
           row_number() OVER (PARTITION BY kit_id ORDER BY date DESC, id DESC) AS from_last
    FROM (SELECT d.id, d.kit_id, d.patient_id, d.date, d.status,
                 bool_or(d.status <> 'cancelled') OVER (PARTITION BY d.kit_id) AS any_live
          FROM infusion_days d
          WHERE d.kit_id IS NOT NULL) d
    WHERE status <> 'cancelled' OR NOT any_live
),
supply_line AS (  -- a kit line (item, lot, serial of one document) in cents, half-up
    SELECT doc.kit_id,
           CAST(doc.occurred_at AT TIME ZONE CAST(:zone AS text) AS date) AS moved_on,
           CASE WHEN m.type = 'delivery' THEN 1 ELSE -1 END AS sign,
           (CAST(sum(m.quantity * m.unit_cost) AS bigint) + 50) / 100 AS cents
    FROM stock_movements m
    JOIN stock_documents doc ON doc.id = m.document_id
    JOIN kits k ON k.id = doc.kit_id
    JOIN items i ON i.id = m.item_id
    CROSS JOIN bounds b
    WHERE ((m.type = 'delivery' AND m.to_party = 'patient')
           OR (m.type = 'reversal' AND m.from_party = 'patient'))
      AND i.category NOT IN ('pump', 'pole')
      AND doc.occurred_at < b.end_at
      AND (doc.occurred_at >= b.first_at OR k.last_day >= b.first_day)
    GROUP BY doc.id, m.type, m.item_id, m.lot_id, m.serial_unit_id
),
supply AS (  -- spread evenly, the remainder on the last day, never before the movement
    SELECT kd.patient_id,
           sum(l.sign * CASE WHEN kd.from_last = 1 THEN l.cents - l.cents / kd.n * (kd.n - 1)
                             ELSE l.cents / kd.n END) AS cost
    FROM supply_line l
    JOIN kit_day kd ON kd.kit_id = l.kit_id
    CROSS JOIN bounds b
    WHERE GREATEST(kd.date, l.moved_on) BETWEEN b.first_day AND b.last_day
    GROUP BY kd.patient_id
),
takeback AS (  -- back from the patient within the period: quarantined, or disposed of
    SELECT k.patient_id,
           sum(CASE WHEN r.destination = 'quarantine' THEN r.cents ELSE 0 END) AS credit,
           sum(CASE WHEN r.destination = 'disposal' THEN r.cents ELSE 0 END) AS waste
    FROM (SELECT doc.kit_id, COALESCE(m.to_party, loc.kind) AS destination,
                 (CAST(sum(m.quantity * m.unit_cost) AS bigint) + 50) / 100 AS cents
          FROM stock_movements m
          JOIN stock_documents doc ON doc.id = m.document_id
          JOIN items i ON i.id = m.item_id
          LEFT JOIN locations loc ON loc.id = m.to_location_id
          CROSS JOIN bounds b
          WHERE m.type = 'return' AND m.from_party = 'patient'
            AND i.category NOT IN ('pump', 'pole')
            AND doc.occurred_at >= b.first_at AND doc.occurred_at < b.end_at
          GROUP BY doc.id, COALESCE(m.to_party, loc.kind), m.item_id, m.lot_id,
                   m.serial_unit_id) r
    JOIN kits k ON k.id = r.kit_id
    GROUP BY k.patient_id
),
stay AS (  -- from the event that put a unit at a patient's to the next one
    SELECT e.patient_id, e.kit_id, e.to_status,
           CAST(e.occurred_at AT TIME ZONE CAST(:zone AS text) AS date) AS start_day,
           lead(CAST(e.occurred_at AT TIME ZONE CAST(:zone AS text) AS date))
               OVER (PARTITION BY e.serial_unit_id ORDER BY e.occurred_at, e.id) AS end_day,
           (COALESCE(i.daily_rate, 0) + 50) / 100 AS daily_cents
    FROM equipment_events e
    JOIN serial_units su ON su.id = e.serial_unit_id
    JOIN items i ON i.id = su.item_id
),
equipment AS (
    SELECT s.patient_id,
           sum(s.daily_cents * (LEAST(b.last_day, COALESCE(s.end_day - 1, b.last_day))
                                - GREATEST(b.first_day, s.start_day) + 1)) AS cost
    FROM stay s CROSS JOIN bounds b
    WHERE s.to_status = 'at_patient' AND s.kit_id IS NOT NULL
      AND LEAST(b.last_day, COALESCE(s.end_day - 1, b.last_day))
          >= GREATEST(b.first_day, s.start_day)
    GROUP BY s.patient_id
)
SELECT patient_id,
       CAST(sum(units) AS bigint), CAST(sum(supply) AS bigint), CAST(sum(credit) AS bigint),
       CAST(sum(waste) AS bigint), CAST(sum(equipment) AS bigint), CAST(sum(revenue) AS bigint)
FROM (
    SELECT patient_id, units, 0 AS supply, 0 AS credit, 0 AS waste, 0 AS equipment, revenue
    FROM dose
    UNION ALL SELECT patient_id, units, 0, 0, 0, 0, revenue FROM calendar
    UNION ALL SELECT patient_id, 0, cost, 0, 0, 0, 0 FROM supply
    UNION ALL SELECT patient_id, 0, 0, credit, waste, 0, 0 FROM takeback
    UNION ALL SELECT patient_id, 0, 0, 0, 0, cost, 0 FROM equipment
) figures
GROUP BY patient_id
ORDER BY patient_id
"""

Figures = tuple[int, int, int, int, int, int]  # in the order of FIGURES; money in cents
NOTHING: Figures = (0, 0, 0, 0, 0, 0)


def sql_figures(connection: Connection, first: date, last: date) -> dict[int, Figures]:
    rows = connection.execute(text(FIGURES_SQL), {"first": first, "last": last, "zone": ZONE}).all()
    found: dict[int, Figures] = {}
    for patient_id, *values in rows:
        figures = tuple(int(value) for value in values)
        if any(figures):
            found[int(patient_id)] = figures  # type: ignore[assignment]
    return found


def _cents(amount: str) -> int:
    return int(Decimal(amount) * 100)


def _figures(view: dict[str, Any]) -> Figures:
    return (
        int(view["per_diem_units"]),
        _cents(view["supply_cost"]),
        _cents(view["return_credit"]),
        _cents(view["waste_cost"]),
        _cents(view["equipment_cost"]),
        _cents(view["expected_revenue"]),
    )


def report_figures(
    client: FlaskClient, headers: dict[str, str], first: date, last: date
) -> tuple[dict[int, Figures], Figures]:
    """The report by patient through the API: its rows and its totals."""
    response = client.get(
        "/api/v1/reports/per-diem",
        query_string={"from": first.isoformat(), "to": last.isoformat(), "group_by": "patient"},
        headers=headers,
    )
    if response.status_code != 200:
        raise RuntimeError(f"report: {response.status_code} {response.get_data(as_text=True)}")
    body = response.get_json()
    rows = {int(row["patient_id"]): _figures(row) for row in body["rows"]}
    return rows, _figures(body["totals"])


def total(rows: dict[int, Figures]) -> Figures:
    sums = [sum(figures[n] for figures in rows.values()) for n in range(len(FIGURES))]
    return (sums[0], sums[1], sums[2], sums[3], sums[4], sums[5])


def show(figures: Figures) -> str:
    return ", ".join(
        f"{name}={value if name == 'per_diem_units' else f'{value / 100:.2f}'}"
        for name, value in zip(FIGURES, figures, strict=True)
    )


def best_of(measure: Callable[[], Any]) -> tuple[float, Any]:
    """Best wall time of RUNS runs after one warm-up, and the last run's result."""
    result = measure()
    best = float("inf")
    for _ in range(RUNS):
        started = time.perf_counter()
        result = measure()
        best = min(best, time.perf_counter() - started)
    return best, result


def compare(
    label: str,
    report_rows: dict[int, Figures],
    report_totals: Figures,
    sql_rows: dict[int, Figures],
) -> bool:
    """Report and SQL to the cent, per patient and in total; prints what differs."""
    sql_totals = total(sql_rows)
    differing = sorted(
        patient
        for patient in report_rows.keys() | sql_rows.keys()
        if report_rows.get(patient, NOTHING) != sql_rows.get(patient, NOTHING)
    )
    if report_totals == sql_totals and not differing:
        return True
    print(f"!! {label}: the report and the SQL disagree")
    print(f"   report totals: {show(report_totals)}")
    print(f"   SQL totals:    {show(sql_totals)}")
    print(f"   {len(differing)} patient(s) differ, e.g.:")
    for patient in differing[:8]:
        mine, theirs = report_rows.get(patient, NOTHING), sql_rows.get(patient, NOTHING)
        gaps = [
            f"{name} report {a} SQL {b}"
            for name, a, b in zip(FIGURES, mine, theirs, strict=True)
            if a != b
        ]
        print(f"   patient {patient}: " + "; ".join(gaps) + " (money in cents)")
    return False


# --- memory while streaming -----------------------------------------------------------------


@dataclass(frozen=True)
class Streamed:
    rows: int
    megabytes: float
    peak_mib: float
    seconds: float


def stream_peak(
    client: FlaskClient, headers: dict[str, str], path: str, params: dict[str, str]
) -> Streamed:
    """Peak traced Python memory while a CSV streams, consumed a chunk at a time."""
    gc.collect()
    tracemalloc.start()
    try:
        started = time.perf_counter()
        response = client.get(
            path, query_string=params, headers={**headers, "Accept": "text/csv"}, buffered=False
        )
        if response.status_code != 200:
            raise RuntimeError(f"{path}: {response.status_code}")
        lines = size = 0
        for chunk in response.iter_encoded():
            lines += chunk.count(b"\n")
            size += len(chunk)
        response.close()
        seconds = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    total_line = 1 if path.endswith("per-diem") else 0
    return Streamed(lines - 1 - total_line, size / 1e6, peak / 2**20, seconds)


# --- the run --------------------------------------------------------------------------------


def machine(connection: Connection) -> dict[str, Any]:
    memory = "?"
    with open("/proc/meminfo", encoding="ascii") as meminfo:
        for line in meminfo:
            if line.startswith("MemTotal:"):
                memory = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    version = connection.execute(text("SHOW server_version")).scalar_one()
    return {"nproc": os.cpu_count(), "ram": memory, "postgresql": str(version)}


def run(database_url: str, patients: int) -> dict[str, Any]:
    started = time.perf_counter()
    year = plan_year(patients)
    planned = time.perf_counter() - started
    counts = load(database_url, year)
    del year
    generated = time.perf_counter() - started
    print(
        f"generated in {generated:.1f} s (planned in {planned:.1f} s): "
        + ", ".join(f"{table} {count:,}" for table, count in counts.items())
    )
    app = create_app(Settings(database_url=database_url, log_level="WARNING"))
    database: Database = app.extensions["inventory.db"]
    with database.transaction() as session:
        user = users.create_user(session, {"name": "bench finance", "role": Role.FINANCE})
        headers = {"Authorization": f"Bearer {users.issue_token(session, user).secret}"}
    client = app.test_client()
    with database.engine.connect() as connection:
        result: dict[str, Any] = {"benchmark": "report", **machine(connection)}
    result |= {
        "patients": patients,
        "patients_small_big": f"{patients // 10} / {patients - patients // 10}",
        **{f"rows_{table}": count for table, count in counts.items()},
        "generate_seconds": round(generated, 1),
    }
    matched = True
    for label, (first, last) in (("month", MONTH), ("year", (FIRST, LAST))):
        report_seconds, (report_rows, report_totals) = best_of(
            partial(report_figures, client, headers, first, last)
        )
        with database.engine.connect() as connection:
            # The same session settings the report gives itself (and the app's jit=off).
            connection.execute(text(f"SET work_mem = '{costing.REPORT_WORK_MEM}'"))
            sql_seconds, sql_rows = best_of(partial(sql_figures, connection, first, last))
        same = compare(f"{first}..{last}", report_rows, report_totals, sql_rows)
        matched = matched and same
        result |= {
            f"{label}_period": f"{first}..{last}",
            f"{label}_report_seconds": round(report_seconds, 3),
            f"{label}_sql_seconds": round(sql_seconds, 3),
            f"{label}_ratio": round(report_seconds / sql_seconds, 2),
            f"{label}_patients": len(report_rows),
            f"{label}_totals": show(report_totals),
            f"{label}_sql_totals": show(total(sql_rows)),
            f"{label}_totals_match": same,
        }
    year_params = {"from": FIRST.isoformat(), "to": LAST.isoformat()}
    days = "/api/v1/reports/per-diem/days"
    by_therapy = {**year_params, "group_by": "therapy"}
    # Warm up both sizes first (one week each way, by day and by therapy), so the one-time
    # costs (compiled statements, imports) are behind both measurements: the ratio then
    # compares what grows with the rows.
    week = {"from": "2025-06-01", "to": "2025-06-07"}
    for path, extra in ((days, {}), ("/api/v1/reports/per-diem", {"group_by": "therapy"})):
        stream_peak(client, headers, path, {**week, **extra, "site": "SMALL"})
        stream_peak(client, headers, path, {**week, **extra})
    for label, path, params in (
        ("days_csv", days, year_params),
        ("therapy_csv", "/api/v1/reports/per-diem", by_therapy),
    ):
        small = stream_peak(client, headers, path, {**params, "site": "SMALL"})
        every = stream_peak(client, headers, path, params)
        result |= {
            f"{label}_rows_small_all": f"{small.rows:,} / {every.rows:,}",
            f"{label}_mb_small_all": f"{small.megabytes:.1f} / {every.megabytes:.1f}",
            f"{label}_seconds_small_all": f"{small.seconds:.1f} / {every.seconds:.1f}",
            f"{label}_peak_mib_small_all": f"{small.peak_mib:.2f} / {every.peak_mib:.2f}",
            f"{label}_peak_ratio": round(every.peak_mib / small.peak_mib, 2),
        }
    database.dispose()
    result |= {
        "batch_patient_days": costing.BATCH_PATIENT_DAYS,
        "totals_match": matched,
        "target_ratio": 2.0,
        "target_year_report_seconds": 2.0,
        "target_csv_peak_ratio": 1.2,
    }
    return result
