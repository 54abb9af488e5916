"""Kit use cases: build from reserved days, pack, cancel, re-plan after a recall (scanning is
in :mod:`inventory.kits.scanning`).

Lock order, shared with the ledger and planning: the items first (ascending id), then the
kit row. Every change to a kit bumps its version, which is its ETag, so two packers scanning
the same kit queue on the kit's lock and never count a unit twice.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from inventory.auth import Caller
from inventory.care.models import Patient
from inventory.catalog.models import Item, Location, LocationKind
from inventory.db import utcnow
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.kits.models import Kit, KitStatus
from inventory.kits.rules import lot_refusal
from inventory.ledger.models import (
    DocumentType,
    EquipmentStatus,
    Lot,
    Reservation,
    ReservationStatus,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.service import hold_many, lock_items, pick, put_back, release
from inventory.planning import service as planning
from inventory.planning.rules import Need, TemplateNeeds, allocate
from inventory.schemas import paginate
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from inventory.web import check_etag, etag_of

HELD = (ReservationStatus.ACTIVE, ReservationStatus.PICKED)
# Kits whose equipment is on its way to, or at, the patient.
LIVE = (KitStatus.OPEN, KitStatus.PACKED, KitStatus.DISPATCHED, KitStatus.FAILED)
MAX_DAYS_PER_KIT = 14


def etag(kit: Kit) -> str:
    return etag_of("kit", kit.id, kit.version)


def get_kit(session: Session, kit_id: int) -> Kit:
    kit = session.get(Kit, kit_id)
    if kit is None:
        raise NotFound(f"No kit {kit_id}.")
    return kit


def touch(kit: Kit) -> None:
    """Record a change to the kit: bumps its version, so its ETag changes."""
    kit.updated_at = utcnow()


def kit_reservations(session: Session, kit_id: int) -> list[Reservation]:
    return list(
        session.scalars(
            select(Reservation)
            .where(Reservation.kit_id == kit_id, Reservation.status.in_(HELD))
            .options(
                selectinload(Reservation.item),
                selectinload(Reservation.lot),
                selectinload(Reservation.location),
                selectinload(Reservation.serial_unit),
            )
            .order_by(Reservation.id)
            .execution_options(populate_existing=True)
        ).all()
    )


def held_item_ids(session: Session, kit_id: int) -> set[int]:
    """The items of the kit's held reservations: what its item locks cover."""
    return set(
        session.scalars(
            select(Reservation.item_id)
            .where(Reservation.kit_id == kit_id, Reservation.status.in_(HELD))
            .distinct()
        ).all()
    )


def kit_days(session: Session, kit_id: int) -> list[InfusionDay]:
    return list(
        session.scalars(
            select(InfusionDay)
            .where(InfusionDay.kit_id == kit_id)
            .order_by(InfusionDay.date, InfusionDay.id)
            .execution_options(populate_existing=True)
        ).all()
    )


def _kit_item_ids(session: Session, kit: Kit, days: Sequence[InfusionDay]) -> list[int]:
    """Every item the kit may hold: its days' templates, its equipment, its reservations."""
    ids = set(
        session.scalars(select(Reservation.item_id).where(Reservation.kit_id == kit.id)).all()
    )
    ids.update(int(item_id) for item_id in kit.equipment)
    therapy_ids = {day.therapy_id for day in days}
    if therapy_ids:
        for template in planning.templates_for(session, therapy_ids).values():
            ids.update(line.item_id for line in template.lines)
    return sorted(ids)


def lock_kit(session: Session, kit: Kit, if_match: str | None = None) -> Kit:
    """Take the kit's item locks, then its row lock; return it re-read under the locks,
    refusing (412) if ``if_match`` names another version."""
    lock_items(session, _kit_item_ids(session, kit, kit_days(session, kit.id)))
    return lock_row(session, kit.id, if_match)


