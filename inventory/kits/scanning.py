"""Scanning units into a kit: count them, swap a reservation to the scanned lot or unit, or
fill what the kit lacks; refuse anything that must not go in, with a reason code.

The decisions are the pure rules in :mod:`inventory.kits.rules`; this module reads the
database for them and carries them out through the ledger's hold and release.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inventory.catalog.gs1 import BarcodeError, normalize_gtin, parse_barcode
from inventory.catalog.models import Item, Location, LocationKind, Tracking
from inventory.db import utcnow
from inventory.errors import Conflict, InvalidInput
from inventory.kits.models import Kit, KitStatus
from inventory.kits.rules import ScanPlan, ScanRefused, Slot, lot_refusal, plan_scan, split_units
from inventory.kits.service import (
    Gap,
    gaps,
    kit_days,
    kit_reservations,
    lock_row,
    pm_overdue,
    touch,
)
from inventory.ledger.models import Balance, EquipmentStatus, Lot, Reservation, SerialUnit
from inventory.ledger.service import hold, lock_items, release
from inventory.planning import service as planning
from inventory.therapies.models import InfusionDay


@dataclass(frozen=True)
class ScanInput:
    item: Item
    lot_number: str | None
    serial: str | None
    quantity: int


def read_scan(session: Session, payload: dict[str, Any]) -> ScanInput:
    """What a scan names: from a GS1 barcode, or from item_id with lot or serial."""
    quantity = payload.get("quantity", 1)
    if payload.get("barcode") is not None:
        try:
            scan = parse_barcode(payload["barcode"])
        except BarcodeError as error:
            raise InvalidInput.field("barcode", str(error)) from None
        assert scan.gtin is not None
        item = session.scalars(select(Item).where(Item.gtin == normalize_gtin(scan.gtin))).first()
        if item is None:
            raise _refused(
                ScanRefused(
                    "not_in_kit", f"No catalog item has GTIN {scan.gtin}; it is not in the kit."
                )
            )
        lot_number, serial = scan.lot, scan.serial
    else:
        item = session.get(Item, payload["item_id"])
        if item is None:
            raise InvalidInput.field("item_id", f"no item {payload['item_id']}")
        lot_number, serial = payload.get("lot"), payload.get("serial")
    if item.tracking is Tracking.LOT and lot_number is None:
        raise InvalidInput.field(
            "lot", f"item {item.sku} is lot-tracked: scan a barcode with its lot (10)"
        )
    if item.tracking is Tracking.SERIAL:
        if serial is None:
            raise InvalidInput.field(
                "serial", f"item {item.sku} is serialized: scan its serial (21)"
            )
        if quantity != 1:
            raise InvalidInput.field("quantity", "a serial unit is scanned one at a time")
    return ScanInput(
        item,
        lot_number if item.tracking is Tracking.LOT else None,
        serial if item.tracking is Tracking.SERIAL else None,
        quantity,
    )


def _refused(refusal: ScanRefused) -> Conflict:
    return Conflict(refusal.message, extra={"reason": refusal.code})


def scan(
    session: Session,
    kit: Kit,
    payload: dict[str, Any],
    today: date | None = None,
    if_match: str | None = None,
) -> dict[str, Any]:
    """Count scanned units toward the kit; swap or fill from a good lot; refuse the rest."""
    today = today or utcnow().date()
    scanned = read_scan(session, payload)
    lock_items(session, [scanned.item.id])
    kit = lock_row(session, kit.id, if_match)
    if kit.status is not KitStatus.OPEN:
        raise Conflict(f"Kit {kit.number} is {kit.status.value}; only an open kit is scanned.")
    reservations = [r for r in kit_reservations(session, kit.id) if r.item_id == scanned.item.id]
    item_gaps = [
        g
        for g in gaps(session, kit, kit_reservations(session, kit.id))
        if g.item_id == scanned.item.id
    ]
    if not reservations and not item_gaps:
        raise _refused(
            ScanRefused("not_in_kit", f"Item {scanned.item.sku} is not in kit {kit.number}.")
        )
    if scanned.serial is not None:
        result = _scan_serial(session, kit, scanned, reservations, item_gaps, today)
    else:
        result = _scan_supply(session, kit, scanned, reservations, item_gaps, today)
    touch(kit)
    session.flush()
    return result


def _scan_supply(
    session: Session,
    kit: Kit,
    scanned: ScanInput,
    reservations: list[Reservation],
    item_gaps: list[Gap],
    today: date,
) -> dict[str, Any]:
    item = scanned.item
    lot = None
    if scanned.lot_number is not None:
        lot = session.scalars(
            select(Lot).where(Lot.item_id == item.id, Lot.lot_number == scanned.lot_number)
        ).one_or_none()
        if lot is None:
            raise _refused(
                ScanRefused(
                    "unknown_lot",
                    f"Lot {scanned.lot_number} of item {item.sku} was never received.",
                )
            )
        refusal = lot_refusal(
            lot.lot_number, lot.expiry, lot.recalled_at is not None, today, kit.last_day
        )
        if refusal is not None:
            raise _refused(refusal)
    slots = [
        Slot(
            r.id,
            r.lot_id,
            None if r.infusion_day_id is None else _day_of(session, r),
            r.quantity,
            r.packed_quantity,
        )
        for r in reservations
    ]
    unreserved = sum(gap.quantity for gap in item_gaps if gap.day_id is not None)
    try:
        plan = plan_scan(slots, lot.id if lot else None, scanned.quantity, unreserved)
    except ScanRefused as refusal:
        raise _refused(refusal) from None
    by_id = {r.id: r for r in reservations}
    for reservation_id, units in plan.count:
        by_id[reservation_id].packed_quantity += units
    if plan.moved:
        _move_to_lot(session, kit, item, lot, plan, by_id, item_gaps)
    return {
        "item_id": item.id,
        "lot": lot.lot_number if lot else None,
        "serial": None,
        "quantity": scanned.quantity,
        "counted": sum(units for _, units in plan.count),
        "swapped": sum(units for _, units in plan.swap),
        "filled": plan.fill,
    }


def _day_of(session: Session, reservation: Reservation) -> date | None:
    day = (
        session.get(InfusionDay, reservation.infusion_day_id)
        if reservation.infusion_day_id
        else None
    )
    return day.date if day else None


def _storage_stock(session: Session, site: str, item: Item, lot: Lot | None) -> list[Balance]:
    return list(
        session.scalars(
            select(Balance)
            .join(Location, Balance.location_id == Location.id)
            .where(
                Balance.item_id == item.id,
                Balance.site == site,
                Location.kind == LocationKind.STORAGE,
                Balance.on_hand > Balance.reserved,
                Balance.lot_id.is_(None) if lot is None else Balance.lot_id == lot.id,
            )
            .order_by(Location.code, Balance.id)
            .execution_options(populate_existing=True)
        ).all()
    )


def _move_to_lot(
    session: Session,
    kit: Kit,
    item: Item,
    lot: Lot | None,
    plan: ScanPlan,
    by_id: dict[int, Reservation],
    item_gaps: list[Gap],
) -> None:
    """Move the plan's swapped units (and fill its gap) onto ``lot``, atomically: the old
    reservations are released and re-held for what stays, the scanned lot is held for the
    rest, already counted as packed. Refused if the lot lacks the units in storage."""
    stock = _storage_stock(session, kit.site, item, lot)
    needed = plan.moved
    if sum(b.available for b in stock) < needed:
        label = f"lot {lot.lot_number}" if lot else f"item {item.sku}"
        in_quarantine = session.scalars(
            select(func.coalesce(func.sum(Balance.on_hand), 0))
            .join(Location, Balance.location_id == Location.id)
            .where(
                Balance.item_id == item.id,
                Balance.site == kit.site,
                Location.kind == LocationKind.QUARANTINE,
                Balance.lot_id.is_(None) if lot is None else Balance.lot_id == lot.id,
            )
        ).one()
        if in_quarantine and not stock:
            raise _refused(ScanRefused("quarantined", f"The units of {label} are in quarantine."))
        raise _refused(
            ScanRefused(
                "insufficient_lot_stock",
                f"Only {sum(b.available for b in stock)} of {label} are available in storage; "
                f"{needed} would move to it.",
            )
        )
    # Where the moved units belong: (therapy, day) with how many.
    placements: list[tuple[tuple[int, int | None], int]] = []
    kept: list[Reservation] = []
    released: list[Reservation] = []
    for reservation_id, units in plan.swap:
        old = by_id[reservation_id]
        released.append(old)
        placements.append(((old.therapy_id, old.infusion_day_id), units))
        if old.quantity - units > 0:
            kept.append(_copy(old, quantity=old.quantity - units, packed=old.packed_quantity))
    if plan.fill:
        days = {day.id: day for day in kit_days(session, kit.id)}
        wanted = [
            ((days[g.day_id].therapy_id, g.day_id), g.quantity)
            for g in item_gaps
            if g.day_id is not None
        ]
        placements.extend(split_units(wanted, plan.fill))
    release(session, released, "lot swapped while packing")
    rooms = [(balance.location_id, balance.available) for balance in stock]
    fresh: list[Reservation] = []
    for (therapy_id, day_id), units in placements:
        for location_id, take in split_units(rooms, units):
            rooms = [(loc, room - take if loc == location_id else room) for loc, room in rooms]
            fresh.append(
                Reservation(
                    site=kit.site,
                    therapy_id=therapy_id,
                    infusion_day_id=day_id,
                    item_id=item.id,
                    lot_id=lot.id if lot else None,
                    location_id=location_id,
                    quantity=take,
                    kit_id=kit.id,
                    packed_quantity=take,
                )
            )
    hold(session, [*kept, *fresh])


def _copy(old: Reservation, *, quantity: int, packed: int) -> Reservation:
    return Reservation(
        site=old.site,
        therapy_id=old.therapy_id,
        infusion_day_id=old.infusion_day_id,
        item_id=old.item_id,
        lot_id=old.lot_id,
        location_id=old.location_id,
        serial_unit_id=old.serial_unit_id,
        quantity=quantity,
        kit_id=old.kit_id,
        packed_quantity=packed,
    )


def _scan_serial(
    session: Session,
    kit: Kit,
    scanned: ScanInput,
    reservations: list[Reservation],
    item_gaps: list[Gap],
    today: date,
) -> dict[str, Any]:
    item = scanned.item
    unit = session.scalars(
        select(SerialUnit)
        .where(SerialUnit.item_id == item.id, SerialUnit.serial == scanned.serial)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if unit is None:
        raise _refused(
            ScanRefused("unknown_serial", f"Item {item.sku} has no serial {scanned.serial}.")
        )
    result = {
        "item_id": item.id,
        "lot": None,
        "serial": unit.serial,
        "quantity": 1,
        "counted": 0,
        "swapped": 0,
        "filled": 0,
    }
    if pm_overdue(unit, today):
        raise _refused(
            ScanRefused(
                "pm_overdue",
                f"Serial {unit.serial} is overdue for preventive maintenance (due {unit.pm_due}).",
            )
        )
    own = next((r for r in reservations if r.serial_unit_id == unit.id), None)
    if own is not None:
        if own.packed_quantity >= own.quantity:
            raise _refused(
                ScanRefused("too_many", f"Serial {unit.serial} is already packed in this kit.")
            )
        own.packed_quantity = own.quantity
        result["counted"] = 1
        return result
    location = session.get(Location, unit.location_id) if unit.location_id is not None else None
    if (
        unit.status is not EquipmentStatus.AVAILABLE
        or location is None
        or location.kind is not LocationKind.STORAGE
        or location.site != kit.site
    ):
        raise _refused(
            ScanRefused(
                "unit_not_available",
                f"Serial {unit.serial} is {unit.status.value}"
                + ("" if location is None else f" at {location.code}")
                + "; only an available unit in this site's storage can be packed.",
            )
        )
    unscanned = [r for r in reservations if r.serial_unit_id is not None and r.packed_quantity == 0]
    gap = sum(g.quantity for g in item_gaps if g.day_id is None)
    if unscanned:
        old = unscanned[-1]
        therapy_id = old.therapy_id
        release(session, [old], "unit swapped while packing")
        result["swapped"] = 1
    elif gap:
        therapy_id = _therapy_needing(session, kit, item.id)
        result["filled"] = 1
    else:
        raise _refused(
            ScanRefused("too_many", f"Kit {kit.number} needs no more of item {item.sku}.")
        )
    hold(
        session,
        [
            Reservation(
                site=kit.site,
                therapy_id=therapy_id,
                infusion_day_id=None,
                item_id=item.id,
                lot_id=None,
                location_id=location.id,
                serial_unit=unit,
                quantity=1,
                kit_id=kit.id,
                packed_quantity=1,
            )
        ],
    )
    return result


def _therapy_needing(session: Session, kit: Kit, item_id: int) -> int:
    days = kit_days(session, kit.id)
    templates = planning.templates_for(session, {day.therapy_id for day in days})
    for therapy_id in sorted(templates):
        if any(line.item_id == item_id for line in templates[therapy_id].equipment):
            return therapy_id
    return days[0].therapy_id
