"""A driver's phone retrying or double-sending a delivery or a return never delivers twice nor
counts a return twice, on PostgreSQL and on SQLite.

The kit is built, packed, routed and dispatched through the HTTP API on a committed scratch
database: a lot-tracked flush (five units for a one-day therapy), a staging bench, a
quarantine area and a driver whose vehicle comes with the user. Concurrent requests are
threads with one Flask client each, released together by a barrier.
"""

from __future__ import annotations

import base64
import io
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from inventory import create_app
from inventory.db import Database
from inventory.deliveries.models import Delivery, KitReturn, Signature
from inventory.idempotency import IdempotencyRecord
from inventory.ledger.audit import ledger_discrepancies
from inventory.ledger.models import Movement, MovementType, StockDocument
from inventory.users.models import Role
from tests.api.care_builders import kit_for_tomorrow
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import today
from tests.builders import Api, Catalog, ok, token_for, unique

FLUSHES = 5  # the kit holds five flushes of one lot
COPIES = 10
Body = dict[str, Any]


@dataclass(frozen=True)
class Reply:
    status: int
    body: Body
    replayed: bool


# --- helpers -----------------------------------------------------------------------------------


def _race(app: Flask, count: int, request: Callable[[Any, int], Reply]) -> list[Reply]:
    """Run ``request(client, index)`` in ``count`` threads released together; each thread
    has its own Flask client. An exception in a thread fails the test with its message."""
    barrier = threading.Barrier(count)
    results: list[Reply | None] = [None] * count
    errors: list[BaseException] = []

    def run(index: int) -> None:
        client = app.test_client()
        try:
            barrier.wait(timeout=60)
            results[index] = request(client, index)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    assert all(result is not None for result in results), "a request thread did not finish"
    return [result for result in results if result is not None]


def signature_png() -> str:
    """A recipient's signature as the phone sends it: a PNG, base64."""
    image = Image.new("L", (300, 100), "white")
    ImageDraw.Draw(image).line([(10, 80), (90, 15), (170, 85), (290, 20)], fill="black", width=3)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def delivery_body() -> Body:
    return {
        "outcome": "delivered",
        "occurred_at": datetime.now(UTC).isoformat(),
        "recipient_name": "Front door recipient",
        "relationship": "spouse",
        "signature": signature_png(),
        "latitude": "30.267153",
        "longitude": "-97.743057",
    }


@dataclass
class Doorstep:
    """One kit on a dispatched route, in the van of a driver who is at the patient's door."""

    app: Flask
    database: Database
    warehouse: Api
    driver: Api
    driver_id: int
    vehicle_id: int
    flush: Body
    lot: str
    shelf: Body
    staging: Body
    quarantine: Body
    kit: Body
    route: Body

    def post(self, client: Any, path: str, body: Body, key: str) -> Reply:
        response = client.post(
            f"/api/v1{path}",
            json=body,
            headers={"Authorization": f"Bearer {self.driver.token}", "Idempotency-Key": key},
        )
        return Reply(
            response.status_code,
            response.get_json(),
            response.headers.get("Idempotent-Replayed") == "true",
        )

    def deliver(self, client: Any, body: Body, key: str) -> Reply:
        return self.post(client, f"/kits/{self.kit['id']}/delivery", body, key)

    def give_back(self, client: Any, body: Body, key: str) -> Reply:
        return self.post(client, f"/kits/{self.kit['id']}/returns", body, key)

    def status(self) -> str:
        return str(ok(self.warehouse.get(f"/kits/{self.kit['id']}"))["status"])

    def movements(self, kind: str) -> list[Body]:
        return all_pages(self.warehouse, "/movements", kit_id=self.kit["id"], type=kind)

    def on_hand(self, location: Body | int) -> int:
        location_id = location if isinstance(location, int) else location["id"]
        rows = all_pages(
            self.warehouse, "/stock", item_id=self.flush["id"], location_id=location_id
        )
        return sum(row["on_hand"] for row in rows)

    def count(self, model: Any, *where: Any) -> int:
        with self.database.transaction() as session:
            return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def open_doorstep(database: Database) -> Doorstep:
    app = create_app(database.settings, database=database, TESTING=True)
    warehouse = Api(app.test_client(), token_for(database, Role.WAREHOUSE))
    coordinator = Api(app.test_client(), token_for(database, Role.COORDINATOR))
    admin = Api(app.test_client(), token_for(database, Role.ADMIN))
    catalog = Catalog(warehouse, app)
    shelf = catalog.location(kind="storage", code=unique("A-01"))
    staging = catalog.location(kind="staging")
    quarantine = catalog.location(kind="quarantine")
    flush = catalog.item(tracking="lot", category="flush")
    lot = unique("LOT")
    catalog.receive(
        flush, shelf, 20, unit_cost="0.5000", lot=lot, expiry=today() + timedelta(days=200)
    )
    _, kit = kit_for_tomorrow(coordinator, warehouse, [(flush["id"], FLUSHES)])
    scanned = ok(
        warehouse.post(
            f"/kits/{kit['id']}/scans",
            {"item_id": flush["id"], "lot": lot, "quantity": FLUSHES},
        )
    )
    assert scanned["kit"]["complete"] is True, scanned
    assert ok(warehouse.post(f"/kits/{kit['id']}/pack"))["status"] == "packed"
    driver = ok(
        admin.post("/users", {"name": unique("Driver"), "role": "driver", "site": "SITE1"}), 201
    )
    assert driver["vehicle_location_id"] is not None, driver
    secret = ok(admin.post(f"/users/{driver['id']}/tokens", {}), 201)["token"]
    route = ok(
        warehouse.post(
            "/routes",
            {"driver_id": driver["id"], "date": today().isoformat(), "kit_ids": [kit["id"]]},
        ),
        201,
    )
    route = ok(warehouse.post(f"/routes/{route['id']}/dispatch"))
    assert route["status"] == "dispatched", route
    doorstep = Doorstep(
        app,
        database,
        warehouse,
        Api(app.test_client(), secret),
        driver["id"],
        driver["vehicle_location_id"],
        flush,
        lot,
        shelf,
        staging,
        quarantine,
        kit,
        route,
    )
    assert doorstep.status() == "dispatched"
    assert doorstep.on_hand(doorstep.vehicle_id) == FLUSHES
    return doorstep


