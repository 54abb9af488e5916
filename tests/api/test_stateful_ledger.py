"""A stateful model of the stock ledger, driven through the HTTP API as the roles would.

A hypothesis state machine receives, plans and reserves, releases (cancels days and kits,
moves days), builds, scans and packs kits, routes and dispatches them, confirms deliveries
(or failed stops), takes goods back, adjusts and transfers stock, recalls lots, moves the
clock forward and closes past months, in whatever order hypothesis finds. Every rule accepts
only the refusals it can explain (409, 422) and fails on a 500 or any other status; where the
outcome is cheap to predict (receipts, adjustments, transfers, recalls, cancelling a kit,
confirming a stop, returns, closing a month) the exact status is asserted.

Half the time a rule aims at something in the state it needs (a reserved day to build, an
open kit to scan, a packed kit to route, a dispatched one to confirm, a shelf with stock to
adjust; a kit is made on the spot if none is), so that every rule reaches its success path
in a short run; otherwise it takes what its bundle offers, whatever its state.

After every step:

* each (item, lot, location) balance equals the sum of its movements in less out, and its
  ``reserved`` the sum of its active reservations plus the units kits have picked onto that
  staging bench or van; ``GET /stock`` shows the same figures;
* 0 <= reserved <= on hand everywhere;
* no active or picked reservation holds a lot that expires before its infusion day (nor,
  in a kit, before the kit's last day), and none holds a recalled lot in a kit still in the
  building;
* every closed month keeps its per diem report (CSV, and its day drill-down CSV) byte for
  byte, and its movements (ids, quantities and costs).

The clock: each example starts frozen at 09:00 UTC on 29 April 2026 (``finance_builders.clock``)
and only moves forward, by whole days, through ``advance_clock`` and ``close_month``; so April
can be closed as soon as the clock reaches May, with stock, kits and deliveries already dated
in it. March (before the pharmacy existed) can be closed at any time. Backdated receipts,
adjustments, transfers, deliveries and returns probe the closed months.

The pharmacy (users, locations, items, patients, templates, opening stock, a pump therapy and
a kit delivered on 29 April) is built once per test, by the first example; every example then
runs inside a savepoint on top of it and is rolled back at its end, so each starts from the
same database and shrinks deterministically.

The machine found three service bugs, now fixed and each kept by a test at the end of this
module: transfers and adjustments took the units a packed or dispatched kit had picked; a
return could be dated before its delivery; a pump at a patient's home could be "found" in
storage.

``SM_EXAMPLES`` and ``SM_STEPS`` override the number of examples and the steps per example,
for a longer soak: ``SM_EXAMPLES=500 pytest tests/api/test_stateful_ledger.py``.
"""

from __future__ import annotations

import copy
import os
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from hypothesis import HealthCheck, currently_in_test_context, event, note, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import Connection, Select, and_, func, or_, select
from sqlalchemy.engine import NestedTransaction
from werkzeug.test import TestResponse

from inventory.db import Database
from inventory.deliveries.models import Route, RouteStatus
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import (
    Balance,
    EquipmentStatus,
    Lot,
    Movement,
    Reservation,
    ReservationStatus,
    SerialUnit,
)
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from inventory.users.models import Role
from tests.api.delivery_builders import b64, png
from tests.api.finance_builders import clock
from tests.api.ledger_helpers import all_pages
from tests.builders import Api, Catalog, ok, problem, unique

Body = dict[str, Any]
Key = tuple[int, str | None, str | None]  # item id, lot number, serial
Place = tuple[int, int | None, int | None]  # item id, lot id, location id
Period = tuple[bytes, bytes, list[tuple[Any, ...]]]

EXAMPLES = int(os.environ.get("SM_EXAMPLES", "15"))
STEPS = int(os.environ.get("SM_STEPS", "25"))

START = date(2026, 4, 29)
MONTHS = ("2026-03", "2026-04", "2026-05")
FLUSH_PER_DAY = 2
GLOVES_PER_DAY = 1
SIGNATURE = b64(png())
PROBLEM_JSON = "application/problem+json"

ADDING = ("found", "count")
REMOVING = ("count", "damaged", "expired", "recalled", "lost")
STAGES = ("built", "scanned", "packed", "routed", "dispatched", "confirmed")
REASONS = ("count", "damaged", "expired", "recalled", "lost", "found")
# Kits whose picked units are still in the building or on the van: on the staging bench
# (open after a recall, or packed) or on the vehicle (dispatched, or back from a failed stop).
AWAY_FROM_SHELF = (KitStatus.OPEN, KitStatus.PACKED, KitStatus.DISPATCHED, KitStatus.FAILED)
IN_THE_BUILDING = (KitStatus.OPEN, KitStatus.PACKED)
CANCELLABLE = ("open", "packed", "failed")
TAKES_RETURNS = ("delivered", "returned")


