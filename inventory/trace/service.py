"""Trace a lot or a serial through the ledger and the kits; recall a lot.

The trace is read from the ledger (every movement of the lot, with the kit its document
belongs to) and from the kits holding it, so it names patients whose kits were packed, and
later delivered, with the lot, and where the remaining units are now.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from inventory.auth import Caller
from inventory.catalog.models import Item, Location, LocationKind, Tracking
from inventory.db import utcnow
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.kits import service as kits
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.models import (
    Balance,
    DocumentType,
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
from inventory.planning import service as planning
from inventory.therapies.models import InfusionDay, InfusionDayStatus

RECALL_REASON = "recalled"
RECALL_RELEASE = "lot recalled"


def _item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"No item {item_id}.")
    return item


def _lot(session: Session, item: Item, lot_number: str) -> Lot:
    lot = session.scalars(
        select(Lot).where(Lot.item_id == item.id, Lot.lot_number == lot_number)
    ).one_or_none()
    if lot is None:
        raise NotFound(f"Item {item.sku} has no lot {lot_number}.")
    return lot


def trace(
    session: Session, item_id: int, lot_number: str | None, serial: str | None
) -> dict[str, Any]:
    """Every patient, kit and delivery that received the lot or serial, and where the rest is."""
    item = _item(session, item_id)
    if (lot_number is None) == (serial is None):
        raise InvalidInput.field("lot", "give exactly one of lot and serial")
    lot = unit = None
    if lot_number is not None:
        if item.tracking is not Tracking.LOT:
            raise InvalidInput.field("lot", f"item {item.sku} is not lot-tracked")
        lot = _lot(session, item, lot_number)
        movement_filter = Movement.lot_id == lot.id
        reservation_filter = Reservation.lot_id == lot.id
        balance_filter = Balance.lot_id == lot.id
    else:
        if item.tracking is not Tracking.SERIAL:
            raise InvalidInput.field("serial", f"item {item.sku} is not serialized")
        unit = session.scalars(
            select(SerialUnit).where(SerialUnit.item_id == item.id, SerialUnit.serial == serial)
        ).one_or_none()
        if unit is None:
            raise NotFound(f"Item {item.sku} has no serial {serial}.")
        movement_filter = Movement.serial_unit_id == unit.id
        reservation_filter = Reservation.serial_unit_id == unit.id
        balance_filter = None

    movements = session.scalars(
        select(Movement)
        .where(Movement.item_id == item.id, movement_filter)
        .options(selectinload(Movement.document), selectinload(Movement.to_location))
        .order_by(Movement.occurred_at, Movement.id)
    ).all()
    kit_ids = {m.document.kit_id for m in movements if m.document.kit_id is not None}
    # Kits holding it now, and kits that held it when it was recalled (their boxes may still
    # hold units to pull out, though the ledger never moved them to the patient).
    kit_ids.update(
        kit_id
        for kit_id in session.scalars(
            select(Reservation.kit_id).where(
                reservation_filter,
                Reservation.kit_id.is_not(None),
                or_(
                    Reservation.status.in_(kits.HELD),
                    Reservation.release_reason == RECALL_RELEASE,
                ),
            )
        ).all()
        if kit_id is not None
    )
    kit_rows = session.scalars(select(Kit).where(Kit.id.in_(kit_ids)).order_by(Kit.id)).all()
    packed: dict[int, int] = defaultdict(int)
    delivered: dict[int, int] = defaultdict(int)
    deliveries = []
    received = []
    disposed = 0
    for m in movements:
        if m.from_party in (Party.SUPPLIER, Party.ADJUSTMENT):
            received.append(
                {
                    "document_id": m.document_id,
                    "type": m.type,
                    "reference": m.reference,
                    "quantity": m.quantity,
                    "location_id": m.to_location_id,
                    "occurred_at": m.occurred_at,
                }
            )
        if m.to_party is Party.DISPOSAL:
            disposed += m.quantity
        kit_id = m.document.kit_id
        if kit_id is None:
            continue
        if m.type is MovementType.PICK:
            packed[kit_id] += m.quantity
        if m.to_party is Party.PATIENT:
            delivered[kit_id] += m.quantity
            deliveries.append(
                {"kit_id": kit_id, "quantity": m.quantity, "occurred_at": m.occurred_at}
            )
    held: dict[int, int] = defaultdict(int)
    for kit_id, quantity in session.execute(
        select(Reservation.kit_id, Reservation.quantity).where(
            reservation_filter,
            Reservation.kit_id.in_(kit_ids),
            Reservation.status.in_(kits.HELD),
        )
    ).all():
        held[int(kit_id or 0)] += int(quantity)
    kit_views = []
    patients: dict[int, dict[str, Any]] = {}
    for kit in kit_rows:
        patient_deliveries = [d for d in deliveries if d["kit_id"] == kit.id]
        for delivery in patient_deliveries:
            delivery["patient_id"] = kit.patient_id
        kit_views.append(
            {
                "kit_id": kit.id,
                "number": kit.number,
                "patient_id": kit.patient_id,
                "status": kit.status,
                "first_day": kit.first_day,
                "last_day": kit.last_day,
                "held_quantity": held[kit.id],
                "packed_quantity": packed[kit.id],
                "delivered_quantity": delivered[kit.id],
                "packed_at": kit.packed_at,
            }
        )
        entry = patients.setdefault(
            kit.patient_id,
            {
                "patient_id": kit.patient_id,
                "kit_ids": [],
                "packed_quantity": 0,
                "delivered_quantity": 0,
                "first_day": kit.first_day,
                "last_day": kit.last_day,
            },
        )
        entry["kit_ids"].append(kit.id)
        entry["packed_quantity"] += packed[kit.id]
        entry["delivered_quantity"] += delivered[kit.id]
        entry["first_day"] = min(entry["first_day"], kit.first_day)
        entry["last_day"] = max(entry["last_day"], kit.last_day)

    where: list[dict[str, Any]] = []
    if balance_filter is not None:
        for balance, location in session.execute(
            select(Balance, Location)
            .join(Location, Balance.location_id == Location.id)
            .where(Balance.item_id == item.id, balance_filter, Balance.on_hand > 0)
            .order_by(Location.code)
        ).all():
            where.append(_place(location, balance.on_hand, balance.reserved))
    elif unit is not None and unit.location_id is not None:
        unit_location = session.get(Location, unit.location_id)
        assert unit_location is not None
        where.append(_place(unit_location, 1, 0))
    result: dict[str, Any] = {
        "item_id": item.id,
        "sku": item.sku,
        "lot": lot.lot_number if lot else None,
        "expiry": lot.expiry if lot else None,
        "recalled_at": lot.recalled_at if lot else None,
        "serial": unit.serial if unit else None,
        "status": unit.status if unit else None,
        "patients": list(patients.values()),
        "kits": kit_views,
        "deliveries": deliveries,
        "received": received,
        "on_hand": where,
        "quarantined_quantity": sum(
            p["on_hand"] for p in where if p["kind"] == LocationKind.QUARANTINE
        ),
        "disposed_quantity": disposed,
        "at_patient_id": unit.patient_id if unit else None,
    }
    return result


def _place(location: Location, on_hand: int, reserved: int) -> dict[str, Any]:
    return {
        "location_id": location.id,
        "location_code": location.code,
        "kind": location.kind,
        "site": location.site,
        "on_hand": on_hand,
        "reserved": reserved,
    }


def recall(
    session: Session,
    caller: Caller,
    item_id: int,
    lot_number: str,
    note: str | None,
    today: date | None = None,
) -> dict[str, Any]:
    """Pull a lot back: quarantine what remains, release its reservations and re-plan them
    onto other lots, hold the kits that had it until they are rescanned. Returns the trace."""
    today = today or utcnow().date()
    item = session.get(Item, item_id)
    if item is None:
        raise InvalidInput.field("item_id", f"no item {item_id}")
    if item.tracking is not Tracking.LOT:
        raise InvalidInput.field("lot", f"item {item.sku} is not lot-tracked")
    lot = session.scalars(
        select(Lot).where(Lot.item_id == item.id, Lot.lot_number == lot_number)
    ).one_or_none()
    if lot is None:
        raise InvalidInput.field("lot", f"item {item.sku} has no lot {lot_number}")
    lock_items(session, [item.id])
    lot = session.scalars(
        select(Lot).where(Lot.id == lot.id).execution_options(populate_existing=True)
    ).one()
    if lot.recalled_at is not None:
        raise Conflict(f"Lot {lot.lot_number} of item {item.sku} is already recalled.")
    affected = session.scalars(
        select(Reservation)
        .where(Reservation.lot_id == lot.id, Reservation.status.in_(kits.HELD))
        .options(selectinload(Reservation.serial_unit))
        .order_by(Reservation.id)
    ).all()
    kit_ids = sorted({r.kit_id for r in affected if r.kit_id is not None})
    held_kits = [
        kit
        for kit in session.scalars(
            select(Kit)
            .where(Kit.id.in_(kit_ids), Kit.status.in_([KitStatus.OPEN, KitStatus.PACKED]))
            .order_by(Kit.id)
            .with_for_update()
            .execution_options(populate_existing=True)
        ).all()
    ]
    held_ids = {kit.id for kit in held_kits}
    lot.recalled_at = utcnow()
    # Only reservations not yet on their way to a patient: a dispatched kit's units are
    # brought back by the delivery flow.
    ending = [r for r in affected if r.kit_id is None or r.kit_id in held_ids]
    packed_in_kit: dict[int, int] = defaultdict(int)
    for r in ending:
        if r.kit_id is not None:
            packed_in_kit[r.kit_id] += (
                r.quantity if r.status is ReservationStatus.PICKED else r.packed_quantity
            )
    picked_by_kit: dict[int, list[Reservation]] = defaultdict(list)
    for r in ending:
        if r.kit_id is not None and r.status is ReservationStatus.PICKED:
            picked_by_kit[r.kit_id].append(r)
    release(
        session, [r for r in ending if r.status is not ReservationStatus.PICKED], RECALL_RELEASE
    )
    for kit in held_kits:  # a packed kit's units of the lot stop being held on its bench
        bench = kit.vehicle_location or kit.staging_location
        release(session, picked_by_kit[kit.id], RECALL_RELEASE, picked_at=bench)
    _quarantine(session, caller, item, lot, note)

    day_ids = sorted({r.infusion_day_id for r in ending if r.kit_id is None and r.infusion_day_id})
    if day_ids:
        days = session.scalars(select(InfusionDay).where(InfusionDay.id.in_(day_ids))).all()
        for day in days:
            if day.status is InfusionDayStatus.RESERVED:
                day.status = InfusionDayStatus.SCHEDULED
        session.flush()
        planning.plan_days(session, [day for day in days if day.date >= today], today)
    for kit in held_kits:
        if kit.status is KitStatus.PACKED:
            kit.status = KitStatus.OPEN
            kit.packed_at = None
            for day in kits.kit_days(session, kit.id):
                if day.status is InfusionDayStatus.PACKED:
                    day.status = InfusionDayStatus.RESERVED
        removed = packed_in_kit[kit.id]
        kit.hold_reason = (
            f"Lot {lot.lot_number} of {item.sku} was recalled on {lot.recalled_at.date()}: "
            + (
                f"take its {removed} unit(s) out of this kit and put them in quarantine, then "
                if removed
                else ""
            )
            + "scan the replacement units before packing."
        )
        kits.fill_gaps(session, kit, today)
    session.flush()
    return trace(session, item.id, lot.lot_number, None)


def _quarantine(
    session: Session, caller: Caller, item: Item, lot: Lot, note: str | None
) -> list[StockDocument]:
    """Move every remaining unit of the lot (outside quarantine) to its site's quarantine."""
    stock = session.execute(
        select(Balance, Location)
        .join(Location, Balance.location_id == Location.id)
        .where(
            Balance.lot_id == lot.id,
            Balance.on_hand > 0,
            # A dispatched kit's units ride on a vehicle; the delivery flow brings them back.
            Location.kind.not_in([LocationKind.QUARANTINE, LocationKind.VEHICLE]),
        )
        .order_by(Location.site, Location.code)
        .execution_options(populate_existing=True)
    ).all()
    by_site: dict[str, list[tuple[Balance, Location]]] = defaultdict(list)
    for balance, location in stock:
        by_site[location.site].append((balance, location))
    documents = []
    for site, rows in sorted(by_site.items()):
        quarantine = session.scalars(
            select(Location)
            .where(
                Location.site == site,
                Location.kind == LocationKind.QUARANTINE,
                Location.active.is_(True),
            )
            .order_by(Location.code)
        ).first()
        if quarantine is None:
            raise Conflict(
                f"Site {site} has no quarantine location for the recalled units; create one."
            )
        document = StockDocument(
            type=DocumentType.RECALL,
            site=site,
            reference=f"recall {item.sku} {lot.lot_number}"[:120],
            reason=RECALL_REASON,
            note=note,
            actor_id=caller.user_id,
            occurred_at=utcnow(),
            recorded_at=utcnow(),
        )
        session.add(document)
        post_movements(
            session,
            document,
            MovementType.TRANSFER,
            [
                Leg(item, balance.on_hand, location, quarantine, lot=lot)
                for balance, location in rows
            ],
        )
        documents.append(document)
    return documents
