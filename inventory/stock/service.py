"""Stock use cases: receive, transfer, adjust, and read stock and the ledger.

Each builds a stock document and hands its legs to the ledger's one posting function.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from inventory.auth import Caller
from inventory.catalog.models import Item, Location, LocationKind, Tracking
from inventory.db import Base, utcnow
from inventory.errors import Conflict, InvalidInput
from inventory.kits.models import Kit
from inventory.ledger.models import (
    AdjustmentReason,
    Balance,
    DocumentType,
    EquipmentStatus,
    Lot,
    Movement,
    MovementType,
    Party,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.service import Leg, lock_items, post_movements
from inventory.schemas import paginate

FUTURE_TOLERANCE = timedelta(minutes=5)
RECEIVING_KINDS = frozenset({LocationKind.STORAGE, LocationKind.QUARANTINE})
# Adjustments that destroy units send them to disposal; the rest to the adjustment account.
DISPOSING_REASONS = frozenset(
    {AdjustmentReason.DAMAGED, AdjustmentReason.EXPIRED, AdjustmentReason.RECALLED}
)
ADDING_REASONS = frozenset({AdjustmentReason.FOUND, AdjustmentReason.COUNT})
REMOVING_REASONS = frozenset(
    {
        AdjustmentReason.COUNT,
        AdjustmentReason.DAMAGED,
        AdjustmentReason.EXPIRED,
        AdjustmentReason.RECALLED,
        AdjustmentReason.LOST,
    }
)

M = TypeVar("M", bound=Base)


def _by_id(session: Session, model: type[M], ids: Iterable[int]) -> dict[int, M]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.scalars(select(model).where(model.id.in_(wanted))).all()  # type: ignore[attr-defined]
    return {row.id: row for row in rows}  # type: ignore[attr-defined]


def _occurred_at(value: datetime | None) -> datetime:
    now = utcnow()
    if value is None:
        return now
    if value > now + FUTURE_TOLERANCE:
        raise InvalidInput.field("occurred_at", "must not be in the future")
    return value


class _Lines:
    """Resolves the ids a document's lines name, reporting unknown ones per line."""

    def __init__(
        self, session: Session, lines: Sequence[dict[str, Any]], location_keys: Sequence[str]
    ):
        self.session = session
        self.items = _by_id(session, Item, (line["item_id"] for line in lines))
        self.locations = _by_id(
            session, Location, (line[key] for line in lines for key in location_keys)
        )
        errors: dict[str, list[str]] = {}
        for index, line in enumerate(lines):
            if line["item_id"] not in self.items:
                errors[f"lines.{index}.item_id"] = [f"No item {line['item_id']}."]
            for key in location_keys:
                if line[key] not in self.locations:
                    errors[f"lines.{index}.{key}"] = [f"No location {line[key]}."]
        if errors:
            raise InvalidInput("Some lines name unknown items or locations.", errors=errors)
        lock_items(session, list(self.items))

    def site(self, lines: Sequence[dict[str, Any]], key: str) -> str:
        sites = {self.locations[line[key]].site for line in lines}
        if len(sites) > 1:
            raise InvalidInput.field(
                f"lines.0.{key}", f"one document covers one site; these lines span {sorted(sites)}"
            )
        return sites.pop()

    def lot(self, item: Item, lot_number: str, field: str) -> Lot:
        lot = self.session.scalars(
            select(Lot).where(Lot.item_id == item.id, Lot.lot_number == lot_number)
        ).one_or_none()
        if lot is None:
            raise InvalidInput.field(field, f"no lot {lot_number} of item {item.sku}")
        return lot

    def serial(self, item: Item, serial: str, field: str) -> SerialUnit:
        unit = self.session.scalars(
            select(SerialUnit).where(SerialUnit.item_id == item.id, SerialUnit.serial == serial)
        ).one_or_none()
        if unit is None:
            raise InvalidInput.field(field, f"no serial {serial} of item {item.sku}")
        return unit


