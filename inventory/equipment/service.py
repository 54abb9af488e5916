"""Equipment use cases: list units, move them through their lifecycle, read their history."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from inventory.auth import Caller
from inventory.catalog.models import Location
from inventory.db import utcnow
from inventory.equipment.models import EquipmentEvent
from inventory.equipment.rules import StatusChange, allowed_from, legal_move, patient_periods
from inventory.errors import Conflict, NotFound
from inventory.kits.models import IN_OUR_HANDS, Kit
from inventory.ledger.models import (
    DocumentType,
    EquipmentStatus,
    MovementType,
    Party,
    Reservation,
    ReservationStatus,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.service import Leg, lock_items, post_movements, release
from inventory.schemas import paginate
from inventory.web import check_etag, etag_of


def etag(unit: SerialUnit) -> str:
    return etag_of("equipment", unit.id, unit.version)


def get_unit(session: Session, unit_id: int) -> SerialUnit:
    unit = session.get(SerialUnit, unit_id)
    if unit is None:
        raise NotFound(f"No equipment unit {unit_id}.")
    return unit


def unit_view(unit: SerialUnit, today: date | None = None) -> dict[str, Any]:
    today = today or utcnow().date()
    return {
        "id": unit.id,
        "serial": unit.serial,
        "item_id": unit.item_id,
        "sku": unit.item.sku,
        "status": unit.status,
        "patient_id": unit.patient_id,
        "location_id": unit.location_id,
        "pm_due": unit.pm_due,
        "pm_overdue": unit.pm_due is not None and unit.pm_due < today,
        "allowed_transitions": allowed_from(unit.status),
        "version": unit.version,
    }


def list_units(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(SerialUnit).options(selectinload(SerialUnit.item))
    for name in ("status", "item_id", "patient_id", "location_id"):
        if args.get(name) is not None:
            query = query.where(getattr(SerialUnit, name) == args[name])
    if args.get("site") is not None:
        query = query.join(Location, SerialUnit.location_id == Location.id).where(
            Location.site == args["site"]
        )
    if args.get("pm_due_before") is not None:
        query = query.where(SerialUnit.pm_due < args["pm_due_before"])
    page = paginate(session, query, SerialUnit.id, args)
    today = utcnow().date()
    page["items"] = [unit_view(unit, today) for unit in page["items"]]
    return page


def record_event(
    session: Session,
    unit: SerialUnit,
    to_status: EquipmentStatus,
    actor_id: int,
    *,
    from_status: EquipmentStatus | None = None,
    occurred_at: datetime | None = None,
    patient_id: int | None = None,
    kit_id: int | None = None,
    note: str | None = None,
    reason: str | None = None,
) -> EquipmentEvent:
    """Append one status change to the unit's log (the status itself is set by the caller)."""
    event = EquipmentEvent(
        serial_unit_id=unit.id,
        from_status=from_status or unit.status,
        to_status=to_status,
        patient_id=patient_id,
        kit_id=kit_id,
        note=note,
        reason=reason,
        occurred_at=occurred_at or utcnow(),
        recorded_at=utcnow(),
        actor_id=actor_id,
    )
    session.add(event)
    return event