def month_bounds(month: str) -> tuple[date, date]:
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    following = date(year + number // 12, number % 12 + 1, 1)
    return first, following - timedelta(days=1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def remark(text: str) -> None:
    """``note`` inside a hypothesis run; nothing in the plain tests at the end."""
    if currently_in_test_context():
        note(text)


def expect(response: TestResponse, *allowed: int, what: str) -> tuple[int, Any]:
    """The response's status and JSON body; never a 5xx, always one of ``allowed``, and every
    refusal a problem+json document. Each outcome is a hypothesis ``event`` (shown with
    ``--hypothesis-show-statistics``)."""
    status = response.status_code
    text = response.get_data(as_text=True)
    remark(f"{what} -> {status}")
    if currently_in_test_context():
        event(f"{what.split(':')[0]} -> {status}")
    assert status < 500, f"{what}: server error {status}: {text[:2000]}"
    assert status in allowed, f"{what}: status {status}, expected one of {allowed}: {text[:2000]}"
    if status >= 400:
        assert response.content_type == PROBLEM_JSON, (what, response.content_type)
        body = response.get_json()
        assert {"type", "title", "status", "detail"} <= set(body), (what, body)
        assert body["status"] == status, (what, body)
    return status, response.get_json(silent=True)


@dataclass
class Model:
    """What the machine knows of the things it made; each example starts from a copy."""

    lot_expiry: dict[str, date] = field(default_factory=dict)
    recalled: set[str] = field(default_factory=set)
    day_info: dict[int, tuple[int, date]] = field(default_factory=dict)  # id: (patient, date)
    routed: set[int] = field(default_factory=set)  # kits that went on a route of our driver
    route_kits: dict[int, list[int]] = field(default_factory=dict)
    kit_route: dict[int, int] = field(default_factory=dict)  # kit: its latest route
    dispatched_at: dict[int, datetime] = field(default_factory=dict)  # kit: latest dispatch
    delivered_at: dict[int, datetime] = field(default_factory=dict)  # kit: its delivery
    returned: dict[int, Counter[Key]] = field(default_factory=dict)  # kit: units back
    closed: dict[str, Period] = field(default_factory=dict)  # month: what it was at close


@dataclass
class Pharmacy:
    """What the first example builds and every example starts from."""

    site: str
    admin: Api
    warehouse: Api
    coordinator: Api
    finance: Api
    driver: Api
    driver_id: int
    vehicle_id: int
    places: dict[str, int]  # A, B, staging, quarantine, cleaning, vehicle
    items: dict[str, Body]  # flush, gloves, pump
    patients: list[int]
    templates: dict[str, int]  # supplies, pump
    serials: list[str]
    first_lots: list[str] = field(default_factory=list)
    first_days: list[int] = field(default_factory=list)
    april_kit: int = 0
    baseline: Model = field(default_factory=Model)


@dataclass
class World:
    """What the pytest fixtures hand to each example, and the pharmacy once it is built."""

    app: Flask
    database: Database
    connection: Connection
    as_role: Callable[..., Api]
    pharmacy: Pharmacy | None = None


def open_pharmacy(world: World) -> Pharmacy:
    """Users, locations, items, patients and kit templates; stock comes later."""
    as_role = world.as_role
    site = unique("SM")[:32]
    warehouse = as_role(Role.WAREHOUSE)
    coordinator = as_role(Role.COORDINATOR)
    driver = as_role(Role.DRIVER, site=site)
    me = ok(driver.get("/me"))
    assert me["vehicle_location_id"] is not None, me
    catalog = Catalog(warehouse, world.app)
    places = {
        "A": catalog.location(kind="storage", site=site, code=unique("A-01"))["id"],
        "B": catalog.location(kind="storage", site=site, code=unique("B-01"))["id"],
        "staging": catalog.location(kind="staging", site=site)["id"],
        "quarantine": catalog.location(kind="quarantine", site=site)["id"],
        "cleaning": catalog.location(kind="cleaning", site=site)["id"],
        "vehicle": me["vehicle_location_id"],
    }
    items = {
        "flush": catalog.item(tracking="lot", category="flush"),
        "gloves": catalog.item(tracking="none", category="ppe"),
        "pump": catalog.item(tracking="serial", category="pump", daily_rate="12.5000"),
    }
    payer = ok(
        coordinator.post(
            "/payers",
            {
                "name": unique("Payer"),
                "rates": [
                    {
                        "hcpcs": "S9357",
                        "rate": "400.0000",
                        "counting": "dose_day",
                        "effective_from": "2026-01-01",
                    }
                ],
            },
        ),
        201,
    )
    patients = [
        ok(
            coordinator.post(
                "/patients",
                {
                    "external_ref": unique("MRN"),
                    "name": "Model Patient",
                    "address": {
                        "line1": "1 Main St",
                        "city": "Austin",
                        "state": "TX",
                        "postal_code": "78701",
                    },
                    "payer_id": payer["id"],
                    "site": site,
                },
            ),
            201,
        )["id"]
        for _ in range(3)
    ]
    supplies = [
        {"item_id": items["flush"]["id"], "quantity_per_day": FLUSH_PER_DAY},
        {"item_id": items["gloves"]["id"], "quantity_per_day": GLOVES_PER_DAY},
    ]
    templates = {
        name: ok(
            coordinator.post(
                "/kit-templates",
                {"name": unique(name), "hcpcs": "S9357", "lines": supplies, "equipment": equipment},
            ),
            201,
        )["id"]
        for name, equipment in (
            ("supplies", []),
            ("pump", [{"item_id": items["pump"]["id"], "quantity": 1}]),
        )
    }
    return Pharmacy(
        site=site,
        admin=as_role(Role.ADMIN),
        warehouse=warehouse,
        coordinator=coordinator,
        finance=as_role(Role.FINANCE),
        driver=driver,
        driver_id=me["id"],
        vehicle_id=me["vehicle_location_id"],
        places=places,
        items=items,
        patients=patients,
        templates=templates,
        serials=[unique("PUMP") for _ in range(3)],
    )


class LedgerMachine(RuleBasedStateMachine):
    lots = Bundle("lots")  # lot numbers of the flush
    days = Bundle("days")  # infusion day ids
    kits = Bundle("kits")  # kit ids

    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.database = world.database
        self.today = START
        self._clock = ExitStack()
        self._clock.enter_context(clock(self.today))
        self._savepoint: NestedTransaction | None = None
        try:
            if world.pharmacy is None:
                world.pharmacy = self._stock_the_pharmacy(open_pharmacy(world))
            self._adopt(world.pharmacy)
            self._savepoint = world.connection.begin_nested()
        except BaseException:
            self.teardown()
            raise

    def teardown(self) -> None:
        self._clock.close()
        if self._savepoint is not None and self._savepoint.is_active:
            self._savepoint.rollback()

    # --- set-up ----------------------------------------------------------------------------

    def _adopt(self, pharmacy: Pharmacy) -> None:
        self.pharmacy = pharmacy
        self.site = pharmacy.site
        self.admin = pharmacy.admin
        self.warehouse = pharmacy.warehouse
        self.coordinator = pharmacy.coordinator
        self.finance = pharmacy.finance
        self.driver = pharmacy.driver
        self.driver_id = pharmacy.driver_id
        self.places = pharmacy.places
        self.flush = pharmacy.items["flush"]
        self.gloves = pharmacy.items["gloves"]
        self.pump = pharmacy.items["pump"]
        self.items = pharmacy.items
        self.patients = pharmacy.patients
        self.templates = pharmacy.templates
        self.serials = pharmacy.serials
        self.model = copy.deepcopy(pharmacy.baseline)

    def _stock_the_pharmacy(self, pharmacy: Pharmacy) -> Pharmacy:
        """Opening stock (two lots of flushes, gloves, three pumps); the first patient's pump
        therapy (days tomorrow, in two and in four days); and April's business, so that
        closing April has something to keep: the second patient's first day reserved, packed,
        dispatched and delivered today (29 April)."""
        self._adopt(pharmacy)
        for lot, quantity, expires_in, shelf in (
            (unique("L"), 20, 60, "A"),
            (unique("L"), 30, 200, "B"),
        ):
            expiry = self.today + timedelta(days=expires_in)
            received = self._receive(self.flush, quantity, "0.5000", shelf, self.now(), lot, expiry)
            assert received == 201
            self.model.lot_expiry[lot] = expiry
            pharmacy.first_lots.append(lot)
        assert self._receive(self.gloves, 40, "0.2500", "B", self.now(), None, None) == 201
        line = {
            "item_id": self.pump["id"],
            "quantity": 3,
            "unit_cost": "900.0000",
            "location_id": self.places["A"],
            "serials": self.serials,
        }
        ok(self.warehouse.post("/receipts", {"reference": unique("PO"), "lines": [line]}), 201)
        pharmacy.first_days = self._therapy(0, "pump", [1, 2, 4])
        [day] = self._therapy(1, "supplies", [0])
        expect(self.coordinator.post(f"/infusion-days/{day}/reserve"), 200, what="reserve")
        kit = self._build(day, 0)
        assert kit is not None
        assert self._scan(kit, None)
        assert self._pack(kit)
        route = self._route(kit, 0)
        assert route is not None
        assert self._dispatch(route)
        assert self._confirm(kit, delivered=True, hours_back=0)
        pharmacy.april_kit = kit
        pharmacy.baseline = self.model
        return pharmacy

    # --- helpers ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime(self.today.year, self.today.month, self.today.day, 9, tzinfo=UTC)

    def backdated(self, days_back: int) -> datetime:
        return self.now() - timedelta(days=days_back)

    def is_closed(self, moment: datetime) -> bool:
        return month_of(moment.astimezone(UTC).date()) in self.model.closed

    def keyed(self, api: Api, path: str, body: Body) -> TestResponse:
        return api.post(path, body, headers={"Idempotency-Key": uuid.uuid4().hex})

    def kit_view(self, kit_id: int) -> Body:
        view: Body = ok(self.warehouse.get(f"/kits/{kit_id}"))
        return view

    def deliverer(self, kit_id: int) -> Api:
        """The driver for a kit that went on their route; the admin (who may confirm any
        stop) otherwise, so that a never-routed kit answers 409 rather than a driver's 404."""
        return self.driver if kit_id in self.model.routed else self.admin

    def _ids(self, query: Select[int]) -> list[int]:
        session = self.database.session()
        try:
            return [int(found) for found in session.scalars(query)]
        finally:
            session.close()

    def _aim(self, data: st.DataObject, drawn: int, query: Select[int], what: str) -> int:
        """Half the time, one of the ids ``query`` finds (things in the state the rule needs,
        so that it reaches its success path); otherwise, or if there are none, ``drawn``
        (from a bundle: anything, in any state, for the refusals)."""
        if data.draw(st.booleans(), label=f"aim at {what}"):
            ids = self._ids(query.order_by(query.selected_columns[0]))
            if ids:
                return data.draw(st.sampled_from(ids), label=what)
        return drawn

    def _aim_at_kit(
        self, data: st.DataObject, drawn: int, query: Select[int], made_until: str
    ) -> int:
        """Like ``_aim``, for kits; when none is in the state the rule needs, one is made:
        a free day fulfilled up to the stage ``made_until``."""
        if not data.draw(st.booleans(), label="aim at a kit"):
            return drawn
        kits = self._ids(query.order_by(Kit.id))
        if kits:
            return data.draw(st.sampled_from(kits), label="kit")
        made = self._make_kit(data, made_until)
        return drawn if made is None else made

    def _make_kit(self, data: st.DataObject, until: str) -> int | None:
        """A kit for a free day, taken up to the stage ``until``; None if there is no free
        day or it cannot be built."""
        days = self._ids(self._free_days().order_by(InfusionDay.id))
        if not days:
            return None
        day = data.draw(st.sampled_from(days), label="day")
        return self._fulfil(day, 0, until, delivered=True, hours_back=0)

    def _free_days(self) -> Select[int]:
        return self._days_in(
            InfusionDayStatus.SCHEDULED, InfusionDayStatus.SHORT, InfusionDayStatus.RESERVED
        )

    def _kits_in(self, *statuses: KitStatus) -> Select[int]:
        return select(Kit.id).where(Kit.site == self.site, Kit.status.in_(statuses))

    def _days_in(self, *statuses: InfusionDayStatus) -> Select[int]:
        return select(InfusionDay.id).where(
            InfusionDay.site == self.site,
            InfusionDay.status.in_(statuses),
            InfusionDay.kit_id.is_(None),
            InfusionDay.date >= self.today,
        )

    def _shelf(self, item_id: int, lot: str | None, location_id: int) -> int:
        """Units free at a place: on hand less reserved, where reserved counts the units
        kits have picked onto a staging bench or a van as well as the active reservations."""
        session = self.database.session()
        try:
            free = select(Balance.on_hand - Balance.reserved).where(
                Balance.item_id == item_id, Balance.location_id == location_id
            )
            if lot is None:
                free = free.where(Balance.lot_id.is_(None))
            else:
                free = free.join(Lot, Balance.lot_id == Lot.id).where(Lot.lot_number == lot)
            return int(session.scalar(free) or 0)
        finally:
            session.close()

    # --- stock in ---------------------------------------------------------------------------

    @rule(
        target=lots,
        quantity=st.integers(1, 30),
        expiry_in=st.sampled_from([-1, 0, 1, 2, 3, 5, 8, 30, 200]),
        shelf=st.sampled_from("AB"),
        unit_cost=st.sampled_from(["0.5000", "0.7500", "1.2345"]),
        days_back=st.sampled_from([0, 0, 0, 1, 3]),
    )
    def receive_flush_lot(
        self, quantity: int, expiry_in: int, shelf: str, unit_cost: str, days_back: int
    ) -> Any:
        """A new lot of flushes; expiries include today, tomorrow and yesterday."""
        lot = unique("L")
        expiry = self.today + timedelta(days=expiry_in)
        occurred = self.backdated(days_back)
        status = self._receive(self.flush, quantity, unit_cost, shelf, occurred, lot, expiry)
        if status != 201:
            return multiple()
        self.model.lot_expiry[lot] = expiry
        return lot

    @rule(
        lot=lots,
        quantity=st.integers(1, 20),
        shelf=st.sampled_from("AB"),
        days_back=st.sampled_from([0, 0, 2]),
    )
    def receive_more_of_a_lot(self, lot: str, quantity: int, shelf: str, days_back: int) -> None:
        self._receive(self.flush, quantity, "0.6000", shelf, self.backdated(days_back), lot, None)

    @rule(quantity=st.integers(1, 20), shelf=st.sampled_from("AB"))
    def receive_gloves(self, quantity: int, shelf: str) -> None:
        self._receive(self.gloves, quantity, "0.2500", shelf, self.now(), None, None)

    def _receive(
        self,
        item: Body,
        quantity: int,
        unit_cost: str,
        shelf: str,
        occurred: datetime,
        lot: str | None,
        expiry: date | None,
    ) -> int:
        line: Body = {
            "item_id": item["id"],
            "quantity": quantity,
            "unit_cost": unit_cost,
            "location_id": self.places[shelf],
        }
        if lot is not None:
            line["lot"] = lot
            expiry = expiry or self.model.lot_expiry[lot]
            line["expiry"] = expiry.isoformat()
        body = {"reference": unique("PO"), "occurred_at": occurred.isoformat(), "lines": [line]}
        response = self.warehouse.post("/receipts", body)
        if expiry is not None and expiry < occurred.date():
            wanted = 422
        elif self.is_closed(occurred):
            wanted = 409
        else:
            wanted = 201
        status, _ = expect(response, wanted, what=f"receive: {quantity} of lot {lot} on {occurred}")
        return status

    # --- therapies, planning and releasing ---------------------------------------------------

    def _therapy(self, patient: int, template: str, offsets: list[int]) -> list[int]:
        """A therapy from today with infusion days ``offsets`` days ahead; their ids."""
        patient_id = self.patients[patient]
        dates = sorted(self.today + timedelta(days=n) for n in offsets)
        body = {
            "patient_id": patient_id,
            "template_id": self.templates[template],
            "hcpcs": "S9357",
            "start_date": self.today.isoformat(),
            "schedule": {"dates": [d.isoformat() for d in dates]},
        }
        _, therapy = expect(self.coordinator.post("/therapies", body), 201, what="therapy")
        rows = all_pages(self.coordinator, f"/therapies/{therapy['id']}/infusion-days")
        assert sorted(date.fromisoformat(row["date"]) for row in rows) == dates
        for row in rows:
            self.model.day_info[row["id"]] = (patient_id, date.fromisoformat(row["date"]))
        return [row["id"] for row in rows]

    @initialize(target=days)
    def first_therapy(self) -> Any:
        return multiple(*self.pharmacy.first_days)

    @initialize(target=lots)
    def first_lots_on_the_shelves(self) -> Any:
        return multiple(*self.pharmacy.first_lots)

    @initialize(target=kits)
    def delivered_in_april(self) -> int:
        return self.pharmacy.april_kit

    @rule(
        target=days,
        patient=st.integers(0, 2),
        template=st.sampled_from(["supplies", "supplies", "pump"]),
        offsets=st.lists(st.integers(0, 8), min_size=1, max_size=3, unique=True),
    )
    def start_therapy(self, patient: int, template: str, offsets: list[int]) -> Any:
        return multiple(*self._therapy(patient, template, offsets))

    @rule(horizon=st.integers(1, 14))
    def planning_run(self, horizon: int) -> None:
        expect(
            self.coordinator.post("/planning/run", {"horizon_days": horizon, "site": self.site}),
            200,
            what=f"planning run: {horizon} days",
        )

    @rule(day=days, data=st.data())
    def reserve_day(self, day: int, data: st.DataObject) -> None:
        open_days = self._days_in(InfusionDayStatus.SCHEDULED, InfusionDayStatus.SHORT)
        day = self._aim(data, day, open_days, "day")
        expect(self.coordinator.post(f"/infusion-days/{day}/reserve"), 200, 409, what="reserve")

    @rule(day=days, data=st.data())
    def cancel_day(self, day: int, data: st.DataObject) -> None:
        day = self._aim(data, day, self._free_days(), "day")
        expect(
            self.coordinator.patch(f"/infusion-days/{day}", {"status": "cancelled"}),
            200,
            409,
            what="cancel day",
        )

    @rule(day=days, to=st.integers(-1, 9), data=st.data())
    def move_day(self, day: int, to: int, data: st.DataObject) -> None:
        day = self._aim(data, day, self._free_days(), "day")
        new_date = self.today + timedelta(days=to)
        status, body = expect(
            self.coordinator.patch(f"/infusion-days/{day}", {"date": new_date.isoformat()}),
            200,
            409,
            422,
            what=f"move day: to {new_date}",
        )
        if status == 200:
            patient_id, _ = self.model.day_info[day]
            self.model.day_info[day] = (patient_id, date.fromisoformat(body["date"]))

    # --- kits --------------------------------------------------------------------------------

    def _build(self, day: int, more: int) -> int | None:
        """A kit for ``day`` and the patient's ``more`` earliest other days; None if refused."""
        patient_id, _ = self.model.day_info[day]
        others = sorted(
            (when, other)
            for other, (owner, when) in self.model.day_info.items()
            if owner == patient_id and other != day
        )[:more]
        body = {"patient_id": patient_id, "infusion_day_ids": [day, *(o for _, o in others)]}
        status, kit = expect(self.warehouse.post("/kits", body), 201, 409, what="build kit")
        return int(kit["id"]) if status == 201 else None

    def _scan(self, kit: int, other_lot: str | None) -> bool:
        """Scan every line still short (a flush line by ``other_lot`` when given: a swap).
        Any scan may be refused (expired, recalled, quarantined, too many...)."""
        current = self.kit_view(kit)
        scanned = True
        for line in current["lines"]:
            left = line["quantity"] - line["packed_quantity"]
            if left <= 0:
                continue
            body: Body = {"item_id": line["item_id"], "quantity": left}
            if line["serial"]:
                body["serial"] = line["serial"]
            elif line["lot"]:
                body["lot"] = other_lot or line["lot"]
            status, _ = expect(
                self.warehouse.post(f"/kits/{kit}/scans", body), 200, 409, what=f"scan: {body}"
            )
            scanned = scanned and status == 200
        return scanned

    def _pack(self, kit: int) -> bool:
        status, _ = expect(self.warehouse.post(f"/kits/{kit}/pack", {}), 200, 409, what="pack")
        return status == 200

    def _route(self, kit: int, on: int) -> int | None:
        body = {
            "driver_id": self.driver_id,
            "date": (self.today + timedelta(days=on)).isoformat(),
            "kit_ids": [kit],
        }
        status, route = expect(self.warehouse.post("/routes", body), 201, 409, what="route")
        if status != 201:
            return None
        self.model.routed.add(kit)
        self.model.kit_route[kit] = route["id"]
        self.model.route_kits[route["id"]] = [stop["kit_id"] for stop in route["stops"]]
        return int(route["id"])

    def _dispatch(self, route: int) -> bool:
        status, _ = expect(
            self.warehouse.post(f"/routes/{route}/dispatch"), 200, 409, what="dispatch"
        )
        if status == 200:
            for kit in self.model.route_kits[route]:
                self.model.dispatched_at[kit] = self.now()
        return status == 200

    def _confirm(self, kit: int, delivered: bool, hours_back: int) -> bool:
        """The doorstep: delivered (signed) or failed, ``occurred_at`` as the phone says it:
        perhaps some hours ago, but never before the kit's last dispatch. Only a dispatched
        kit is confirmed (409 otherwise), and a delivery moves stock, so not into a closed
        month (409); a failed stop moves nothing."""
        occurred = self.now() - timedelta(hours=hours_back)
        if kit in self.model.dispatched_at:
            occurred = max(occurred, self.model.dispatched_at[kit])
        body: Body = (
            {
                "outcome": "delivered",
                "occurred_at": occurred.isoformat(),
                "recipient_name": "Signed By Spouse",
                "relationship": "spouse",
                "signature": SIGNATURE,
            }
            if delivered
            else {
                "outcome": "failed",
                "occurred_at": occurred.isoformat(),
                "failure_reason": "not_home",
            }
        )
        kit_status = self.kit_view(kit)["status"]
        refused = kit_status != "dispatched" or (delivered and self.is_closed(occurred))
        status, _ = expect(
            self.keyed(self.deliverer(kit), f"/kits/{kit}/delivery", body),
            409 if refused else 201,
            what=f"confirm {body['outcome']}: kit {kit_status} at {occurred}",
        )
        if status == 201 and delivered:
            self.model.delivered_at[kit] = occurred
        return status == 201

    @rule(target=kits, day=days, more=st.integers(0, 2), data=st.data())
    def build_kit(self, day: int, more: int, data: st.DataObject) -> Any:
        day = self._aim(data, day, self._days_in(InfusionDayStatus.RESERVED), "day")
        kit = self._build(day, more)
        return multiple() if kit is None else kit

    @rule(kit=kits, other_lot=st.none() | lots, pack=st.booleans(), data=st.data())
    def scan_kit(self, kit: int, other_lot: str | None, pack: bool, data: st.DataObject) -> None:
        kit = self._aim_at_kit(data, kit, self._kits_in(KitStatus.OPEN), "built")
        self._scan(kit, other_lot)
        if pack:
            self._pack(kit)

    @rule(kit=kits, data=st.data())
    def pack_kit(self, kit: int, data: st.DataObject) -> None:
        unscanned = select(Reservation.id).where(
            Reservation.kit_id == Kit.id,
            Reservation.status == ReservationStatus.ACTIVE,
            Reservation.packed_quantity < Reservation.quantity,
        )
        scanned = self._kits_in(KitStatus.OPEN).where(~unscanned.exists())
        self._pack(self._aim_at_kit(data, kit, scanned, "scanned"))

    @rule(kit=kits, data=st.data())
    def cancel_kit(self, kit: int, data: st.DataObject) -> None:
        """An open, packed or undelivered (failed) kit gives everything back; not otherwise."""
        live = self._kits_in(KitStatus.OPEN, KitStatus.PACKED, KitStatus.FAILED)
        stage = data.draw(st.sampled_from(STAGES[:3]), label="made until")
        kit = self._aim_at_kit(data, kit, live, stage)
        kit_status = self.kit_view(kit)["status"]
        expect(
            self.warehouse.post(f"/kits/{kit}/cancel", {"reason": "model"}),
            200 if kit_status in CANCELLABLE else 409,
            what=f"cancel kit: {kit_status}",
        )

    @rule(
        target=kits,
        day=days,
        more=st.integers(0, 1),
        until=st.sampled_from(STAGES),
        delivered=st.booleans(),
        hours_back=st.sampled_from([0, 6]),
        data=st.data(),
    )
    def fulfil_day(
        self,
        day: int,
        more: int,
        until: str,
        delivered: bool,
        hours_back: int,
        data: st.DataObject,
    ) -> Any:
        """The round in one step, up to the stage ``until``: reserve, build, scan, pack,
        route, dispatch, confirm; it stops at the first refusal. So short runs reach kits in
        every state."""
        day = self._aim(data, day, self._free_days(), "day")
        kit = self._fulfil(day, more, until, delivered, hours_back)
        return multiple() if kit is None else kit

    def _fulfil(
        self, day: int, more: int, until: str, delivered: bool, hours_back: int
    ) -> int | None:
        expect(self.coordinator.post(f"/infusion-days/{day}/reserve"), 200, 409, what="reserve")
        kit = self._build(day, more)
        if kit is None:
            return None
        stages = STAGES[STAGES.index("built") + 1 : STAGES.index(until) + 1]
        for stage in stages:
            if stage == "scanned":
                done = self._scan(kit, None)
            elif stage == "packed":
                done = self._pack(kit)
            elif stage == "routed":
                done = self._route(kit, 0) is not None
            elif stage == "dispatched":
                done = self._dispatch(self.model.kit_route[kit])
            else:
                done = self._confirm(kit, delivered, hours_back)
            if not done:
                break
        return kit

    # --- routes and delivery ------------------------------------------------------------------

    @rule(kit=kits, on=st.integers(0, 1), dispatch=st.booleans(), data=st.data())
    def route_kit(self, kit: int, on: int, dispatch: bool, data: st.DataObject) -> None:
        routable = self._kits_in(KitStatus.PACKED, KitStatus.FAILED)
        kit = self._aim_at_kit(data, kit, routable, "packed")
        route = self._route(kit, on)
        if route is not None and dispatch:
            self._dispatch(route)

    @rule(kit=kits, data=st.data())
    def dispatch_route(self, kit: int, data: st.DataObject) -> None:
        """Dispatch a planned route, or the kit's latest route (409 if it left already or
        the kit is no longer packed)."""
        planned = select(Route.id).where(
            Route.site == self.site, Route.status == RouteStatus.PLANNED
        )
        route = self._aim(data, self.model.kit_route.get(kit, 0), planned, "route")
        if not route and data.draw(st.booleans(), label="make a route"):
            made = self._make_kit(data, "routed")
            route = 0 if made is None else self.model.kit_route.get(made, 0)
        if route:
            self._dispatch(route)

    @rule(
        kit=kits,
        delivered=st.booleans(),
        hours_back=st.sampled_from([0, 0, 6, 30]),
        data=st.data(),
    )
    def confirm_stop(self, kit: int, delivered: bool, hours_back: int, data: st.DataObject) -> None:
        kit = self._aim_at_kit(data, kit, self._kits_in(KitStatus.DISPATCHED), "dispatched")
        self._confirm(kit, delivered, hours_back)

    @rule(
        kit=kits,
        data=st.data(),
        days_back=st.sampled_from([0, 0, 1, 4]),
    )
    def return_goods(self, kit: int, data: st.DataObject, days_back: int) -> None:
        """Some of what the kit carried comes back: unopened, opened, damaged or expired,
        partial quantities; 409 for a kit not delivered, for more than is left at the patient
        or on a day in a closed month."""
        taking = self._kits_in(KitStatus.DELIVERED, KitStatus.RETURNED)
        kit = self._aim_at_kit(data, kit, taking, "confirmed")
        view = self.kit_view(kit)
        delivered: Counter[Key] = Counter()
        for line in view["lines"]:
            delivered[(line["item_id"], line["lot"], line["serial"])] += line["quantity"]
        already = self.model.returned.get(kit, Counter())
        lines = []
        asked: Counter[Key] = Counter()
        for line in view["lines"]:
            if not data.draw(st.booleans(), label=f"return {line['item_id']} {line['lot']}"):
                continue
            quantity = data.draw(st.integers(1, line["quantity"]), label="quantity")
            condition = data.draw(
                st.sampled_from(["unopened", "opened", "damaged", "expired"]), label="condition"
            )
            entry: Body = {"item_id": line["item_id"], "quantity": quantity, "condition": condition}
            if line["lot"]:
                entry["lot"] = line["lot"]
            if line["serial"]:
                entry["serial"] = line["serial"]
            lines.append(entry)
            asked[(line["item_id"], line["lot"], line["serial"])] += quantity
        if not lines:
            lines = [{"item_id": self.gloves["id"], "quantity": 1, "condition": "opened"}]
            asked[(self.gloves["id"], None, None)] += 1
        occurred = self.backdated(days_back)
        too_many = any(n > delivered[key] - already[key] for key, n in asked.items())
        if view["status"] not in TAKES_RETURNS:
            wanted = 409
        elif occurred < self.model.delivered_at[kit]:  # back before it left
            wanted = 422
        else:
            wanted = 409 if too_many or self.is_closed(occurred) else 201
        status, _ = expect(
            self.keyed(
                self.deliverer(kit),
                f"/kits/{kit}/returns",
                {"lines": lines, "occurred_at": occurred.isoformat()},
            ),
            wanted,
            what=f"return: {lines} from a {view['status']} kit (back before: {dict(already)}) "
            f"at {occurred}",
        )
        if status == 201:
            self.model.returned[kit] = already + asked

    # --- adjustments, transfers and recalls ------------------------------------------------------

    def _stocked(self, data: st.DataObject) -> tuple[int, str | None, int] | None:
        """Mostly (see ``_aim``) a place that holds free flushes or gloves: (item id, lot,
        location id); None otherwise."""
        if not data.draw(st.booleans(), label="aim at stock"):
            return None
        session = self.database.session()
        try:
            rows = [
                (int(item_id), lot, int(location_id))
                for item_id, lot, location_id in session.execute(
                    select(Balance.item_id, Lot.lot_number, Balance.location_id)
                    .outerjoin(Lot, Balance.lot_id == Lot.id)
                    .where(
                        Balance.item_id.in_([self.flush["id"], self.gloves["id"]]),
                        Balance.location_id.in_(list(self.places.values())),
                        Balance.on_hand > Balance.reserved,
                    )
                    .order_by(Balance.id)
                )
            ]
        finally:
            session.close()
        return data.draw(st.sampled_from(rows), label="stock") if rows else None

    @rule(
        item=st.sampled_from(["flush", "gloves"]),
        lot=lots,
        place=st.sampled_from(["A", "B", "staging", "quarantine", "vehicle"]),
        delta=st.integers(-12, 8).filter(bool),
        reason=st.sampled_from(REASONS),
        days_back=st.sampled_from([0, 0, 0, 2, 5]),
        data=st.data(),
    )
    def adjust(
        self,
        item: str,
        lot: str,
        place: str,
        delta: int,
        reason: str,
        days_back: int,
        data: st.DataObject,
    ) -> None:
        """A count, a find, a loss or damage; never below what is free (409 otherwise)."""
        item_id = self.items[item]["id"]
        lot_number = lot if item == "flush" else None
        location_id = self.places[place]
        stocked = self._stocked(data)
        if stocked is not None:  # a loss or a find where there is stock, the right reason
            item_id, lot_number, location_id = stocked
            free = self._shelf(item_id, lot_number, location_id)
            if delta < 0:
                delta = -data.draw(st.integers(1, max(free, 0) + 1), label="lost")
            reason = data.draw(st.sampled_from(REMOVING if delta < 0 else ADDING), label="why")
        occurred = self.backdated(days_back)
        line: Body = {"item_id": item_id, "location_id": location_id, "quantity_delta": delta}
        if lot_number is not None:
            line["lot"] = lot_number
        free = self._shelf(item_id, lot_number, location_id)
        wrong_way = reason not in (ADDING if delta > 0 else REMOVING)
        into_expired_lot = (
            delta > 0
            and lot_number is not None
            and self.model.lot_expiry[lot_number] < occurred.date()
        )
        if wrong_way or into_expired_lot:
            wanted = 422
        elif self.is_closed(occurred) or (delta < 0 and -delta > free):  # picked: reserved
            wanted = 409
        else:
            wanted = 201
        body = {
            "reason": reason,
            "note": "model",
            "occurred_at": occurred.isoformat(),
            "lines": [line],
        }
        expect(
            self.warehouse.post("/adjustments", body),
            wanted,
            what=f"adjust {reason}: item {item_id} lot {lot_number} at {location_id} by {delta} "
            f"(free {free}) on {occurred}",
        )

    @rule(
        serial=st.integers(0, 2),
        place=st.sampled_from(["A", "cleaning", "quarantine"]),
        delta=st.sampled_from([-1, 1]),
        reason=st.sampled_from(["lost", "damaged", "found", "count"]),
        data=st.data(),
    )
    def adjust_pump(
        self, serial: int, place: str, delta: int, reason: str, data: st.DataObject
    ) -> None:
        """A pump lost or damaged where it is (refused, 409, while it is reserved or if it is
        elsewhere), or found when it is nowhere in stock (409 if it is)."""
        session = self.database.session()
        try:
            unit = session.scalars(
                select(SerialUnit).where(
                    SerialUnit.item_id == self.pump["id"],
                    SerialUnit.serial == self.serials[serial],
                )
            ).one()
            unit_status, unit_location = unit.status, unit.location_id
        finally:
            session.close()
        location_id = self.places[place]
        if data.draw(st.booleans(), label="aim at the pump"):  # where it is, the right reason
            delta = 1 if unit_location is None else -1
            location_id = self.places["A"] if unit_location is None else unit_location
            reason = data.draw(st.sampled_from(ADDING if delta > 0 else REMOVING), label="why")
        if reason not in (ADDING if delta > 0 else REMOVING):
            wanted = 422
        elif delta < 0:
            gone = unit_location != location_id or unit_status is EquipmentStatus.RESERVED
            wanted = 409 if gone else 201
        else:
            # Not while it is at a patient's home: its return brings it back.
            at_home = unit_status is EquipmentStatus.AT_PATIENT
            wanted = 201 if unit_location is None and not at_home else 409
        line = {
            "item_id": self.pump["id"],
            "serial": self.serials[serial],
            "location_id": location_id,
            "quantity_delta": delta,
        }
        expect(
            self.warehouse.post("/adjustments", {"reason": reason, "lines": [line]}),
            wanted,
            what=f"adjust pump {reason}: {line} ({unit_status} at {unit_location})",
        )

    @rule(
        item=st.sampled_from(["flush", "gloves"]),
        lot=lots,
        source=st.sampled_from(["A", "B", "quarantine", "staging"]),
        to=st.sampled_from(["A", "B", "quarantine"]),
        quantity=st.integers(1, 12),
        days_back=st.sampled_from([0, 0, 3]),
        data=st.data(),
    )
    def transfer(
        self,
        item: str,
        lot: str,
        source: str,
        to: str,
        quantity: int,
        days_back: int,
        data: st.DataObject,
    ) -> None:
        """Restock from quarantine, move between shelves: never reserved units (409)."""
        item_id = self.items[item]["id"]
        lot_number = lot if item == "flush" else None
        from_id = self.places[source]
        stocked = self._stocked(data)
        if stocked is not None:  # from where there is stock
            item_id, lot_number, from_id = stocked
            free = self._shelf(item_id, lot_number, from_id)
            quantity = data.draw(st.integers(1, max(free, 0) + 1), label="moved")
        line: Body = {
            "item_id": item_id,
            "quantity": quantity,
            "from_location_id": from_id,
            "to_location_id": self.places[to],
        }
        if lot_number is not None:
            line["lot"] = lot_number
        occurred = self.backdated(days_back)
        free = self._shelf(item_id, lot_number, from_id)
        if from_id == self.places[to]:
            wanted = 422
        elif self.is_closed(occurred) or quantity > free:  # a kit's picked units are reserved
            wanted = 409
        else:
            wanted = 201
        expect(
            self.warehouse.post(
                "/transfers", {"occurred_at": occurred.isoformat(), "lines": [line]}
            ),
            wanted,
            what=f"transfer: item {item_id} lot {lot_number} {from_id}->{to} {quantity} (free "
            f"{free}) on {occurred}",
        )

    @rule(lot=lots)
    def recall(self, lot: str) -> None:
        wanted = 409 if lot in self.model.recalled else 201
        expect(
            self.warehouse.post(
                "/recalls", {"item_id": self.flush["id"], "lot": lot, "note": "model"}
            ),
            wanted,
            what=f"recall: {lot}",
        )
        self.model.recalled.add(lot)

    # --- time and periods ----------------------------------------------------------------------

    def _move_clock(self, to: date) -> None:
        """Time only moves forward, by whole days; the clock stays frozen at 09:00 UTC."""
        assert to > self.today
        self._clock.close()
        self.today = to
        self._clock = ExitStack()
        self._clock.enter_context(clock(self.today))
        remark(f"clock -> {self.today}")

    @rule(days=st.sampled_from([1, 1, 2, 3, 6]))
    def advance_clock(self, days: int) -> None:
        self._move_clock(self.today + timedelta(days=days))

    @rule(month=st.sampled_from(MONTHS), wait=st.booleans())
    def close_month(self, month: str, wait: bool) -> None:
        """Finance closes a month: 201 once it is over (with ``wait``, the clock first moves
        to the day after it, as finance would wait), 409 before then or a second time."""
        _, last = month_bounds(month)
        if wait and self.today <= last:
            self._move_clock(last + timedelta(days=1))
        wanted = 201 if last < self.today and month not in self.model.closed else 409
        expect(
            self.finance.post(f"/periods/{month}/close", {"note": "model"}),
            wanted,
            what=f"close {month}: on {self.today}",
        )
        if wanted == 201:
            self.model.closed[month] = self._period(month)

    def _period(self, month: str) -> Period:
        """What must never change once the month is closed."""
        first, last = month_bounds(month)
        period = {"from": first.isoformat(), "to": last.isoformat(), "site": self.site}
        csv = {"Accept": "text/csv"}
        texts = []
        for path, extra in (
            ("/reports/per-diem", {"group_by": "therapy"}),
            ("/reports/per-diem/days", {}),
        ):
            response = self.finance.get(path, headers=csv, **period, **extra)
            try:
                assert response.status_code == 200, response.get_data(as_text=True)
                assert response.mimetype == "text/csv"
                texts.append(response.get_data())
            finally:
                # A streamed body keeps its request (and app) context until it is closed; left
                # open, later requests would share its ``g`` and so its caller.
                response.close()
        start = datetime(first.year, first.month, first.day, tzinfo=UTC)
        end = datetime(last.year, last.month, last.day, tzinfo=UTC) + timedelta(days=1)
        session = self.database.session()
        try:
            movements = session.execute(
                select(Movement.id, Movement.quantity, Movement.unit_cost)
                .where(Movement.occurred_at >= start, Movement.occurred_at < end)
                .order_by(Movement.id)
            ).all()
        finally:
            session.close()
        return (texts[0], texts[1], [tuple(m) for m in movements])

    # --- invariants ----------------------------------------------------------------------------

    @invariant()
    def balances_are_the_sum_of_movements(self) -> None:
        """Balances equal their movements, and their ``reserved`` the active reservations
        plus the units kits have picked onto that bench or van; 0 <= reserved <= on hand."""
        session = self.database.session()
        try:
            moved: dict[Place, int] = defaultdict(int)
            for column, sign in ((Movement.to_location_id, 1), (Movement.from_location_id, -1)):
                for item_id, lot_id, location_id, total in session.execute(
                    select(Movement.item_id, Movement.lot_id, column, func.sum(Movement.quantity))
                    .where(column.is_not(None))
                    .group_by(Movement.item_id, Movement.lot_id, column)
                ):
                    moved[(item_id, lot_id, location_id)] += sign * int(total)
            held: dict[Place, int] = defaultdict(int)
            for item_id, lot_id, location_id, total in session.execute(
                select(
                    Reservation.item_id,
                    Reservation.lot_id,
                    Reservation.location_id,
                    func.sum(Reservation.quantity),
                )
                .where(Reservation.status == ReservationStatus.ACTIVE)
                .group_by(Reservation.item_id, Reservation.lot_id, Reservation.location_id)
            ):
                held[(item_id, lot_id, location_id)] += int(total)
            where_kit_is = func.coalesce(Kit.vehicle_location_id, Kit.staging_location_id)
            for item_id, lot_id, location_id, total in session.execute(
                select(
                    Reservation.item_id,
                    Reservation.lot_id,
                    where_kit_is,
                    func.sum(Reservation.quantity),
                )
                .join(Kit, Reservation.kit_id == Kit.id)
                .where(
                    Reservation.status == ReservationStatus.PICKED,
                    Kit.status.in_(AWAY_FROM_SHELF),
                )
                .group_by(Reservation.item_id, Reservation.lot_id, where_kit_is)
            ):
                held[(item_id, lot_id, location_id)] += int(total)  # picked: bench or van
            balances: dict[Place, tuple[int, int]] = {
                (b.item_id, b.lot_id, b.location_id): (b.on_hand, b.reserved)
                for b in session.scalars(select(Balance))
            }
            problems = []
            for key in sorted(set(moved) | set(balances) | set(held), key=str):
                on_hand, reserved = balances.get(key, (0, 0))
                if on_hand != moved.get(key, 0):
                    problems.append(f"{key}: on_hand {on_hand} != movements {moved.get(key, 0)}")
                if reserved != held.get(key, 0):
                    problems.append(
                        f"{key}: reserved {reserved} != reservations {held.get(key, 0)}"
                    )
                if not 0 <= reserved <= on_hand:
                    problems.append(f"{key}: reserved {reserved} outside 0..{on_hand}")
            assert problems == [], problems
            # Cost layers and serial units add up too (the service's own audit).
            assert ledger_discrepancies(session) == []
        finally:
            session.close()

    @invariant()
    def stock_endpoint_shows_the_balances(self) -> None:
        rows = all_pages(self.warehouse, "/stock", include_empty="true")
        session = self.database.session()
        try:
            balances = {
                (b.item_id, lot, b.location_id): (b.on_hand, b.reserved)
                for b, lot in session.execute(
                    select(Balance, Lot.lot_number).outerjoin(Lot, Balance.lot_id == Lot.id)
                )
            }
        finally:
            session.close()
        shown = {}
        for row in rows:
            assert row["available"] == row["on_hand"] - row["reserved"], row
            assert 0 <= row["reserved"] <= row["on_hand"], row
            shown[(row["item_id"], row["lot"], row["location_id"])] = (
                row["on_hand"],
                row["reserved"],
            )
        assert shown == balances

    @invariant()
    def no_lot_is_held_that_must_not_be(self) -> None:
        """No held reservation's lot expires before its infusion day or, in a kit, before
        the kit's last day; none in a kit still in the building (or in no kit) is recalled."""
        session = self.database.session()
        try:
            bad = session.execute(
                select(
                    Reservation.id,
                    Reservation.status,
                    Reservation.kit_id,
                    Kit.status,
                    Kit.last_day,
                    Lot.lot_number,
                    Lot.expiry,
                    Lot.recalled_at,
                    InfusionDay.id,
                    InfusionDay.date,
                )
                .join(Lot, Reservation.lot_id == Lot.id)
                .outerjoin(InfusionDay, Reservation.infusion_day_id == InfusionDay.id)
                .outerjoin(Kit, Reservation.kit_id == Kit.id)
                .where(
                    Reservation.status.in_([ReservationStatus.ACTIVE, ReservationStatus.PICKED]),
                    or_(
                        Lot.expiry < InfusionDay.date,
                        Lot.expiry < Kit.last_day,
                        and_(
                            Lot.recalled_at.is_not(None),
                            or_(Kit.id.is_(None), Kit.status.in_(IN_THE_BUILDING)),
                        ),
                    ),
                )
            ).all()
        finally:
            session.close()
        assert bad == [], [tuple(row) for row in bad]

    @invariant()
    def closed_months_never_change(self) -> None:
        for month, kept in self.model.closed.items():
            now = self._period(month)
            assert now[2] == kept[2], f"{month}: movements changed\n{kept[2]}\n{now[2]}"
            assert now[0] == kept[0], f"{month}: report changed\n{kept[0]!r}\n{now[0]!r}"
            assert now[1] == kept[1], f"{month}: day rows changed\n{kept[1]!r}\n{now[1]!r}"


def test_the_ledger_holds_its_invariants_whatever_the_order_of_operations(
    app: Flask, database: Database, connection: Connection, as_role: Callable[..., Api]
) -> None:
    world = World(app, database, connection, as_role)

    class Machine(LedgerMachine):
        def __init__(self) -> None:
            super().__init__(world)

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            database=None,
            suppress_health_check=[
                HealthCheck.too_slow,
                HealthCheck.data_too_large,
                HealthCheck.filter_too_much,
            ],
        ),
    )


