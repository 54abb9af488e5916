"""Catalog use cases: items, locations and reading scans against the catalog."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.catalog.gs1 import BarcodeError, Scan, normalize_gtin, parse_barcode
from inventory.catalog.models import Item, Location, Tracking
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.ledger.models import Movement
from inventory.schemas import paginate


def get_item(session: Session, item_id: int) -> Item:
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"No item {item_id}.")
    return item


def get_location(session: Session, location_id: int) -> Location:
    location = session.get(Location, location_id)
    if location is None:
        raise NotFound(f"No location {location_id}.")
    return location


def _gtin(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return normalize_gtin(value)
    except BarcodeError as error:
        raise InvalidInput.field("gtin", str(error)) from None


def _check_unique(session: Session, item: Item | None, sku: str | None, gtin: str | None) -> None:
    if sku is not None:
        other = session.scalars(select(Item).where(Item.sku == sku)).first()
        if other is not None and other is not item:
            raise Conflict(f"SKU {sku} is already item {other.id}.")
    if gtin is not None:
        other = session.scalars(select(Item).where(Item.gtin == gtin)).first()
        if other is not None and other is not item:
            raise Conflict(f"GTIN {gtin} is already item {other.id}.")


def create_item(session: Session, fields: dict[str, Any]) -> Item:
    """Add an item to the catalog."""
    fields = dict(fields)
    fields["gtin"] = _gtin(fields.get("gtin"))
    _check_unique(session, None, fields["sku"], fields["gtin"])
    item = Item(**fields)
    session.add(item)
    session.flush()
    return item


def update_item(session: Session, item: Item, changes: dict[str, Any]) -> Item:
    """Edit an item; tracking and the equipment category are fixed once stock has moved."""
    changes = dict(changes)
    if "gtin" in changes:
        changes["gtin"] = _gtin(changes["gtin"])
    _check_unique(session, item, changes.get("sku"), changes.get("gtin"))
    category = changes.get("category", item.category)
    tracking = changes.get("tracking", item.tracking)
    daily_rate = changes.get("daily_rate", item.daily_rate)
    if category.is_equipment and tracking is not Tracking.SERIAL:
        raise InvalidInput.field("tracking", "Equipment (pump, pole) is tracked by serial.")
    if daily_rate is not None and not category.is_equipment:
        raise InvalidInput.field("daily_rate", "Only equipment (pump, pole) has a daily rate.")
    if tracking is not item.tracking or category.is_equipment != item.is_equipment:
        has_moved = session.scalars(
            select(Movement.id).where(Movement.item_id == item.id).limit(1)
        ).first()
        if has_moved is not None:
            raise Conflict(
                f"Item {item.sku} has stock movements; its tracking and equipment category "
                "can no longer change. Create a new item instead."
            )
    for name, value in changes.items():
        setattr(item, name, value)
    session.flush()
    return item


def list_items(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Item)
    for name in ("category", "tracking", "sku", "active"):
        if args.get(name) is not None:
            query = query.where(getattr(Item, name) == args[name])
    if args.get("gtin") is not None:
        query = query.where(Item.gtin == args["gtin"].zfill(14))
    return paginate(session, query, Item.id, args)


def create_location(session: Session, fields: dict[str, Any]) -> Location:
    """Add a storage, staging, quarantine, vehicle, cleaning or repair location."""
    if session.scalars(select(Location).where(Location.code == fields["code"])).first():
        raise Conflict(f"Location code {fields['code']} is already taken.")
    location = Location(**fields)
    session.add(location)
    session.flush()
    return location


def list_locations(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Location)
    for name in ("kind", "site"):
        if args.get(name) is not None:
            query = query.where(getattr(Location, name) == args[name])
    return paginate(session, query, Location.id, args)


def read_scan(session: Session, barcode: str) -> dict[str, Any]:
    """Parse a GS1 barcode and match its GTIN to a catalog item."""
    try:
        scan: Scan = parse_barcode(barcode)
    except BarcodeError as error:
        raise InvalidInput(
            f"Unreadable barcode: {error}", errors={"barcode": [str(error)]}
        ) from None
    item = (
        session.scalars(select(Item).where(Item.gtin == scan.gtin)).first() if scan.gtin else None
    )
    return {
        "gtin": scan.gtin,
        "item_id": item.id if item else None,
        "sku": item.sku if item else None,
        "lot": scan.lot,
        "expiry": scan.expiry,
        "serial": scan.serial,
    }
