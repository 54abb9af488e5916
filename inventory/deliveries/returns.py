"""Goods coming back from a patient: unopened to quarantine, the rest to waste, equipment to
cleaning. Every unit is valued at what it cost when it was delivered, for finance."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.auth import Caller
from inventory.catalog.models import Item, Location, LocationKind, Tracking
from inventory.db import utcnow
from inventory.deliveries.models import (
    Condition,
    Delivery,
    Disposition,
    KitReturn,
    KitReturnLine,
    Outcome,
    Route,
    RouteStatus,
    RouteStop,
    StopKind,
    StopStatus,
)
from inventory.deliveries.rules import FUTURE_TOLERANCE, CostChunk, disposition, take_back, value
from inventory.equipment.service import record_event
from inventory.errors import Conflict, InvalidInput
from inventory.kits import service as kits
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.models import (
    DocumentType,
    EquipmentStatus,
    Lot,
    Movement,
    MovementType,
    Party,
    Reservation,
    ReservationStatus,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.service import Leg, lock_items, post_movements, release

Key = tuple[int, int | None, int | None]  # item, lot, serial unit


def at_patient(session: Session, kit: Kit) -> tuple[dict[Key, list[CostChunk]], dict[Key, int]]:
    """Per item/lot/serial: the chunks the kit's documents handed to the patient (net of
    reversals, in order), and how many came back already."""
    rows = session.execute(
        select(Movement)
        .join(StockDocument, Movement.document_id == StockDocument.id)
        .where(StockDocument.kit_id == kit.id)
        .order_by(Movement.id)
    ).scalars()
    delivered: dict[Key, list[CostChunk]] = defaultdict(list)
    back: dict[Key, int] = defaultdict(int)
    for m in rows:
        key = (m.item_id, m.lot_id, m.serial_unit_id)
        if m.to_party is Party.PATIENT:
            delivered[key].append(CostChunk(m.quantity, m.unit_cost))
        elif m.from_party is Party.PATIENT:
            back[key] += m.quantity
    return delivered, back


def _place(session: Session, site: str, kind: LocationKind) -> Location:
    location = session.scalars(
        select(Location)
        .where(Location.site == site, Location.kind == kind, Location.active.is_(True))
        .order_by(Location.code)
    ).first()
    if location is None:
        raise Conflict(f"Site {site} has no {kind.value} location to take the returned goods.")
    return location


def record_return(session: Session, caller: Caller, kit: Kit, payload: dict[str, Any]) -> KitReturn:
    """Book what came back from the kit's patient; more than was delivered is 409."""
    lines: list[dict[str, Any]] = payload["lines"]
    now = utcnow()
    occurred_at: datetime = payload.get("occurred_at") or now
    if occurred_at > now + FUTURE_TOLERANCE:
        raise InvalidInput.field("occurred_at", "is more than 5 minutes in the future")
    items = {
        item.id: item
        for item in session.scalars(
            select(Item).where(Item.id.in_({line["item_id"] for line in lines}))
        ).all()
    }
    for index, line in enumerate(lines):
        if line["item_id"] not in items:
            raise InvalidInput.field(f"lines.{index}.item_id", f"no item {line['item_id']}")
    lock_items(session, sorted(items))
    kit = kits.lock_row(session, kit.id, None)
    if kit.status not in (KitStatus.DELIVERED, KitStatus.RETURNED):
        raise Conflict(
            f"Kit {kit.number} is {kit.status.value}; only a delivered kit takes returns."
        )
    delivered_at = session.scalar(
        select(Delivery.occurred_at)
        .where(Delivery.kit_id == kit.id, Delivery.outcome == Outcome.DELIVERED)
        .order_by(Delivery.id.desc())
        .limit(1)
    )
    if delivered_at is not None and occurred_at < delivered_at:
        raise InvalidInput.field(
            "occurred_at",
            f"is before kit {kit.number} was delivered ({delivered_at.isoformat()}); "
            "goods come back no earlier than they left",
        )
    delivered, back = at_patient(session, kit)
    document = StockDocument(
        type=DocumentType.RETURN,
        site=kit.site,
        reference=kit.number,
        reason="returned",
        note=payload.get("note"),
        actor_id=caller.user_id,
        kit_id=kit.id,
        occurred_at=occurred_at,
        recorded_at=now,
    )
    kit_return = KitReturn(
        kit_id=kit.id,
        actor_id=caller.user_id,
        occurred_at=occurred_at,
        recorded_at=now,
        sharps_containers=payload.get("sharps_containers", 0),
    )
    legs: list[Leg] = []
    returned_units: list[SerialUnit] = []
    for index, line in enumerate(lines):
        prefix = f"lines.{index}"
        item = items[line["item_id"]]
        lot, unit = _identify(session, item, line, prefix)
        key = (item.id, lot.id if lot else None, unit.id if unit else None)
        try:
            chunks = take_back(delivered.get(key, []), back[key], line["quantity"])
        except ValueError as error:
            label = (
                item.sku
                + (f" lot {lot.lot_number}" if lot else "")
                + (f" serial {unit.serial}" if unit else "")
            )
            raise Conflict(
                f"Cannot return {line['quantity']} of {label} from kit {kit.number}: {error}.",
                extra={"line": index},
            ) from None
        back[key] += line["quantity"]
        condition: Condition = line["condition"]
        where = disposition(condition, item.is_equipment)
        destination: Location | Party
        if where is Disposition.DISPOSAL:
            destination = Party.DISPOSAL
        elif where is Disposition.QUARANTINE:
            destination = _place(session, kit.site, LocationKind.QUARANTINE)
        else:
            destination = _cleaning(session, kit.site)
        for chunk in chunks:
            legs.append(
                Leg(
                    item,
                    chunk.quantity,
                    Party.PATIENT,
                    destination,
                    lot=lot,
                    serial_unit=unit,
                    unit_cost=chunk.unit_cost,
                )
            )
            kit_return.lines.append(
                KitReturnLine(
                    item_id=item.id,
                    lot_id=lot.id if lot else None,
                    serial_unit_id=unit.id if unit else None,
                    quantity=chunk.quantity,
                    condition=condition,
                    disposition=where,
                    unit_cost=chunk.unit_cost,
                )
            )
        if unit is not None:
            returned_units.append(unit)
    session.add(document)
    post_movements(session, document, MovementType.RETURN, legs)
    kit_return.document_id = document.id
    session.add(kit_return)
    for unit in returned_units:
        _equipment_back(session, caller, kit, unit, occurred_at)
    kit.status = KitStatus.RETURNED
    kits.touch(kit)
    _collected(session, kit)
    session.flush()
    return kit_return