def assert_delivered_once(doorstep: Doorstep) -> None:
    """One confirmation, one signature, one delivery document: five units van → patient."""
    assert doorstep.status() == "delivered"
    confirmations = ok(doorstep.warehouse.get(f"/kits/{doorstep.kit['id']}/delivery"))["items"]
    assert [(c["outcome"], c["reversed"]) for c in confirmations] == [("delivered", False)]
    moved = doorstep.movements("delivery")
    assert len({m["document_id"] for m in moved}) == 1, moved
    assert [
        (m["lot"], m["quantity"], m["from"]["location_id"], m["to"]["type"]) for m in moved
    ] == [(doorstep.lot, FLUSHES, doorstep.vehicle_id, "patient")]
    assert doorstep.on_hand(doorstep.vehicle_id) == 0
    kit_id = doorstep.kit["id"]
    assert doorstep.count(Delivery, Delivery.kit_id == kit_id) == 1
    assert doorstep.count(Signature) == 1
    assert (
        doorstep.count(
            StockDocument, StockDocument.kit_id == kit_id, StockDocument.type == "delivery"
        )
        == 1
    )
    assert (
        doorstep.count(
            Movement,
            Movement.type == MovementType.DELIVERY,
            Movement.item_id == doorstep.flush["id"],
        )
        == 1
    )
    route = ok(doorstep.warehouse.get(f"/routes/{doorstep.route['id']}"))
    assert route["status"] == "completed"
    assert [stop["status"] for stop in route["stops"]] == ["delivered"]
    assert_ledger_consistent(doorstep)


def assert_ledger_consistent(doorstep: Doorstep) -> None:
    with doorstep.database.transaction() as session:
        assert ledger_discrepancies(session) == []


@pytest.fixture
def doorstep(scratch: Database) -> Doorstep:
    return open_doorstep(scratch)


# --- delivery ----------------------------------------------------------------------------------


def test_ten_copies_of_one_confirmation_with_one_key_deliver_once_and_all_answer_alike(
    doorstep: Doorstep,
):
    body = delivery_body()

    replies = _race(
        doorstep.app, COPIES, lambda client, _: doorstep.deliver(client, body, "pod-kit-1")
    )

    assert Counter(reply.status for reply in replies) == {201: COPIES}, replies
    first = replies[0].body
    assert first["outcome"] == "delivered"
    assert first["kit_id"] == doorstep.kit["id"]
    assert first["has_signature"] is True
    assert all(reply.body == first for reply in replies), [r.body for r in replies]
    # One copy did the work; every copy that lost the race answered with its stored response.
    assert Counter(reply.replayed for reply in replies) == {False: 1, True: COPIES - 1}
    assert_delivered_once(doorstep)
    assert (
        doorstep.count(
            IdempotencyRecord,
            IdempotencyRecord.user_id == doorstep.driver_id,
            IdempotencyRecord.key == "pod-kit-1",
        )
        == 1
    )
    # A later retry of the same request is still a replay, not a second delivery.
    retry = doorstep.deliver(doorstep.app.test_client(), body, "pod-kit-1")
    assert (retry.status, retry.replayed, retry.body) == (201, True, first)
    assert_delivered_once(doorstep)