def _require_tracking_fields(
    item: Item, line: dict[str, Any], prefix: str, *, serial_key: str
) -> None:
    """The lot / serial fields a line must carry follow the item's tracking."""
    has_lot = line.get("lot") is not None
    has_serial = line.get(serial_key) is not None
    if item.tracking is Tracking.LOT and not has_lot:
        raise InvalidInput.field(f"{prefix}.lot", f"item {item.sku} is lot-tracked: give its lot")
    if item.tracking is not Tracking.LOT and has_lot:
        raise InvalidInput.field(f"{prefix}.lot", f"item {item.sku} is not lot-tracked")
    if item.tracking is Tracking.SERIAL and not has_serial:
        raise InvalidInput.field(
            f"{prefix}.{serial_key}", f"item {item.sku} is serialized: give its serial"
        )
    if item.tracking is not Tracking.SERIAL and has_serial:
        raise InvalidInput.field(f"{prefix}.{serial_key}", f"item {item.sku} is not serialized")


def _lot_for_intake(
    session: Session, item: Item, lot_number: str, expiry: date | None, prefix: str, today: date
) -> Lot:
    lot = session.scalars(
        select(Lot).where(Lot.item_id == item.id, Lot.lot_number == lot_number)
    ).one_or_none()
    if lot is None:
        if expiry is None:
            raise InvalidInput.field(
                f"{prefix}.expiry", f"lot {lot_number} is new: give its expiry"
            )
        lot = Lot(item_id=item.id, lot_number=lot_number, expiry=expiry)
        session.add(lot)
        session.flush()
    elif expiry is not None and expiry != lot.expiry:
        raise Conflict(
            f"Lot {lot_number} of item {item.sku} is recorded with expiry {lot.expiry}, "
            f"not {expiry}."
        )
    if lot.expiry < today:
        raise InvalidInput.field(f"{prefix}.expiry", f"lot {lot_number} expired on {lot.expiry}")
    return lot


def _document(
    session: Session, caller: Caller, kind: DocumentType, site: str, payload: dict[str, Any]
) -> StockDocument:
    reason = payload.get("reason")
    document = StockDocument(
        type=kind,
        site=site,
        reference=payload.get("reference"),
        reason=reason.value if reason is not None else None,
        note=payload.get("note"),
        actor_id=caller.user_id,
        occurred_at=_occurred_at(payload.get("occurred_at")),
        recorded_at=utcnow(),
    )
    session.add(document)
    return document


def receive(session: Session, caller: Caller, payload: dict[str, Any]) -> StockDocument:
    """Book a vendor delivery into stock: all lines or none."""
    lines = payload["lines"]
    resolved = _Lines(session, lines, ["location_id"])
    site = resolved.site(lines, "location_id")
    document = _document(session, caller, DocumentType.RECEIPT, site, payload)
    today = document.occurred_at.date()
    legs: list[Leg] = []
    for index, line in enumerate(lines):
        prefix = f"lines.{index}"
        item = resolved.items[line["item_id"]]
        location = resolved.locations[line["location_id"]]
        if location.kind not in RECEIVING_KINDS:
            raise InvalidInput.field(
                f"{prefix}.location_id", "receive into a storage or quarantine location"
            )
        _require_tracking_fields(item, line, prefix, serial_key="serials")
        if item.tracking is not Tracking.LOT and line.get("expiry") is not None:
            raise InvalidInput.field(f"{prefix}.expiry", f"item {item.sku} is not lot-tracked")
        if item.tracking is Tracking.SERIAL:
            legs.extend(_serial_intake(session, item, line, location, prefix))
            continue
        lot = None
        if item.tracking is Tracking.LOT:
            if line.get("expiry") is None:
                raise InvalidInput.field(
                    f"{prefix}.expiry", "a lot-tracked receipt needs the expiry"
                )
            lot = _lot_for_intake(session, item, line["lot"], line["expiry"], prefix, today)
        legs.append(
            Leg(
                item,
                line["quantity"],
                Party.SUPPLIER,
                location,
                lot=lot,
                unit_cost=line["unit_cost"],
            )
        )
    post_movements(session, document, MovementType.RECEIPT, legs)
    return document


