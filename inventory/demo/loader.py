"""A believable one-site pharmacy for a newcomer to click through. Everything goes through the
same services the API uses, so the demo ledger is a real ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.auth import Caller
from inventory.catalog import service as catalog
from inventory.catalog.models import Category, Item, Location, LocationKind, Tracking
from inventory.db import utcnow
from inventory.demo.catalog import DEMO_ITEMS, DEMO_LOTS, DEMO_SERIALS, DEMO_UNTRACKED_RECEIPTS
from inventory.stock import service as stock
from inventory.users import service as users
from inventory.users.models import Role, User

SITE = "AUS1"
DEMO_LOCATIONS = (
    ("AUS1-STOR-A", "Main storage, aisle A", LocationKind.STORAGE),
    ("AUS1-STOR-B", "Main storage, aisle B (equipment)", LocationKind.STORAGE),
    ("AUS1-STAGE", "Packing and staging bench", LocationKind.STAGING),
    ("AUS1-QUAR", "Quarantine cage", LocationKind.QUARANTINE),
    ("AUS1-VAN-1", "Delivery van 1", LocationKind.VEHICLE),
    ("AUS1-VAN-2", "Delivery van 2", LocationKind.VEHICLE),
    ("AUS1-CLEAN", "Equipment cleaning room", LocationKind.CLEANING),
    ("AUS1-REPAIR", "Biomed repair bench", LocationKind.REPAIR),
)
DEMO_USERS = (
    ("Avery Admin", Role.ADMIN),
    ("Casey Coordinator", Role.COORDINATOR),
    ("Wren Warehouse", Role.WAREHOUSE),
    ("Dana Driver", Role.DRIVER),
    ("Finley Finance", Role.FINANCE),
)


@dataclass(frozen=True)
class DemoLogin:
    name: str
    role: Role
    token: str


def is_loaded(session: Session) -> bool:
    return (
        session.scalars(select(Location).where(Location.code == DEMO_LOCATIONS[0][0])).first()
        is not None
    )


def _issue_tokens(session: Session) -> list[DemoLogin]:
    logins = []
    for name, role in DEMO_USERS:
        user = session.scalars(select(User).where(User.name == name, User.role == role)).first()
        if user is None:
            continue
        issued = users.issue_token(session, user, label="demo")
        logins.append(DemoLogin(name, role, issued.secret))
    return logins


def load(session: Session) -> tuple[bool, list[DemoLogin]]:
    """Load the demo once; on later calls only issue fresh tokens. Returns (loaded_now, logins)."""
    if is_loaded(session):
        return False, _issue_tokens(session)

    locations = {
        code: catalog.create_location(
            session, {"code": code, "name": name, "kind": kind, "site": SITE}
        )
        for code, name, kind in DEMO_LOCATIONS
    }
    van = locations["AUS1-VAN-1"]
    for name, role in DEMO_USERS:
        users.create_user(
            session,
            {
                "name": name,
                "role": role,
                "site": SITE,
                "vehicle_location_id": van.id if role is Role.DRIVER else None,
            },
        )
    admin = session.scalars(select(User).where(User.role == Role.ADMIN)).first()
    assert admin is not None
    caller = Caller(admin.id, admin.name, admin.role, admin.site, None)

    items: dict[str, Item] = {}
    for demo in DEMO_ITEMS:
        items[demo.sku] = catalog.create_item(
            session,
            {
                "sku": demo.sku,
                "name": demo.name,
                "category": Category(demo.category),
                "unit": demo.unit,
                "tracking": Tracking(demo.tracking),
                "gtin": demo.gtin,
                "reorder_point": demo.reorder_point,
                "reorder_quantity": demo.reorder_quantity,
                "daily_rate": demo.daily_rate,
            },
        )

    today = utcnow().date()
    storage = locations["AUS1-STOR-A"].id
    received_at = utcnow() - timedelta(days=30)
    lot_lines = [
        {
            "item_id": items[lot.sku].id,
            "quantity": lot.quantity,
            "unit_cost": lot.unit_cost,
            "location_id": storage,
            "lot": lot.lot,
            "expiry": today + timedelta(days=lot.expiry_in_days),
        }
        for lot in DEMO_LOTS
    ]
    untracked_lines = [
        {"item_id": items[sku].id, "quantity": quantity, "unit_cost": cost, "location_id": storage}
        for sku, quantity, cost in DEMO_UNTRACKED_RECEIPTS
    ]
    # Two vendor deliveries, a month apart, so lots and costs differ between receipts.
    half = len(lot_lines) // 2
    stock.receive(
        session,
        caller,
        {
            "reference": "PO-DEMO-0001",
            "occurred_at": received_at,
            "lines": lot_lines[:half] + untracked_lines[::2],
        },
    )
    stock.receive(
        session,
        caller,
        {"reference": "PO-DEMO-0002", "lines": lot_lines[half:] + untracked_lines[1::2]},
    )
    equipment_lines = []
    for sku in sorted({sku for sku, _ in DEMO_SERIALS}):
        serials = [serial for s, serial in DEMO_SERIALS if s == sku]
        demo_item = next(d for d in DEMO_ITEMS if d.sku == sku)
        equipment_lines.append(
            {
                "item_id": items[sku].id,
                "quantity": len(serials),
                "unit_cost": Decimal(demo_item.unit_cost),
                "location_id": locations["AUS1-STOR-B"].id,
                "serials": serials,
            }
        )
    stock.receive(session, caller, {"reference": "PO-DEMO-EQUIP", "lines": equipment_lines})
    return True, _issue_tokens(session)