# --- the service bugs the machine found, kept fixed --------------------------------------------


@pytest.fixture
def machine(
    app: Flask, database: Database, connection: Connection, as_role: Callable[..., Api]
) -> Iterator[LedgerMachine]:
    """The machine's pharmacy on 29 April, for driving one scenario by hand."""
    built = LedgerMachine(World(app, database, connection, as_role))
    yield built
    built.teardown()


def audit(machine: LedgerMachine) -> list[str]:
    session = machine.database.session()
    try:
        return ledger_discrepancies(session)
    finally:
        session.close()


@pytest.mark.parametrize("where", ["staging bench", "van"])
def test_a_transfer_or_adjustment_cannot_take_a_packed_kits_units(
    machine: LedgerMachine, where: str
) -> None:
    """Once fixed: the units a kit picked are reserved on its bench (and in the van), so a
    transfer or a count cannot take them, and the kit still leaves and arrives whole."""
    [day] = machine._therapy(2, "supplies", [1])
    kit = machine._fulfil(day, 0, "packed", delivered=True, hours_back=0)
    assert isinstance(kit, int), kit
    view = machine.kit_view(kit)
    assert view["status"] == "packed", view
    [flush] = [line for line in view["lines"] if line["lot"]]
    place = machine.places["staging"]
    if where == "van":
        route = machine._route(kit, 0)
        dispatched = machine.warehouse.post(f"/routes/{route}/dispatch")
        assert dispatched.status_code == 200, dispatched.get_json()
        place = dispatched.get_json()["vehicle_location_id"]
    stock = machine.warehouse.get(
        "/stock", item_id=machine.flush["id"], location_id=place, lot=flush["lot"]
    ).get_json()["items"]
    assert [(row["on_hand"], row["reserved"], row["available"]) for row in stock] == [
        (flush["quantity"], flush["quantity"], 0)
    ]
    line = {"item_id": machine.flush["id"], "lot": flush["lot"], "quantity": flush["quantity"]}
    taken = machine.warehouse.post(
        "/transfers",
        {"lines": [{**line, "from_location_id": place, "to_location_id": machine.places["B"]}]},
    )
    assert "reserved" in problem(taken, 409)["detail"]
    counted = machine.warehouse.post(
        "/adjustments",
        {
            "reason": "lost",
            "lines": [
                {
                    "item_id": machine.flush["id"],
                    "lot": flush["lot"],
                    "location_id": place,
                    "quantity_delta": -1,
                }
            ],
        },
    )
    problem(counted, 409)
    assert audit(machine) == []
    if where == "van":  # and the kit is delivered whole
        assert machine._confirm(kit, delivered=True, hours_back=0)
        assert machine.kit_view(kit)["status"] == "delivered"
    else:  # or cancelled, its units back on their shelf and free
        cancelled = machine.warehouse.post(f"/kits/{kit}/cancel", {"reason": "model"})
        assert cancelled.status_code == 200, cancelled.get_json()
    assert audit(machine) == []