def _serial_intake(
    session: Session, item: Item, line: dict[str, Any], location: Location, prefix: str
) -> list[Leg]:
    serials: list[str] = line["serials"]
    if len(serials) != line["quantity"]:
        raise InvalidInput.field(
            f"{prefix}.quantity", f"is {line['quantity']} but {len(serials)} serials were given"
        )
    if len(set(serials)) != len(serials):
        raise InvalidInput.field(f"{prefix}.serials", "lists a serial twice")
    known = session.scalars(
        select(SerialUnit.serial).where(
            SerialUnit.item_id == item.id, SerialUnit.serial.in_(serials)
        )
    ).all()
    if known:
        raise Conflict(f"Item {item.sku} already has serial(s) {', '.join(sorted(known))}.")
    legs = []
    for serial in serials:
        unit = SerialUnit(
            item_id=item.id,
            serial=serial,
            status=EquipmentStatus.AVAILABLE,
            location_id=None,
            unit_cost=line["unit_cost"],
        )
        session.add(unit)
        legs.append(
            Leg(item, 1, Party.SUPPLIER, location, serial_unit=unit, unit_cost=line["unit_cost"])
        )
    session.flush()
    return legs


def transfer(session: Session, caller: Caller, payload: dict[str, Any]) -> StockDocument:
    """Move units between locations of one site."""
    lines = payload["lines"]
    resolved = _Lines(session, lines, ["from_location_id", "to_location_id"])
    site = resolved.site(lines, "from_location_id")
    document = _document(session, caller, DocumentType.TRANSFER, site, payload)
    legs = []
    for index, line in enumerate(lines):
        prefix = f"lines.{index}"
        item = resolved.items[line["item_id"]]
        _require_tracking_fields(item, line, prefix, serial_key="serial")
        lot = resolved.lot(item, line["lot"], f"{prefix}.lot") if line.get("lot") else None
        unit = None
        if item.tracking is Tracking.SERIAL:
            if line["quantity"] != 1:
                raise InvalidInput.field(f"{prefix}.quantity", "a serial unit moves one at a time")
            unit = resolved.serial(item, line["serial"], f"{prefix}.serial")
        legs.append(
            Leg(
                item,
                line["quantity"],
                resolved.locations[line["from_location_id"]],
                resolved.locations[line["to_location_id"]],
                lot=lot,
                serial_unit=unit,
            )
        )
    post_movements(session, document, MovementType.TRANSFER, legs)
    return document


def _last_known_cost(session: Session, item: Item, lot: Lot | None) -> Decimal | None:
    """The cost units of this lot (else item) last entered stock at: a receipt or a find.

    Transfers and removals are skipped: they carry the FIFO cost of older units.
    """
    for condition in ([Movement.lot_id == lot.id] if lot else []) + [Movement.item_id == item.id]:
        cost = session.scalars(
            select(Movement.unit_cost)
            .where(Movement.item_id == item.id, Movement.from_party.is_not(None), condition)
            .order_by(Movement.id.desc())
            .limit(1)
        ).first()
        if cost is not None:
            return cost
    return None


