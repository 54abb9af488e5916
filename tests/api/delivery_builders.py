"""Routes, drivers and doorstep confirmations on top of kit_builders.Pharmacy.

    rounds = Rounds(pharmacy, as_role, database)
    driver = rounds.driver()                          # site SITE1, with a vehicle of their own
    kit = rounds.packed_kit()                         # a new patient, days in 1 and 2 days
    route = rounds.on_the_road(driver, kit)           # routed and dispatched
    ok(rounds.confirm(driver, kit, delivered()), 201)

Reading back: ``flows`` (the ledger summed per type, item, lot, serial, from and to), ``legs``
(what moving a whole kit looks like in those terms), ``on_hand_at`` (stock at a location),
``untouched`` (everything a refused request must leave alone). Return lines: ``flush``,
``gloves``.

Signatures are real PNGs made with Pillow; ``noisy_png()`` is a valid PNG just over 200 kB
whose base64 still fits under the 300,000 characters the schema lets through.
"""

from __future__ import annotations

import base64
import io
import os
import uuid
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from PIL import Image
from sqlalchemy import select
from werkzeug.test import TestResponse

from inventory.care.models import Patient
from inventory.db import Database
from inventory.deliveries.models import Route
from inventory.users.models import Role
from tests.api.kit_builders import Pharmacy
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import make_patient, make_payer, today
from tests.builders import Api, ok

Body = dict[str, Any]

MAX_SIGNATURE_BYTES = 200 * 1024
MAX_SIGNATURE_TEXT = 300_000
NEW_KEY = "new"  # confirm(..., key=NEW_KEY): a fresh Idempotency-Key; key=None: no header


# --- signatures --------------------------------------------------------------------------------


def png(width: int = 300, height: int = 100) -> bytes:
    """A blank white signature pad, as a PNG."""
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG")
    return out.getvalue()


def noisy_png(width: int = 460, height: int = 460) -> bytes:
    """A valid PNG of random noise (it does not compress): about width x height bytes."""
    image = Image.frombytes("L", (width, height), os.urandom(width * height))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def jpeg(width: int = 300, height: int = 100) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="JPEG")
    return out.getvalue()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- request bodies ----------------------------------------------------------------------------


def moment(**delta: float) -> str:
    """Now (UTC) shifted by ``delta`` (timedelta keywords), ISO 8601 with an offset."""
    return (datetime.now(UTC) + timedelta(**delta)).isoformat()


def delivered(**overrides: Any) -> Body:
    body: Body = {
        "outcome": "delivered",
        "occurred_at": moment(),
        "recipient_name": "Signed By Spouse",
        "relationship": "spouse",
        "signature": b64(png()),
    }
    return {**body, **overrides}


def failed(reason: str = "not_home", **overrides: Any) -> Body:
    body: Body = {"outcome": "failed", "occurred_at": moment(), "failure_reason": reason}
    return {**body, **overrides}


# --- ledger views ------------------------------------------------------------------------------


def endpoint(side: Body) -> int | str:
    """A movement's from/to: the location id, or the ledger endpoint (patient, disposal...)."""
    return side["location_id"] if side["type"] == "location" else side["type"]


Flow = tuple[str, int, str | None, str | None, int | str, int | str]


def flows(api: Api, **filters: Any) -> dict[Flow, int]:
    """{(type, item_id, lot, serial, from, to): quantity} of the movements, summed: how much
    went where, however the service splits it into rows."""
    totals: dict[Flow, int] = defaultdict(int)
    for m in all_pages(api, "/movements", **filters):
        source, target = endpoint(m["from"]), endpoint(m["to"])
        totals[(m["type"], m["item_id"], m["lot"], m["serial"], source, target)] += m["quantity"]
    return dict(totals)


