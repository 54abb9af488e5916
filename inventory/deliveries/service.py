"""Routes: built from packed kits, dispatched onto the driver's vehicle through the ledger.

A driver reaches only their own routes and kits; anything else answers 404, so another
driver's stops are not even revealed to exist.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from inventory.auth import Caller
from inventory.care.models import Patient
from inventory.catalog.models import Item, Location, LocationKind
from inventory.db import utcnow
from inventory.deliveries.models import Route, RouteStatus, RouteStop, StopKind, StopStatus
from inventory.deliveries.returns import at_patient
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.kits import service as kits
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.models import (
    DocumentType,
    Lot,
    MovementType,
    ReservationStatus,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.service import Leg, lock_items, post_movements
from inventory.schemas import paginate
from inventory.users.models import Role, User
from inventory.web import check_etag, etag_of

ROUTABLE = (KitStatus.PACKED, KitStatus.FAILED)
COLLECTABLE = (KitStatus.DELIVERED, KitStatus.RETURNED)
OPEN_ROUTE = (RouteStatus.PLANNED, RouteStatus.DISPATCHED)


def etag(route: Route) -> str:
    return etag_of("route", route.id, route.version)


def is_driver(caller: Caller) -> bool:
    return caller.role is Role.DRIVER


def get_route(session: Session, caller: Caller, route_id: int) -> Route:
    """The route, or 404, also for a route of another driver."""
    route = session.get(Route, route_id)
    if route is None or (is_driver(caller) and route.driver_id != caller.user_id):
        raise NotFound(f"No route {route_id}.")
    return route


def current_stop(session: Session, kit_id: int) -> RouteStop | None:
    """The kit's delivery stop on its latest route."""
    return session.scalars(
        select(RouteStop)
        .where(RouteStop.kit_id == kit_id, RouteStop.kind == StopKind.DELIVERY)
        .order_by(RouteStop.id.desc())
        .limit(1)
        .options(selectinload(RouteStop.route))
    ).first()


def kit_for(session: Session, caller: Caller, kit_id: int) -> Kit:
    """A kit the caller may act on: for a driver, only one on their own routes (else 404)."""
    kit = session.get(Kit, kit_id)
    if kit is None:
        raise NotFound(f"No kit {kit_id}.")
    if is_driver(caller):
        # The kit's latest stop decides: once a kit moves to another driver's route (after a
        # failed stop, or for a pick-up), the earlier driver no longer reaches it.
        latest = session.scalars(
            select(Route.driver_id)
            .join(RouteStop, RouteStop.route_id == Route.id)
            .where(RouteStop.kit_id == kit.id)
            .order_by(RouteStop.id.desc())
            .limit(1)
        ).first()
        if latest != caller.user_id:
            raise NotFound(f"No kit {kit_id}.")
    return kit


# --- building ----------------------------------------------------------------------------------


def _driver(session: Session, driver_id: int) -> User:
    driver = session.get(User, driver_id)
    if driver is None or driver.role is not Role.DRIVER or not driver.active:
        raise InvalidInput.field("driver_id", f"no active driver {driver_id}")
    return driver