def adjust(session: Session, caller: Caller, payload: dict[str, Any]) -> StockDocument:
    """Correct stock after a count, damage, expiry, recall, loss or find."""
    lines = payload["lines"]
    reason: AdjustmentReason = payload["reason"]
    resolved = _Lines(session, lines, ["location_id"])
    site = resolved.site(lines, "location_id")
    document = _document(session, caller, DocumentType.ADJUSTMENT, site, payload)
    today = document.occurred_at.date()
    outlet: Party = Party.DISPOSAL if reason in DISPOSING_REASONS else Party.ADJUSTMENT
    legs = []
    for index, line in enumerate(lines):
        prefix = f"lines.{index}"
        item = resolved.items[line["item_id"]]
        location = resolved.locations[line["location_id"]]
        delta: int = line["quantity_delta"]
        adding = delta > 0
        if adding and reason not in ADDING_REASONS:
            raise InvalidInput.field(
                f"{prefix}.quantity_delta", f"a '{reason.value}' adjustment removes units"
            )
        if not adding and reason not in REMOVING_REASONS:
            raise InvalidInput.field(
                f"{prefix}.quantity_delta", f"a '{reason.value}' adjustment adds units"
            )
        _require_tracking_fields(item, line, prefix, serial_key="serial")
        if line.get("expiry") is not None and not (adding and item.tracking is Tracking.LOT):
            raise InvalidInput.field(f"{prefix}.expiry", "only units added to a lot take an expiry")
        if item.tracking is Tracking.SERIAL and abs(delta) != 1:
            raise InvalidInput.field(f"{prefix}.quantity_delta", "a serial unit is +1 or -1")
        if not adding:
            lot = resolved.lot(item, line["lot"], f"{prefix}.lot") if line.get("lot") else None
            unit = (
                resolved.serial(item, line["serial"], f"{prefix}.serial")
                if item.tracking is Tracking.SERIAL
                else None
            )
            legs.append(Leg(item, -delta, location, outlet, lot=lot, serial_unit=unit))
            continue
        lot = (
            _lot_for_intake(session, item, line["lot"], line.get("expiry"), prefix, today)
            if item.tracking is Tracking.LOT
            else None
        )
        unit_cost = line.get("unit_cost")
        if unit_cost is None:
            unit_cost = _last_known_cost(session, item, lot)
        if unit_cost is None:
            raise InvalidInput.field(
                f"{prefix}.unit_cost", f"no earlier cost is known for item {item.sku}: give one"
            )
        unit = None
        if item.tracking is Tracking.SERIAL:
            unit = _found_serial_unit(session, item, line["serial"], unit_cost)
        legs.append(
            Leg(
                item,
                delta,
                Party.ADJUSTMENT,
                location,
                lot=lot,
                serial_unit=unit,
                unit_cost=unit_cost,
            )
        )
    post_movements(session, document, MovementType.ADJUSTMENT, legs)
    return document


def _found_serial_unit(session: Session, item: Item, serial: str, unit_cost: Decimal) -> SerialUnit:
    unit = session.scalars(
        select(SerialUnit).where(SerialUnit.item_id == item.id, SerialUnit.serial == serial)
    ).one_or_none()
    if unit is None:
        unit = SerialUnit(
            item_id=item.id, serial=serial, status=EquipmentStatus.AVAILABLE, unit_cost=unit_cost
        )
        session.add(unit)
        session.flush()
        return unit
    if unit.location_id is not None:
        raise Conflict(f"Serial {serial} of item {item.sku} is already in stock.")
    if unit.status is EquipmentStatus.AT_PATIENT:
        raise Conflict(
            f"Serial {serial} of item {item.sku} is at a patient's home; book its return from "
            "the patient's kit instead of finding it."
        )
    unit.status = EquipmentStatus.AVAILABLE
    return unit


# --- reading -------------------------------------------------------------------------------