def legs(kit: Body, kind: str, source: int | str, target: int | str) -> dict[Flow, int]:
    """The flows moving the whole kit from ``source`` to ``target`` as ``kind`` movements."""
    totals: dict[Flow, int] = defaultdict(int)
    for line in kit["lines"]:
        key = (kind, line["item_id"], line["lot"], line["serial"], source, target)
        totals[key] += line["quantity"]
    return dict(totals)


def load(kit: Body) -> dict[tuple[int, str | None], int]:
    """{(item_id, lot): quantity} of the kit: what a location holding only it shows on hand."""
    totals: dict[tuple[int, str | None], int] = defaultdict(int)
    for line in kit["lines"]:
        totals[(line["item_id"], line["lot"])] += line["quantity"]
    return dict(totals)


def on_hand_at(api: Api, location_id: int) -> dict[tuple[int, str | None], int]:
    """{(item_id, lot): on_hand} at a location, non-zero rows only."""
    rows = all_pages(api, "/stock", location_id=location_id)
    return {(r["item_id"], r["lot"]): r["on_hand"] for r in rows if r["on_hand"]}


def unit(api: Api, item_id: int, serial: str) -> Body:
    """The equipment row of a serial unit."""
    [row] = [u for u in all_pages(api, "/equipment", item_id=item_id) if u["serial"] == serial]
    return row


def kit_serial(kit: Body) -> str:
    [serial] = [line["serial"] for line in kit["lines"] if line["serial"]]
    return serial


def kit_lot(kit: Body, item_id: int) -> str:
    [lot] = {line["lot"] for line in kit["lines"] if line["item_id"] == item_id}
    return lot


# --- the scenario ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Driver:
    api: Api
    id: int
    vehicle_id: int | None


@dataclass
class Rounds:
    """Drivers, kits for their own patients, routes and confirmations, over one Pharmacy."""

    p: Pharmacy
    as_role: Callable[..., Api]
    database: Database

    @property
    def warehouse(self) -> Api:
        return self.p.warehouse

    def driver(self, site: str | None = "SITE1") -> Driver:
        """A driver; one with a site gets a vehicle location of their own."""
        api = self.as_role(Role.DRIVER, **({"site": site} if site else {}))
        me = ok(api.get("/me"))
        return Driver(api, me["id"], me["vehicle_location_id"])

    def patient(self, name: str = "Test Patient", phone: str | None = None) -> int:
        patient_id = make_patient(self.database, make_payer(self.database))
        session = self.database.session()
        try:
            row = session.scalars(select(Patient).where(Patient.id == patient_id)).one()
            row.name = name
            row.phone = phone
            session.commit()
        finally:
            session.close()
        return patient_id

    def packed_kit(self, *offsets: int, patient_id: int | None = None) -> Body:
        """A packed kit (in staging) for a new patient, for days ``offsets`` (1 and 2) ahead."""
        patient_id = patient_id or self.patient()
        _, days = self.p.therapy(*(offsets or (1, 2)), patient_id=patient_id)
        self.p.plan()
        kit = self.p.build(days, patient_id=patient_id)
        self.p.scan_all(kit)
        return self.p.pack(kit)

    def backdate_dispatch(self, route: Body, **delta: float) -> datetime:
        """Pretend the route left ``delta`` ago (a driver confirming a stop offline and syncing
        later): no endpoint sets the dispatch time, so it is set in the database."""
        when = datetime.now(UTC) - timedelta(**delta)
        session = self.database.session()
        try:
            row = session.scalars(select(Route).where(Route.id == route["id"])).one()
            row.dispatched_at = when
            session.commit()
        finally:
            session.close()
        return when

    def kit(self, kit: Body) -> Body:
        return ok(self.warehouse.get(f"/kits/{kit['id']}"))

    def route_response(
        self, driver: Driver, *kits: Body, on: date | None = None, api: Api | None = None
    ) -> TestResponse:
        body = {
            "driver_id": driver.id,
            "date": (on or today()).isoformat(),
            "kit_ids": [kit["id"] for kit in kits],
        }
        return (api or self.warehouse).post("/routes", body)

    def route(self, driver: Driver, *kits: Body, on: date | None = None) -> Body:
        return ok(self.route_response(driver, *kits, on=on), 201)

    def dispatch(self, route: Body) -> Body:
        return ok(self.warehouse.post(f"/routes/{route['id']}/dispatch"))

    def on_the_road(self, driver: Driver, *kits: Body) -> Body:
        """Route the kits for the driver today and dispatch them; the dispatched route."""
        return self.dispatch(self.route(driver, *kits))

    def confirm(
        self, driver: Driver | Api, kit: Body, body: Body, key: str | None = NEW_KEY
    ) -> TestResponse:
        """POST /kits/{id}/delivery as the driver (or any Api)."""
        return _post_keyed(driver, f"/kits/{kit['id']}/delivery", body, key)

    def deliver(self, driver: Driver, kit: Body, **overrides: Any) -> Body:
        return ok(self.confirm(driver, kit, delivered(**overrides)), 201)

    def fail(self, driver: Driver, kit: Body, reason: str = "not_home") -> Body:
        return ok(self.confirm(driver, kit, failed(reason)), 201)

    def give_back(
        self,
        driver: Driver | Api,
        kit: Body,
        lines: list[Body],
        sharps_containers: int = 0,
        key: str | None = NEW_KEY,
    ) -> TestResponse:
        """POST /kits/{id}/returns as the driver (or any Api)."""
        body = {"lines": lines, "sharps_containers": sharps_containers}
        return _post_keyed(driver, f"/kits/{kit['id']}/returns", body, key)

    def reverse(self, kit: Body, reason: str = "confirmed at the wrong door") -> TestResponse:
        return self.warehouse.post(f"/kits/{kit['id']}/delivery/reversal", {"reason": reason})