def lock_row(session: Session, kit_id: int, if_match: str | None) -> Kit:
    kit = session.scalars(
        select(Kit)
        .where(Kit.id == kit_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).one()
    check_etag(if_match, etag(kit))
    return kit


# --- what the kit still lacks ------------------------------------------------------------------


@dataclass(frozen=True)
class Gap:
    """Units of an item the kit's days (or its equipment) need and no reservation covers."""

    item_id: int
    quantity: int
    day_id: int | None  # None for course equipment


def gaps(session: Session, kit: Kit, reservations: Sequence[Reservation]) -> list[Gap]:
    days = [day for day in kit_days(session, kit.id) if day.status != InfusionDayStatus.CANCELLED]
    templates = planning.templates_for(session, {day.therapy_id for day in days})
    found = [
        Gap(need.item_id, need.quantity, need.day_id)
        for need in planning.needs_for(session, days, templates)
    ]
    carried: dict[int, int] = defaultdict(int)
    for reservation in reservations:
        if reservation.serial_unit_id is not None:
            carried[reservation.item_id] += 1
    for item_id, wanted in sorted(kit.equipment.items()):
        short = wanted - carried[int(item_id)]
        if short > 0:
            found.append(Gap(int(item_id), short, None))
    return found


# --- views -------------------------------------------------------------------------------------


def lines(reservations: Sequence[Reservation]) -> list[dict[str, Any]]:
    """Reservations grouped by item, lot, serial and location, sorted by location code."""
    grouped: dict[tuple[int, int | None, int | None, int], dict[str, Any]] = {}
    for r in reservations:
        key = (r.item_id, r.lot_id, r.serial_unit_id, r.location_id)
        line = grouped.get(key)
        if line is None:
            line = grouped[key] = {
                "item_id": r.item_id,
                "sku": r.item.sku,
                "name": r.item.name,
                "unit": r.item.unit,
                "lot": r.lot.lot_number if r.lot else None,
                "expiry": r.lot.expiry if r.lot else None,
                "serial": r.serial_unit.serial if r.serial_unit else None,
                "location_id": r.location_id,
                "location_code": r.location.code,
                "quantity": 0,
                "packed_quantity": 0,
            }
        line["quantity"] += r.quantity
        line["packed_quantity"] += r.packed_quantity
    return sorted(
        grouped.values(),
        key=lambda line: (
            line["location_code"],
            line["sku"],
            line["lot"] or "",
            line["serial"] or "",
        ),
    )


def _gap_rows(session: Session, found: Sequence[Gap]) -> list[dict[str, Any]]:
    totals: dict[int, int] = defaultdict(int)
    for gap in found:
        totals[gap.item_id] += gap.quantity
    skus: dict[int, str] = {
        row.id: row.sku
        for row in session.execute(select(Item.id, Item.sku).where(Item.id.in_(list(totals))))
    }
    return [
        {"item_id": item_id, "sku": skus.get(item_id), "quantity": quantity}
        for item_id, quantity in sorted(totals.items())
    ]


def view(session: Session, kit: Kit) -> dict[str, Any]:
    reservations = kit_reservations(session, kit.id)
    kit_lines = lines(reservations)
    missing = (
        _gap_rows(session, gaps(session, kit, reservations)) if kit.status is KitStatus.OPEN else []
    )
    days = kit_days(session, kit.id)
    return {
        "id": kit.id,
        "number": kit.number,
        "patient_id": kit.patient_id,
        "site": kit.site,
        "status": kit.status,
        "first_day": kit.first_day,
        "last_day": kit.last_day,
        "infusion_days": [{"id": d.id, "date": d.date, "status": d.status} for d in days],
        "lines": kit_lines,
        "missing": missing,
        "complete": not missing
        and all(line["packed_quantity"] == line["quantity"] for line in kit_lines),
        "hold_reason": kit.hold_reason,
        "staging_location_id": kit.staging_location_id,
        "created_at": kit.created_at,
        "packed_at": kit.packed_at,
        "cancelled_at": kit.cancelled_at,
        "cancel_reason": kit.cancel_reason,
        "version": kit.version,
    }


def list_kits(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Kit)
    for name in ("status", "patient_id", "site"):
        if args.get(name) is not None:
            query = query.where(getattr(Kit, name) == args[name])
    if args.get("day") is not None:
        query = query.where(Kit.first_day <= args["day"], Kit.last_day >= args["day"])
    page = paginate(session, query, Kit.id, args)
    page["items"] = [
        {
            "id": kit.id,
            "number": kit.number,
            "patient_id": kit.patient_id,
            "site": kit.site,
            "status": kit.status,
            "first_day": kit.first_day,
            "last_day": kit.last_day,
            "hold_reason": kit.hold_reason,
            "packed_at": kit.packed_at,
        }
        for kit in page["items"]
    ]
    return page


def pick_list(session: Session, kit: Kit) -> dict[str, Any]:
    """The kit's lines sorted by location code, for walking the shelves."""
    full = view(session, kit)
    return {
        "kit_id": kit.id,
        "number": kit.number,
        "patient_id": kit.patient_id,
        "site": kit.site,
        "status": kit.status,
        "days": [day["date"] for day in full["infusion_days"]],
        "lines": full["lines"],
        "missing": full["missing"],
    }


# --- building ----------------------------------------------------------------------------------


def _equipment_to_carry(
    session: Session,
    patient_id: int,
    templates: dict[int, TemplateNeeds],
) -> tuple[dict[int, int], list[Reservation]]:
    """Course equipment the patient does not have at home (nor on its way): what the kit must
    carry, and the therapies' course reservations that will cover it."""
    required: dict[int, int] = {}
    for template in templates.values():
        for line in template.equipment:
            required[line.item_id] = max(required.get(line.item_id, 0), line.quantity)
    if not required:
        return {}, []
    have: dict[int, int] = defaultdict(int)
    for item_id, count in session.execute(
        select(SerialUnit.item_id, func.count())
        .where(SerialUnit.patient_id == patient_id, SerialUnit.status == EquipmentStatus.AT_PATIENT)
        .group_by(SerialUnit.item_id)
    ).all():
        have[int(item_id)] += int(count)
    for item_id, count in session.execute(
        select(Reservation.item_id, func.count())
        .join(Kit, Reservation.kit_id == Kit.id)
        .where(
            Kit.patient_id == patient_id,
            Kit.status.in_(LIVE),
            Reservation.serial_unit_id.is_not(None),
            Reservation.status.in_(HELD),
        )
        .group_by(Reservation.item_id)
    ).all():
        have[int(item_id)] += int(count)
    carry = {
        item_id: wanted - have[item_id]
        for item_id, wanted in required.items()
        if wanted > have[item_id]
    }
    if not carry:
        return {}, []
    course = session.scalars(
        select(Reservation)
        .where(
            Reservation.therapy_id.in_(list(templates)),
            Reservation.serial_unit_id.is_not(None),
            Reservation.status == ReservationStatus.ACTIVE,
            Reservation.kit_id.is_(None),
            Reservation.item_id.in_(list(carry)),
        )
        .order_by(Reservation.id)
    ).all()
    chosen: list[Reservation] = []
    short: dict[int, int] = {}
    for item_id, wanted in sorted(carry.items()):
        units = [r for r in course if r.item_id == item_id][:wanted]
        chosen.extend(units)
        if len(units) < wanted:
            short[item_id] = wanted - len(units)
    if short:
        skus = {
            row.id: row.sku
            for row in session.execute(select(Item.id, Item.sku).where(Item.id.in_(list(short))))
        }
        listing = ", ".join(
            f"{count} x {skus[item_id]}" for item_id, count in sorted(short.items())
        )
        raise Conflict(
            f"The patient has no course equipment at home and none is reserved: {listing}. "
            "Reserve it (a planning run does) before building the kit.",
            extra={"missing": [{"item_id": i, "quantity": q} for i, q in sorted(short.items())]},
        )
    return carry, chosen


def build(
    session: Session,
    caller: Caller,
    patient_id: int,
    day_ids: Sequence[int],
    today: date | None = None,
) -> Kit:
    """A kit from fully reserved days of one patient, plus course equipment if needed."""
    today = today or utcnow().date()
    if session.get(Patient, patient_id) is None:
        raise InvalidInput.field("patient_id", f"no patient {patient_id}")
    if len(set(day_ids)) != len(day_ids):
        raise InvalidInput.field("infusion_day_ids", "lists a day twice")
    found = {
        day.id: day
        for day in session.scalars(select(InfusionDay).where(InfusionDay.id.in_(day_ids))).all()
    }
    unknown = [day_id for day_id in day_ids if day_id not in found]
    if unknown:
        raise InvalidInput.field("infusion_day_ids", f"no infusion days {unknown}")
    foreign = [day_id for day_id in day_ids if found[day_id].patient_id != patient_id]
    if foreign:
        raise InvalidInput.field("infusion_day_ids", f"days {foreign} belong to another patient")
    templates = planning.lock_therapies(session, {day.therapy_id for day in found.values()})
    days = list(
        session.scalars(
            select(InfusionDay)
            .where(InfusionDay.id.in_(day_ids))
            .order_by(InfusionDay.date, InfusionDay.id)
            .execution_options(populate_existing=True)
        ).all()
    )
    if len({day.site for day in days}) > 1:
        raise InvalidInput.field("infusion_day_ids", "a kit's days belong to one site")
    in_kits = [day.id for day in days if day.kit_id is not None]
    if in_kits:
        raise Conflict(
            f"Infusion days {in_kits} are already in a kit.", extra={"infusion_day_ids": in_kits}
        )
    past = [day.id for day in days if day.date < today]
    if past:
        raise Conflict(f"Infusion days {past} are in the past.", extra={"infusion_day_ids": past})
    not_reserved = [
        {"infusion_day_id": day.id, "status": day.status.value}
        for day in days
        if day.status is not InfusionDayStatus.RESERVED
    ]
    missing = planning.missing_for(session, days)
    not_reserved += [
        {"infusion_day_id": day_id, "status": "short", "missing": lines}
        for day_id, lines in sorted(missing.items())
        if all(entry["infusion_day_id"] != day_id for entry in not_reserved)
    ]
    if not_reserved:
        raise Conflict(
            "Every day of a kit must be fully reserved first: "
            + ", ".join(
                f"day {entry['infusion_day_id']} is {entry['status']}" for entry in not_reserved
            ),
            extra={"days": not_reserved},
        )
    equipment, course = _equipment_to_carry(session, patient_id, templates)
    kit = Kit(
        site=days[0].site,
        patient_id=patient_id,
        status=KitStatus.OPEN,
        first_day=days[0].date,
        last_day=days[-1].date,
        equipment={str(item_id): quantity for item_id, quantity in sorted(equipment.items())},
        created_by=caller.user_id,
    )
    session.add(kit)
    session.flush()
    supplies = session.scalars(
        select(Reservation).where(
            Reservation.infusion_day_id.in_(day_ids), Reservation.status == ReservationStatus.ACTIVE
        )
    ).all()
    short_lots = [
        r
        for r in session.scalars(
            select(Reservation)
            .join(Lot, Reservation.lot_id == Lot.id)
            .where(Reservation.id.in_([r.id for r in supplies]), Lot.expiry < kit.last_day)
        ).all()
    ]
    for reservation in [*supplies, *course]:
        reservation.kit_id = kit.id
    for day in days:
        day.kit_id = kit.id
    session.flush()
    if short_lots:  # planned per day; a kit covering later days needs lots good until its end
        _replace_reservations(session, kit, short_lots, today, "expires before the kit's last day")
    return kit


# --- re-planning a kit's gaps ------------------------------------------------------------------


def _replace_reservations(
    session: Session, kit: Kit, reservations: Sequence[Reservation], today: date, reason: str
) -> None:
    release(session, reservations, reason)
    fill_gaps(session, kit, today)


def fill_gaps(session: Session, kit: Kit, today: date) -> int:
    """Reserve FEFO, for the kit, what its days lack: lots good until the kit's last day."""
    held = kit_reservations(session, kit.id)
    supply_gaps = [gap for gap in gaps(session, kit, held) if gap.day_id is not None]
    if not supply_gaps:
        return 0
    needs = [
        Need(gap.day_id or 0, max(kit.last_day, today), gap.item_id, gap.quantity)
        for gap in supply_gaps
    ]
    candidates = planning.stock_candidates(session, kit.site, {n.item_id for n in needs}, today)
    allocations, _ = allocate(needs, candidates)
    days = {day.id: day for day in kit_days(session, kit.id)}
    now = utcnow()
    hold_many(
        session,
        [
            {
                "site": kit.site,
                "therapy_id": days[a.day_id].therapy_id,
                "infusion_day_id": a.day_id,
                "item_id": a.item_id,
                "lot_id": a.lot_id,
                "location_id": a.location_id,
                "serial_unit_id": None,
                "quantity": a.quantity,
                "kit_id": kit.id,
                "packed_quantity": 0,
                "created_at": now,
            }
            for a in allocations
        ],
    )
    touch(kit)
    session.flush()
    return sum(a.quantity for a in allocations)


# --- packing and cancelling --------------------------------------------------------------------


def pm_overdue(unit: SerialUnit, today: date) -> bool:
    return unit.pm_due is not None and unit.pm_due < today


def _staging(session: Session, site: str) -> Location:
    staging = session.scalars(
        select(Location)
        .where(
            Location.site == site, Location.kind == LocationKind.STAGING, Location.active.is_(True)
        )
        .order_by(Location.code)
    ).first()
    if staging is None:
        raise Conflict(f"Site {site} has no staging location to pack into; create one first.")
    return staging


def _document(
    session: Session, caller: Caller, kit: Kit, reason: str, note: str | None = None
) -> StockDocument:
    document = StockDocument(
        type=DocumentType.KIT,
        site=kit.site,
        reference=kit.number,
        reason=reason,
        note=note,
        actor_id=caller.user_id,
        kit_id=kit.id,
        occurred_at=utcnow(),
        recorded_at=utcnow(),
    )
    session.add(document)
    return document


def pack(
    session: Session,
    caller: Caller,
    kit: Kit,
    today: date | None = None,
    if_match: str | None = None,
) -> Kit:
    """Close a fully scanned kit: its units move from storage to staging in the ledger."""
    today = today or utcnow().date()
    kit = lock_kit(session, kit, if_match)
    if kit.status is not KitStatus.OPEN:
        raise Conflict(f"Kit {kit.number} is {kit.status.value}; only an open kit is packed.")
    reservations = kit_reservations(session, kit.id)
    problems: list[dict[str, Any]] = []
    for line in lines(reservations):
        if line["packed_quantity"] < line["quantity"]:
            problems.append(
                {
                    **_line_key(line),
                    "quantity": line["quantity"],
                    "packed_quantity": line["packed_quantity"],
                    "problem": "not_scanned",
                }
            )
    for gap in _gap_rows(session, gaps(session, kit, reservations)):
        problems.append(
            {
                "item_id": gap["item_id"],
                "sku": gap["sku"],
                "lot": None,
                "serial": None,
                "location_id": None,
                "quantity": gap["quantity"],
                "packed_quantity": 0,
                "problem": "not_reserved",
            }
        )
    for r in reservations:
        if r.lot is not None:
            refusal = lot_refusal(
                r.lot.lot_number, r.lot.expiry, r.lot.recalled_at is not None, today, kit.last_day
            )
            if refusal is not None:
                problems.append(
                    {
                        "item_id": r.item_id,
                        "sku": r.item.sku,
                        "lot": r.lot.lot_number,
                        "serial": None,
                        "location_id": r.location_id,
                        "quantity": r.quantity,
                        "packed_quantity": r.packed_quantity,
                        "problem": refusal.code,
                    }
                )
        if r.serial_unit is not None and pm_overdue(r.serial_unit, today):
            problems.append(
                {
                    "item_id": r.item_id,
                    "sku": r.item.sku,
                    "lot": None,
                    "serial": r.serial_unit.serial,
                    "location_id": r.location_id,
                    "quantity": 1,
                    "packed_quantity": r.packed_quantity,
                    "problem": "pm_overdue",
                }
            )
    if problems:
        summary = "; ".join(
            f"{p['sku']}"
            + (f" lot {p['lot']}" if p["lot"] else "")
            + (f" serial {p['serial']}" if p["serial"] else "")
            + f": {p['problem'].replace('_', ' ')} ({p['packed_quantity']}/{p['quantity']})"
            for p in problems
        )
        raise Conflict(
            f"Kit {kit.number} cannot be packed: {summary}.", extra={"missing": problems}
        )
    staging = _staging(session, kit.site)
    pick(session, _document(session, caller, kit, "packed"), reservations, staging)
    now = utcnow()
    kit.status = KitStatus.PACKED
    kit.packed_at = now
    kit.packed_by = caller.user_id
    kit.staging_location_id = staging.id
    kit.hold_reason = None
    for day in kit_days(session, kit.id):
        if day.status is InfusionDayStatus.RESERVED:
            day.status = InfusionDayStatus.PACKED
    touch(kit)
    session.flush()
    return kit


def _line_key(line: dict[str, Any]) -> dict[str, Any]:
    return {key: line[key] for key in ("item_id", "sku", "lot", "serial", "location_id")}


def cancel(
    session: Session, caller: Caller, kit: Kit, reason: str | None, if_match: str | None = None
) -> Kit:
    """Give everything back: reservations released, packed units back to their shelves, days
    free to be planned again."""
    kit = lock_kit(session, kit, if_match)
    if kit.status not in (KitStatus.OPEN, KitStatus.PACKED, KitStatus.FAILED):
        raise Conflict(
            f"Kit {kit.number} is {kit.status.value}; only an open, packed or undelivered (failed) "
            "kit can be cancelled."
        )
    reservations = kit_reservations(session, kit.id)
    picked = [r for r in reservations if r.status is ReservationStatus.PICKED]
    if picked:  # back from the staging bench, or from the van after a failed delivery
        source = kit.vehicle_location or kit.staging_location
        assert source is not None
        document = _document(session, caller, kit, "kit cancelled", reason)
        put_back(session, document, picked, source, "kit cancelled")
        kit.vehicle_location_id = None
    release(
        session, [r for r in reservations if r.status is ReservationStatus.ACTIVE], "kit cancelled"
    )
    for day in kit_days(session, kit.id):
        day.kit_id = None
        if day.status in (InfusionDayStatus.RESERVED, InfusionDayStatus.PACKED):
            day.status = InfusionDayStatus.SCHEDULED
    kit.status = KitStatus.CANCELLED
    kit.cancelled_at = utcnow()
    kit.cancel_reason = reason
    touch(kit)
    session.flush()
    return kit