def list_stock(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = (
        select(Balance)
        .outerjoin(Lot, Balance.lot_id == Lot.id)
        .options(
            selectinload(Balance.item), selectinload(Balance.lot), selectinload(Balance.location)
        )
    )
    if not args.get("include_empty"):
        query = query.where(Balance.on_hand > 0)
    if args.get("item_id") is not None:
        query = query.where(Balance.item_id == args["item_id"])
    if args.get("location_id") is not None:
        query = query.where(Balance.location_id == args["location_id"])
    if args.get("site") is not None:
        query = query.where(Balance.site == args["site"])
    if args.get("lot") is not None:
        query = query.where(Lot.lot_number == args["lot"])
    if args.get("expiring_before") is not None:
        query = query.where(Lot.expiry < args["expiring_before"])
    page = paginate(session, query, Balance.id, args)
    page["items"] = [stock_row(balance) for balance in page["items"]]
    return page


def stock_row(balance: Balance) -> dict[str, Any]:
    return {
        "id": balance.id,
        "item_id": balance.item_id,
        "sku": balance.item.sku,
        "lot": balance.lot.lot_number if balance.lot else None,
        "expiry": balance.lot.expiry if balance.lot else None,
        "location_id": balance.location_id,
        "location_code": balance.location.code,
        "site": balance.site,
        "on_hand": balance.on_hand,
        "reserved": balance.reserved,
        "available": balance.available,
    }


def _endpoint(location: Location | None, party: Party | None) -> dict[str, Any]:
    if location is not None:
        return {"type": "location", "location_id": location.id, "code": location.code}
    assert party is not None
    return {"type": party.value, "location_id": None, "code": None}


def movement_row(movement: Movement) -> dict[str, Any]:
    return {
        "id": movement.id,
        "type": movement.type,
        "document_id": movement.document_id,
        "site": movement.site,
        "item_id": movement.item_id,
        "lot": movement.lot.lot_number if movement.lot else None,
        "expiry": movement.lot.expiry if movement.lot else None,
        "serial": movement.serial_unit.serial if movement.serial_unit else None,
        "quantity": movement.quantity,
        "from_": _endpoint(movement.from_location, movement.from_party),
        "to": _endpoint(movement.to_location, movement.to_party),
        "unit_cost": movement.unit_cost,
        "total_cost": movement.unit_cost * movement.quantity,
        "occurred_at": movement.occurred_at,
        "recorded_at": movement.recorded_at,
        "actor": {"id": movement.actor.id, "name": movement.actor.name},
        "reason": movement.reason,
        "reference": movement.reference,
        "kit_id": movement.document.kit_id,
    }


_MOVEMENT_LOADS = (
    selectinload(Movement.document),
    selectinload(Movement.lot),
    selectinload(Movement.serial_unit),
    selectinload(Movement.from_location),
    selectinload(Movement.to_location),
    selectinload(Movement.actor),
)


def document_view(session: Session, document: StockDocument) -> dict[str, Any]:
    movements = session.scalars(
        select(Movement)
        .where(Movement.document_id == document.id)
        .order_by(Movement.id)
        .options(*_MOVEMENT_LOADS)
    ).all()
    rows = [movement_row(movement) for movement in movements]
    return {
        "id": document.id,
        "type": document.type.value,
        "site": document.site,
        "reference": document.reference,
        "reason": document.reason,
        "note": document.note,
        "occurred_at": document.occurred_at,
        "recorded_at": document.recorded_at,
        "actor": {"id": document.actor.id, "name": document.actor.name},
        "total_cost": sum((row["total_cost"] for row in rows), Decimal("0")),
        "movements": rows,
    }


def list_movements(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Movement).options(*_MOVEMENT_LOADS)
    if args.get("item_id") is not None:
        query = query.where(Movement.item_id == args["item_id"])
    if args.get("lot") is not None:
        query = query.join(Lot, Movement.lot_id == Lot.id).where(Lot.lot_number == args["lot"])
    if args.get("type") is not None:
        query = query.where(Movement.type == args["type"])
    if args.get("document_id") is not None:
        query = query.where(Movement.document_id == args["document_id"])
    if args.get("site") is not None:
        query = query.where(Movement.site == args["site"])
    if args.get("kit_id") is not None or args.get("patient_id") is not None:
        query = query.join(StockDocument, Movement.document_id == StockDocument.id)
        if args.get("kit_id") is not None:
            query = query.where(StockDocument.kit_id == args["kit_id"])
        if args.get("patient_id") is not None:
            kits = select(Kit.id).where(Kit.patient_id == args["patient_id"])
            query = query.where(StockDocument.kit_id.in_(kits))
    if args.get("location_id") is not None:
        location_id = args["location_id"]
        query = query.where(
            or_(Movement.from_location_id == location_id, Movement.to_location_id == location_id)
        )
    if args.get("from_") is not None:
        query = query.where(Movement.occurred_at >= _start_of(args["from_"]))
    if args.get("to") is not None and args["to"] < date.max:  # date.max: no upper bound
        query = query.where(Movement.occurred_at < _start_of(args["to"] + timedelta(days=1)))
    page = paginate(session, query, Movement.id, args)
    page["items"] = [movement_row(movement) for movement in page["items"]]
    return page


def _start_of(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)