def _collected(session: Session, kit: Kit) -> None:
    """A pending pick-up stop for the kit on a dispatched route is done."""
    stops = session.scalars(
        select(RouteStop)
        .join(Route, RouteStop.route_id == Route.id)
        .where(
            RouteStop.kit_id == kit.id,
            RouteStop.kind == StopKind.PICKUP,
            RouteStop.status == StopStatus.PENDING,
            Route.status == RouteStatus.DISPATCHED,
        )
    ).all()
    for stop in stops:
        stop.status = StopStatus.COLLECTED
        route = stop.route
        if all(other.status is not StopStatus.PENDING for other in route.stops):
            route.status = RouteStatus.COMPLETED
            route.completed_at = utcnow()


def _cleaning(session: Session, site: str) -> Location:
    try:
        return _place(session, site, LocationKind.CLEANING)
    except Conflict:
        return _place(session, site, LocationKind.QUARANTINE)


def _identify(
    session: Session, item: Item, line: dict[str, Any], prefix: str
) -> tuple[Lot | None, SerialUnit | None]:
    lot = unit = None
    if item.tracking is Tracking.LOT:
        if line.get("lot") is None:
            raise InvalidInput.field(
                f"{prefix}.lot", f"item {item.sku} is lot-tracked: give its lot"
            )
        lot = session.scalars(
            select(Lot).where(Lot.item_id == item.id, Lot.lot_number == line["lot"])
        ).one_or_none()
        if lot is None:
            raise InvalidInput.field(f"{prefix}.lot", f"no lot {line['lot']} of item {item.sku}")
    elif line.get("lot") is not None:
        raise InvalidInput.field(f"{prefix}.lot", f"item {item.sku} is not lot-tracked")
    if item.tracking is Tracking.SERIAL:
        if line.get("serial") is None:
            raise InvalidInput.field(
                f"{prefix}.serial", f"item {item.sku} is serialized: give its serial"
            )
        if line["quantity"] != 1:
            raise InvalidInput.field(f"{prefix}.quantity", "a serial unit comes back one at a time")
        unit = session.scalars(
            select(SerialUnit).where(
                SerialUnit.item_id == item.id, SerialUnit.serial == line["serial"]
            )
        ).one_or_none()
        if unit is None:
            raise InvalidInput.field(
                f"{prefix}.serial", f"no serial {line['serial']} of item {item.sku}"
            )
    elif line.get("serial") is not None:
        raise InvalidInput.field(f"{prefix}.serial", f"item {item.sku} is not serialized")
    return lot, unit


def _equipment_back(
    session: Session, caller: Caller, kit: Kit, unit: SerialUnit, occurred_at: datetime
) -> None:
    """The unit's days at the patient end: dirty, off the therapy's course reservation."""
    course = session.scalars(
        select(Reservation).where(
            Reservation.serial_unit_id == unit.id,
            Reservation.status == ReservationStatus.PICKED,
        )
    ).all()
    release(session, course, "returned")
    record_event(
        session,
        unit,
        EquipmentStatus.DIRTY,
        caller.user_id,
        from_status=EquipmentStatus.AT_PATIENT,
        occurred_at=occurred_at,
        patient_id=kit.patient_id,
        kit_id=kit.id,
        reason="returned",
    )
    unit.status = EquipmentStatus.DIRTY
    unit.patient_id = None


def return_view(kit_return: KitReturn) -> dict[str, Any]:
    credit = [
        CostChunk(line.quantity, line.unit_cost)
        for line in kit_return.lines
        if line.disposition is Disposition.QUARANTINE
    ]
    waste = [
        CostChunk(line.quantity, line.unit_cost)
        for line in kit_return.lines
        if line.disposition is Disposition.DISPOSAL
    ]
    return {
        "id": kit_return.id,
        "kit_id": kit_return.kit_id,
        "occurred_at": kit_return.occurred_at,
        "recorded_at": kit_return.recorded_at,
        "sharps_containers": kit_return.sharps_containers,
        "document_id": kit_return.document_id,
        "credit_value": value(credit),
        "waste_value": value(waste),
        "lines": [
            {
                "item_id": line.item_id,
                "lot": line.lot.lot_number if line.lot else None,
                "serial": line.serial_unit.serial if line.serial_unit else None,
                "quantity": line.quantity,
                "condition": line.condition,
                "disposition": line.disposition,
                "unit_cost": line.unit_cost,
                "total_cost": line.unit_cost * line.quantity,
            }
            for line in kit_return.lines
        ],
    }


def returns_of(session: Session, kit: Kit) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(KitReturn).where(KitReturn.kit_id == kit.id).order_by(KitReturn.id)
    ).all()
    return [return_view(row) for row in rows]