def _post_keyed(who: Driver | Api, path: str, body: Body, key: str | None) -> TestResponse:
    api = who.api if isinstance(who, Driver) else who
    headers = {}
    if key is not None:
        headers["Idempotency-Key"] = uuid.uuid4().hex if key == NEW_KEY else key
    return api.post(path, body, headers=headers)


# --- reading back, and return lines --------------------------------------------------------


def deliveries(api: Api, kit: Body) -> list[Body]:
    return ok(api.get(f"/kits/{kit['id']}/delivery"))["items"]


def day_statuses(rounds: Rounds, kit: Body) -> list[str]:
    return [day["status"] for day in rounds.kit(kit)["infusion_days"]]


def pump_of(rounds: Rounds, kit: Body) -> Body:
    return unit(rounds.warehouse, rounds.p.pump["id"], kit_serial(kit))


def history(rounds: Rounds, kit: Body) -> Body:
    return ok(rounds.warehouse.get(f"/equipment/{pump_of(rounds, kit)['id']}/history"))


def untouched(rounds: Rounds, kit: Body) -> tuple[Any, ...]:
    """What a refused confirmation or return must leave alone: the kit, its deliveries and
    returns, every movement, stock row and equipment unit."""
    w = rounds.warehouse
    return (
        rounds.kit(kit),
        deliveries(w, kit),
        ok(w.get(f"/kits/{kit['id']}/returns"))["items"],
        all_pages(w, "/movements"),
        all_pages(w, "/stock"),
        all_pages(w, "/equipment"),
    )


def route_ids(api: Api, **params: Any) -> list[int]:
    return [route["id"] for route in all_pages(api, "/routes", **params)]


def flush(rounds: Rounds, quantity: int, condition: str) -> Body:
    """A return line of the Pharmacy's flush, lot A."""
    p = rounds.p
    return {
        "item_id": p.flush["id"],
        "lot": p.lots["A"],
        "quantity": quantity,
        "condition": condition,
    }


def gloves(rounds: Rounds, quantity: int, condition: str) -> Body:
    return {"item_id": rounds.p.gloves["id"], "quantity": quantity, "condition": condition}