def transition(
    session: Session,
    caller: Caller,
    unit: SerialUnit,
    payload: dict[str, Any],
    if_match: str | None = None,
) -> SerialUnit:
    """A legal lifecycle move, optionally setting the next preventive maintenance date."""
    lock_items(session, [unit.item_id])
    unit = session.scalars(
        select(SerialUnit)
        .where(SerialUnit.id == unit.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    check_etag(if_match, etag(unit))
    target: EquipmentStatus = payload["to"]
    current = unit.status
    if not legal_move(current, target):
        allowed = ", ".join(status.value for status in allowed_from(current)) or "none"
        raise Conflict(
            f"Serial {unit.serial} is {current.value}; it cannot move to {target.value} "
            f"(allowed: {allowed}).",
            extra={"from": current.value, "to": target.value},
        )
    if payload.get("pm_due") is not None:
        unit.pm_due = payload["pm_due"]
    if target is EquipmentStatus.RETIRED:
        _retire(session, caller, unit, payload.get("note"))
    patient_id = unit.patient_id if current is EquipmentStatus.AT_PATIENT else None
    record_event(
        session,
        unit,
        target,
        caller.user_id,
        from_status=current,
        patient_id=patient_id,
        note=payload.get("note"),
        reason="transition",
    )
    unit.status = target
    if target is EquipmentStatus.RETIRED:
        unit.patient_id = None
    session.flush()
    return unit


def _retire(session: Session, caller: Caller, unit: SerialUnit, note: str | None) -> None:
    """Take the unit out of service: its course reservation (if any) ends, and a unit in the
    pharmacy's locations leaves stock for disposal through the ledger."""
    held = session.scalars(
        select(Reservation)
        .where(
            Reservation.serial_unit_id == unit.id,
            Reservation.status.in_([ReservationStatus.ACTIVE, ReservationStatus.PICKED]),
        )
        .options(selectinload(Reservation.serial_unit))
    ).all()
    for kit_id in {r.kit_id for r in held if r.kit_id is not None}:
        kit = session.get(Kit, kit_id)
        # A unit in a kit still in the pharmacy's hands is swapped out first; one already at
        # the patient's home (lost, say) may be retired where it is.
        if kit is not None and kit.status in IN_OUR_HANDS:
            raise Conflict(
                f"Serial {unit.serial} is in kit {kit.number}; scan another unit into that kit "
                "(or cancel it) before retiring this one."
            )
    release(session, held, "unit retired")
    if unit.location_id is not None:
        location = session.get(Location, unit.location_id)
        assert location is not None
        document = StockDocument(
            type=DocumentType.EQUIPMENT,
            site=location.site,
            reference=f"retire {unit.serial}"[:120],
            reason="retired",
            note=note,
            actor_id=caller.user_id,
            occurred_at=utcnow(),
            recorded_at=utcnow(),
        )
        session.add(document)
        post_movements(
            session,
            document,
            MovementType.ADJUSTMENT,
            [Leg(unit.item, 1, location, Party.DISPOSAL, serial_unit=unit)],
        )


def history(session: Session, unit: SerialUnit) -> dict[str, Any]:
    """Every patient and date range the unit spent at a home, its kits and status changes."""
    events = session.scalars(
        select(EquipmentEvent)
        .where(EquipmentEvent.serial_unit_id == unit.id)
        .order_by(EquipmentEvent.occurred_at, EquipmentEvent.id)
    ).all()
    periods = patient_periods(
        StatusChange(e.occurred_at.date(), e.from_status, e.to_status, e.patient_id) for e in events
    )
    kit_rows = session.execute(
        select(Kit, Reservation.status)
        .join(Reservation, Reservation.kit_id == Kit.id)
        .where(Reservation.serial_unit_id == unit.id)
        .order_by(Kit.id)
    ).all()
    seen: set[int] = set()
    kits = []
    for kit, reservation_status in kit_rows:
        if kit.id in seen:
            continue
        seen.add(kit.id)
        kits.append(
            {
                "kit_id": kit.id,
                "number": kit.number,
                "patient_id": kit.patient_id,
                "status": kit.status,
                "first_day": kit.first_day,
                "last_day": kit.last_day,
                "in_kit": reservation_status is not ReservationStatus.RELEASED,
            }
        )
    return {
        "unit": unit_view(unit),
        "patients": [{"patient_id": p.patient_id, "from_": p.start, "to": p.end} for p in periods],
        "kits": kits,
        "events": [
            {
                "id": e.id,
                "from_status": e.from_status,
                "to_status": e.to_status,
                "patient_id": e.patient_id,
                "kit_id": e.kit_id,
                "note": e.note,
                "reason": e.reason,
                "occurred_at": e.occurred_at,
                "actor_id": e.actor_id,
            }
            for e in events
        ],
    }