def delivered_pump(machine: LedgerMachine) -> tuple[int, str]:
    """A pump therapy's kit, delivered now: (kit id, the pump's serial)."""
    [day] = machine._therapy(2, "pump", [0])
    kit = machine._fulfil(day, 0, "confirmed", delivered=True, hours_back=0)
    assert isinstance(kit, int), kit
    view = machine.kit_view(kit)
    assert view["status"] == "delivered", view
    [pump] = [line for line in view["lines"] if line["serial"]]
    return kit, pump["serial"]


def return_pump(machine: LedgerMachine, kit: int, serial: str, occurred_at: datetime) -> Any:
    line = {"item_id": machine.pump["id"], "serial": serial, "quantity": 1, "condition": "opened"}
    body = {"occurred_at": occurred_at.isoformat(), "lines": [line]}
    return machine.keyed(machine.driver, f"/kits/{kit}/returns", body)


def test_a_return_dated_before_its_delivery_is_refused(machine: LedgerMachine) -> None:
    kit, serial = delivered_pump(machine)
    back = return_pump(machine, kit, serial, machine.now() - timedelta(days=2))
    body = problem(back, 422)
    assert "before" in str(body), body
    assert machine.kit_view(kit)["status"] == "delivered"
    # Dated at the delivery or after, it is booked.
    later = return_pump(machine, kit, serial, machine.now())
    assert later.status_code == 201, later.get_json()
    assert audit(machine) == []


def test_a_pump_at_a_patients_home_cannot_be_found_in_storage(machine: LedgerMachine) -> None:
    kit, serial = delivered_pump(machine)
    shelf = machine.places["A"]
    line = {"item_id": machine.pump["id"], "serial": serial, "location_id": shelf}
    found = machine.warehouse.post(
        "/adjustments", {"reason": "found", "lines": [{**line, "quantity_delta": 1}]}
    )
    assert "patient" in problem(found, 409)["detail"]
    # Its return brings it back, and the ledger agrees with itself.
    back = return_pump(machine, kit, serial, machine.now())
    assert back.status_code == 201, back.get_json()
    assert audit(machine) == []