def create_route(
    session: Session,
    caller: Caller,
    driver_id: int,
    on: date,
    kit_ids: Sequence[int],
    today: date | None = None,
    pickup_kit_ids: Sequence[int] = (),
) -> Route:
    """A route for a driver and a date: packed (or earlier failed) kits, in stop order, then
    pick-up stops at patients whose delivered kits have equipment or goods to collect."""
    today = today or utcnow().date()
    driver = _driver(session, driver_id)
    if on < today:
        raise InvalidInput.field("date", "a route cannot be planned in the past")
    if len(set(kit_ids) | set(pickup_kit_ids)) != len(kit_ids) + len(pickup_kit_ids):
        raise InvalidInput.field("kit_ids", "lists a kit twice")
    every_kit = [*kit_ids, *pickup_kit_ids]
    found = {
        kit.id: kit
        for kit in session.scalars(
            select(Kit)
            .where(Kit.id.in_(every_kit))
            .order_by(Kit.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    }
    for field, ids in (("kit_ids", kit_ids), ("pickup_kit_ids", pickup_kit_ids)):
        unknown = [kit_id for kit_id in ids if kit_id not in found]
        if unknown:
            raise InvalidInput.field(field, f"no kits {unknown}")
    not_ready = [
        {"kit_id": kit_id, "status": found[kit_id].status.value}
        for kit_id in kit_ids
        if found[kit_id].status not in ROUTABLE
    ] + [
        {"kit_id": kit_id, "status": found[kit_id].status.value}
        for kit_id in pickup_kit_ids
        if found[kit_id].status not in COLLECTABLE
    ]
    if not_ready:
        raise Conflict(
            "Only packed kits (or kits whose delivery failed) go on a route, and only delivered "
            "ones as pick-ups: "
            + ", ".join(f"kit {k['kit_id']} is {k['status']}" for k in not_ready),
            extra={"kits": not_ready},
        )
    routed = session.scalars(
        select(RouteStop.kit_id)
        .join(Route, RouteStop.route_id == Route.id)
        .where(
            RouteStop.kit_id.in_(every_kit),
            RouteStop.status == StopStatus.PENDING,
            Route.status.in_(OPEN_ROUTE),
        )
    ).all()
    if routed:
        raise Conflict(
            f"Kits {sorted(routed)} are already on an open route.",
            extra={"kit_ids": sorted(routed)},
        )
    sites = {kit.site for kit in found.values()}
    if len(sites) > 1:
        raise InvalidInput.field("kit_ids", "a route's kits belong to one site")
    site = sites.pop()
    if driver.site is not None and driver.site != site:
        raise InvalidInput.field("driver_id", f"the driver works at site {driver.site}")
    route = Route(
        site=site,
        driver_id=driver.id,
        date=on,
        status=RouteStatus.PLANNED,
        created_by=caller.user_id,
    )
    session.add(route)
    session.flush()
    kinds = [StopKind.DELIVERY] * len(kit_ids) + [StopKind.PICKUP] * len(pickup_kit_ids)
    session.add_all(
        RouteStop(
            route_id=route.id,
            kit_id=kit_id,
            sequence=number,
            status=StopStatus.PENDING,
            kind=kind,
        )
        for number, (kit_id, kind) in enumerate(zip(every_kit, kinds, strict=True), start=1)
    )
    session.flush()
    return route


# --- dispatch ----------------------------------------------------------------------------------


def vehicle_of(session: Session, driver: User) -> Location:
    if driver.vehicle_location_id is None:
        raise Conflict(
            f"Driver {driver.id} has no vehicle location; assign one (PATCH /drivers/{driver.id})."
        )
    vehicle = session.get(Location, driver.vehicle_location_id)
    assert vehicle is not None
    return vehicle


def dispatch(session: Session, caller: Caller, route: Route, if_match: str | None = None) -> Route:
    """Kits → dispatched; their units move from staging (or another vehicle) to the driver's."""
    kit_ids = [stop.kit_id for stop in route.stops if stop.kind is StopKind.DELIVERY]
    item_ids: set[int] = set()
    for kit_id in kit_ids:
        item_ids.update(kits.held_item_ids(session, kit_id))
    lock_items(session, sorted(item_ids))
    route = session.scalars(
        select(Route)
        .where(Route.id == route.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    check_etag(if_match, etag(route))
    if route.status is not RouteStatus.PLANNED:
        raise Conflict(
            f"Route {route.id} is {route.status.value}; only a planned route is dispatched."
        )
    vehicle = vehicle_of(session, route.driver)
    if vehicle.site != route.site:
        raise Conflict(f"The driver's vehicle {vehicle.code} belongs to another site.")
    locked = {
        kit.id: kit
        for kit in session.scalars(
            select(Kit)
            .where(Kit.id.in_(kit_ids))
            .order_by(Kit.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    }
    not_ready = [kit_id for kit_id in kit_ids if locked[kit_id].status not in ROUTABLE]
    if not_ready:
        raise Conflict(f"Kits {not_ready} are no longer packed; take them off the route first.")
    now = utcnow()
    for kit_id in kit_ids:  # one document per kit, so the kit's ledger reads in one query
        kit = locked[kit_id]
        source = kit.vehicle_location or kit.staging_location
        assert source is not None
        legs = [
            Leg(
                r.item,
                r.quantity,
                source,
                vehicle,
                lot=r.lot,
                serial_unit=r.serial_unit,
                held=True,
                stays_held=True,
            )
            for r in kits.kit_reservations(session, kit.id)
            if r.status is ReservationStatus.PICKED
        ]
        if legs and source.id != vehicle.id:
            document = StockDocument(
                type=DocumentType.DISPATCH,
                site=route.site,
                reference=f"route {route.id} {kit.number}",
                reason="dispatched",
                actor_id=caller.user_id,
                kit_id=kit.id,
                occurred_at=now,
                recorded_at=now,
            )
            session.add(document)
            post_movements(session, document, MovementType.DISPATCH, legs)
        kit.status = KitStatus.DISPATCHED
        kit.vehicle_location_id = vehicle.id
        kits.touch(kit)
    route.status = RouteStatus.DISPATCHED
    route.dispatched_at = now
    route.vehicle_location_id = vehicle.id
    session.flush()
    return route


def complete_if_done(route: Route) -> None:
    if all(stop.status is not StopStatus.PENDING for stop in route.stops):
        route.status = RouteStatus.COMPLETED
        route.completed_at = utcnow()


# --- reading -----------------------------------------------------------------------------------


def list_routes(session: Session, caller: Caller, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Route)
    if is_driver(caller):
        query = query.where(Route.driver_id == caller.user_id)
    elif args.get("driver_id") is not None:
        query = query.where(Route.driver_id == args["driver_id"])
    for name in ("date", "status", "site"):
        if args.get(name) is not None:
            query = query.where(getattr(Route, name) == args[name])
    page = paginate(session, query, Route.id, args)
    page["items"] = [route_summary(route) for route in page["items"]]
    return page


def route_summary(route: Route) -> dict[str, Any]:
    return {
        "id": route.id,
        "site": route.site,
        "driver_id": route.driver_id,
        "date": route.date,
        "status": route.status,
        "vehicle_location_id": route.vehicle_location_id,
        "dispatched_at": route.dispatched_at,
        "completed_at": route.completed_at,
        "stop_count": len(route.stops),
        "version": route.version,
    }


def route_view(session: Session, route: Route) -> dict[str, Any]:
    """The route with its stops: each the delivery address, the kit number and the items to
    hand over. Nothing else about the patient: not the name, not the phone."""
    stops = []
    for stop in route.stops:
        kit = stop.kit
        patient = session.get(Patient, kit.patient_id)
        assert patient is not None
        stops.append(
            {
                "sequence": stop.sequence,
                "kind": stop.kind,
                "kit_id": kit.id,
                "kit_number": kit.number,
                "kit_status": kit.status,
                "status": stop.status,
                "address": {
                    "line1": patient.address_line1,
                    "line2": patient.address_line2,
                    "city": patient.city,
                    "state": patient.state,
                    "postal_code": patient.postal_code,
                },
                "items": _to_collect(session, kit)
                if stop.kind is StopKind.PICKUP
                else [
                    {
                        "item_id": line["item_id"],
                        "sku": line["sku"],
                        "name": line["name"],
                        "lot": line["lot"],
                        "serial": line["serial"],
                        "quantity": line["quantity"],
                        "unit": line["unit"],
                    }
                    for line in kits.lines(kits.kit_reservations(session, kit.id))
                ],
            }
        )
    return {**route_summary(route), "stops": stops}


def _to_collect(session: Session, kit: Kit) -> list[dict[str, Any]]:
    """What of a delivered kit is still at the patient: the equipment to bring back first."""
    delivered, back = at_patient(session, kit)
    rows = []
    for (item_id, lot_id, unit_id), chunks in delivered.items():
        left = sum(chunk.quantity for chunk in chunks) - back[(item_id, lot_id, unit_id)]
        if left <= 0:
            continue
        item = session.get(Item, item_id)
        lot = session.get(Lot, lot_id) if lot_id else None
        unit = session.get(SerialUnit, unit_id) if unit_id else None
        assert item is not None
        rows.append(
            {
                "item_id": item.id,
                "sku": item.sku,
                "name": item.name,
                "lot": lot.lot_number if lot else None,
                "serial": unit.serial if unit else None,
                "quantity": left,
                "unit": item.unit,
            }
        )
    return sorted(rows, key=lambda row: (row["serial"] is None, row["sku"], row["lot"] or ""))


# --- drivers and their vehicles ----------------------------------------------------------------


def list_drivers(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(User).where(User.role == Role.DRIVER)
    if args.get("site") is not None:
        query = query.where(User.site == args["site"])
    page = paginate(session, query, User.id, args)
    page["items"] = [driver_view(user) for user in page["items"]]
    return page


def driver_view(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "name": user.name,
        "site": user.site,
        "active": user.active,
        "vehicle_location_id": user.vehicle_location_id,
        "version": user.version,
    }


def get_driver(session: Session, driver_id: int) -> User:
    user = session.get(User, driver_id)
    if user is None or user.role is not Role.DRIVER:
        raise NotFound(f"No driver {driver_id}.")
    return user


def assign_vehicle(session: Session, driver: User, location_id: int) -> User:
    location = session.get(Location, location_id)
    if location is None or location.kind is not LocationKind.VEHICLE:
        raise InvalidInput.field("vehicle_location_id", f"location {location_id} is not a vehicle")
    if driver.site is not None and location.site != driver.site:
        raise InvalidInput.field("vehicle_location_id", f"the driver works at site {driver.site}")
    driver.vehicle_location_id = location.id
    session.flush()
    return driver
