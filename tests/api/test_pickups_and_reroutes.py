"""Pick-up stops (collecting a delivered kit's pump and unused goods) and kits that change
driver after a failed stop: the earlier driver loses access."""

from __future__ import annotations

from typing import Any

import pytest

from inventory.users.models import Role
from tests.api.delivery_builders import Driver, Rounds, failed, flush, kit_serial, pump_of
from tests.api.kit_builders import Pharmacy
from tests.api.planning_builders import today
from tests.builders import Api, ok, problem

Body = dict[str, Any]


@pytest.fixture
def coordinator(as_role) -> Api:
    return as_role(Role.COORDINATOR)


@pytest.fixture
def rounds(catalog, coordinator, database, as_role) -> Rounds:
    return Rounds(Pharmacy.open(catalog, coordinator, database, pumps=3), as_role, database)


def pickup_route(rounds: Rounds, driver: Driver, *kits: Body) -> Body:
    body = {
        "driver_id": driver.id,
        "date": today().isoformat(),
        "kit_ids": [],
        "pickup_kit_ids": [kit["id"] for kit in kits],
    }
    return ok(rounds.warehouse.post("/routes", body), 201)


def delivered_kit(rounds: Rounds, driver: Driver) -> Body:
    kit = rounds.packed_kit()
    rounds.on_the_road(driver, kit)
    rounds.deliver(driver, kit)
    return rounds.kit(kit)


def test_a_pickup_stop_lists_what_is_still_at_the_patient_and_ends_with_the_return(rounds):
    alice, bob = rounds.driver(), rounds.driver()
    kit = delivered_kit(rounds, alice)
    route = pickup_route(rounds, bob, kit)
    stop = route["stops"][0]
    assert (stop["kind"], stop["status"], stop["kit_id"]) == ("pickup", "pending", kit["id"])
    serial = kit_serial(kit)
    at_home = {(item["serial"], item["quantity"]) for item in stop["items"]}
    assert (serial, 1) in at_home
    dispatched = ok(rounds.warehouse.post(f"/routes/{route['id']}/dispatch"))
    assert dispatched["status"] == "dispatched"
    # Dispatching a pick-up moves no stock: nothing has gone to Bob's van.
    dispatch_rows = ok(rounds.warehouse.get("/movements", type="dispatch"))["items"]
    assert dispatch_rows and all(
        row["to"]["location_id"] != bob.vehicle_id for row in dispatch_rows
    )
    # Bob now reaches the kit: he records the pump and 2 unopened flushes coming back.
    lines = [
        {"item_id": rounds.p.pump["id"], "serial": serial, "quantity": 1, "condition": "opened"},
        flush(rounds, 2, "unopened"),
    ]
    ok(rounds.give_back(bob, kit, lines), 201)
    after = ok(bob.api.get(f"/routes/{route['id']}"))
    assert after["stops"][0]["status"] == "collected"
    assert after["status"] == "completed"
    assert pump_of(rounds, kit)["status"] == "dirty"


def test_only_delivered_kits_can_be_pickups(rounds):
    alice = rounds.driver()
    packed = rounds.packed_kit()
    body = {
        "driver_id": alice.id,
        "date": today().isoformat(),
        "kit_ids": [],
        "pickup_kit_ids": [packed["id"]],
    }
    found = problem(rounds.warehouse.post("/routes", body), 409)
    assert "packed" in found["detail"]


def test_a_route_needs_at_least_one_stop(rounds):
    alice = rounds.driver()
    body = {"driver_id": alice.id, "date": today().isoformat(), "kit_ids": []}
    assert "kit_ids" in problem(rounds.warehouse.post("/routes", body), 422)["errors"]


def test_a_confirmation_is_not_accepted_on_a_pickup_stop(rounds):
    alice, bob = rounds.driver(), rounds.driver()
    kit = delivered_kit(rounds, alice)
    route = pickup_route(rounds, bob, kit)
    ok(rounds.warehouse.post(f"/routes/{route['id']}/dispatch"))
    found = problem(rounds.confirm(bob, kit, failed("refused")), 409)
    assert "delivered" in found["detail"]


def test_after_a_failed_stop_moves_to_another_driver_the_first_loses_the_kit(rounds):
    alice, bob = rounds.driver(), rounds.driver()
    kit = rounds.packed_kit()
    rounds.on_the_road(alice, kit)
    rounds.fail(alice, kit)
    assert ok(alice.api.get(f"/kits/{kit['id']}/delivery"))["items"]
    rounds.on_the_road(bob, kit)
    # Bob's van now carries it; Alice reaches none of it any more.
    problem(alice.api.get(f"/kits/{kit['id']}/delivery"), 404)
    problem(alice.api.get(f"/kits/{kit['id']}/returns"), 404)
    problem(
        rounds.confirm(
            alice,
            kit,
            {
                "outcome": "failed",
                "failure_reason": "refused",
                "occurred_at": today().isoformat() + "T12:00:00Z",
            },
        ),
        404,
    )
    rounds.deliver(bob, kit)
    problem(rounds.give_back(alice, kit, [flush(rounds, 1, "unopened")]), 404)
    ok(rounds.give_back(bob, kit, [flush(rounds, 1, "unopened")]), 201)