def test_ten_confirmations_with_different_keys_deliver_once_and_refuse_the_rest(
    doorstep: Doorstep,
):
    body = delivery_body()

    replies = _race(
        doorstep.app, COPIES, lambda client, i: doorstep.deliver(client, body, f"pod-{i}")
    )

    assert Counter(reply.status for reply in replies) == {201: 1, 409: COPIES - 1}, replies
    assert not any(reply.replayed for reply in replies)
    refusals = [reply.body for reply in replies if reply.status == 409]
    assert all(refusal["status"] == 409 for refusal in refusals), refusals
    assert all("delivered" in refusal["detail"] for refusal in refusals), refusals
    assert_delivered_once(doorstep)
    # Only the confirmation that took effect keeps its key; refusals are not stored.
    assert doorstep.count(IdempotencyRecord, IdempotencyRecord.user_id == doorstep.driver_id) == 1


# --- returns -----------------------------------------------------------------------------------


def _delivered(doorstep: Doorstep) -> None:
    reply = doorstep.deliver(doorstep.app.test_client(), delivery_body(), "pod")
    assert reply.status == 201, reply
    assert doorstep.status() == "delivered"


def _returned_once(doorstep: Doorstep, units: int, documents: int) -> None:
    moved = doorstep.movements("return")
    assert len({m["document_id"] for m in moved}) == documents, moved
    assert sum(m["quantity"] for m in moved) == units
    assert {(m["lot"], m["from"]["type"], m["to"]["location_id"]) for m in moved} == {
        (doorstep.lot, "patient", doorstep.quarantine["id"])
    }
    assert doorstep.on_hand(doorstep.quarantine) == units
    assert doorstep.count(KitReturn, KitReturn.kit_id == doorstep.kit["id"]) == documents
    assert doorstep.status() == "returned"
    assert_ledger_consistent(doorstep)


def test_ten_copies_of_one_return_with_one_key_count_the_returned_units_once(
    doorstep: Doorstep,
):
    _delivered(doorstep)
    body = {
        "lines": [
            {
                "item_id": doorstep.flush["id"],
                "lot": doorstep.lot,
                "quantity": 2,
                "condition": "unopened",
            }
        ],
        "sharps_containers": 1,
    }

    replies = _race(
        doorstep.app, COPIES, lambda client, _: doorstep.give_back(client, body, "back-kit-1")
    )

    assert Counter(reply.status for reply in replies) == {201: COPIES}, replies
    first = replies[0].body
    assert all(reply.body == first for reply in replies), [r.body for r in replies]
    assert Counter(reply.replayed for reply in replies) == {False: 1, True: COPIES - 1}
    assert [(line["quantity"], line["disposition"]) for line in first["lines"]] == [
        (2, "quarantine")
    ]
    assert first["credit_value"] == "1.0000"  # 2 x 0.5000, at the delivered cost
    assert first["sharps_containers"] == 1
    _returned_once(doorstep, units=2, documents=1)
    listed = ok(doorstep.warehouse.get(f"/kits/{doorstep.kit['id']}/returns"))["items"]
    assert [r["id"] for r in listed] == [first["id"]]
    # Three flushes are still at the patient: returning four more is refused.
    more = dict(body, lines=[dict(body["lines"][0], quantity=4)])
    refused = doorstep.give_back(doorstep.app.test_client(), more, "back-kit-2")
    assert refused.status == 409, refused
    assert "only 3 remain" in refused.body["detail"]


def test_ten_returns_with_different_keys_never_take_back_more_than_was_delivered(
    doorstep: Doorstep,
):
    _delivered(doorstep)
    body = {
        "lines": [
            {
                "item_id": doorstep.flush["id"],
                "lot": doorstep.lot,
                "quantity": 2,
                "condition": "unopened",
            }
        ]
    }

    replies = _race(
        doorstep.app, COPIES, lambda client, i: doorstep.give_back(client, body, f"back-{i}")
    )

    winners = FLUSHES // 2
    assert Counter(reply.status for reply in replies) == {201: winners, 409: COPIES - winners}
    assert all("remain" in reply.body["detail"] for reply in replies if reply.status == 409), (
        replies
    )
    _returned_once(doorstep, units=2 * winners, documents=winners)
