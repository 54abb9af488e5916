"""A believable one-site pharmacy for a newcomer to click through. Everything goes through the
same services the API uses, so the demo ledger is a real ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from inventory.auth import Caller
from inventory.care import service as care
from inventory.catalog import service as catalog
from inventory.catalog.models import Category, Item, Location, LocationKind, Tracking
from inventory.db import utcnow
from inventory.demo.catalog import DEMO_ITEMS, DEMO_LOTS, DEMO_SERIALS, DEMO_UNTRACKED_RECEIPTS
from inventory.kits import scanning
from inventory.kits import service as kits
from inventory.kits.models import Kit
from inventory.planning import service as planning
from inventory.stock import service as stock
from inventory.therapies import service as therapies
from inventory.therapies.models import InfusionDay, InfusionDayStatus
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


def create_catalog(session: Session) -> dict[str, Item]:
    """The demo's catalog items, through the catalog service; by SKU."""
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
    return items


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

    items = create_catalog(session)

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
    _load_patients_and_therapies(session, items, today)
    planning.run(session, planning.DEFAULT_HORIZON_DAYS, SITE)
    _load_kits(session, caller, today)
    return True, _issue_tokens(session)


DEMO_KITS = 3  # built for the first patients with a reserved day tomorrow; the first packed


def _load_kits(session: Session, caller: Caller, today: date) -> None:
    """A few kits for tomorrow's deliveries: one packed (scanned line by line, as a packer
    would), the others open, so the pick list and the packing screens have work on them."""
    tomorrow = today + timedelta(days=1)
    days = session.scalars(
        select(InfusionDay)
        .where(
            InfusionDay.site == SITE,
            InfusionDay.date == tomorrow,
            InfusionDay.status == InfusionDayStatus.RESERVED,
        )
        .order_by(InfusionDay.patient_id, InfusionDay.id)
    ).all()
    built: list[Kit] = []
    for day in days:
        if len(built) == DEMO_KITS or any(k.patient_id == day.patient_id for k in built):
            continue
        built.append(kits.build(session, caller, day.patient_id, [day.id], today))
    if not built:
        return
    first = built[0]
    for line in kits.view(session, first)["lines"]:
        payload: dict[str, object] = {"item_id": line["item_id"], "quantity": line["quantity"]}
        if line["lot"] is not None:
            payload["lot"] = line["lot"]
        if line["serial"] is not None:
            payload["serial"] = line["serial"]
        scanning.scan(session, first, payload, today)
    kits.pack(session, caller, first, today)


# Three therapies, as a home infusion pharmacy runs them. (name, code, schedule, supplies per
# day by SKU, equipment per course by SKU)
DemoTherapy = tuple[str, str, dict[str, int], str, list[tuple[str, int]], list[tuple[str, int]]]
DEMO_THERAPIES: tuple[DemoTherapy, ...] = (
    (
        "Enzyme replacement (imiglucerase) day",
        "S9357",
        {"every_days": 14},
        "imiglucerase",
        [
            (demo.sku, demo.ert_template_quantity_per_day)
            for demo in DEMO_ITEMS
            if demo.ert_template_quantity_per_day
        ],
        [("EQP-PMP-AMB", 1), ("EQP-POLE-5W", 1)],
    ),
    (
        "Immune globulin (IVIG) day",
        "S9338",
        {"every_days": 28},
        "immune globulin 10%",
        [
            ("ADM-SET-104", 1),
            ("FLT-120-LIP", 1),
            ("CTH-PIV-24", 1),
            ("FLS-NS-10", 3),
            ("PRP-ALC-001", 4),
            ("DRS-TSP-0203", 1),
            ("PPE-GLV-NIT-M", 2),
            ("OTH-UPD-2336", 1),
        ],
        [("EQP-PMP-AMB", 1)],
    ),
    (
        "Daily anti-infective (ertapenem) day",
        "S9500",
        {"every_days": 1},
        "ertapenem 1 g",
        [
            ("ADM-SET-037", 2),
            ("FLS-NS-10", 2),
            ("FLS-HEP-100", 1),
            ("PRP-CAP-IPA", 2),
            ("PRP-ALC-001", 2),
            ("PPE-GLV-NIT-M", 1),
        ],
        [],
    ),
)
FIRST_NAMES = (
    "Maria",
    "James",
    "Aiyana",
    "Chen",
    "Fatima",
    "Robert",
    "Lucia",
    "Dmitri",
    "Grace",
    "Hiroshi",
    "Nia",
    "Oscar",
    "Priya",
    "Samuel",
    "Tamar",
    "Walter",
    "Yolanda",
)
LAST_NAMES = (
    "Alvarez",
    "Brooks",
    "Castillo",
    "Dang",
    "Ellison",
    "Fischer",
    "Guerrero",
    "Hadley",
    "Iverson",
    "Jimenez",
    "Kowalski",
    "Lindqvist",
    "Moreno",
    "Nakamura",
)
STREETS = (
    "Oak Hollow Dr",
    "Barton Springs Rd",
    "Red River St",
    "Riverside Dr",
    "Manor Rd",
    "Burnet Rd",
    "Guadalupe St",
    "Cesar Chavez St",
    "Airport Blvd",
    "Lamar Blvd",
)


def _load_patients_and_therapies(session: Session, items: dict[str, Item], today: date) -> None:
    """Two payers (one on each counting rule, one with a rate change next month), three kit
    templates, 51 fictional patients and their therapies."""
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    dose_day = care.create_payer(
        session,
        {
            "name": "Blue Cross Blue Shield of Texas",
            "rates": [
                {
                    "hcpcs": "S9357",
                    "rate": Decimal("210.00"),
                    "counting": "dose_day",
                    "effective_from": today.replace(month=1, day=1),
                },
                {
                    "hcpcs": "S9338",
                    "rate": Decimal("260.00"),
                    "counting": "dose_day",
                    "effective_from": today.replace(month=1, day=1),
                },
                {
                    "hcpcs": "S9500",
                    "rate": Decimal("95.00"),
                    "counting": "dose_day",
                    "effective_from": today.replace(month=1, day=1),
                },
            ],
        },
    )
    calendar_day = care.create_payer(
        session,
        {
            "name": "Lone Star Health Plan",
            "rates": [
                {
                    "hcpcs": code,
                    "rate": rate,
                    "counting": "calendar_day",
                    "effective_from": today.replace(month=1, day=1),
                }
                for code, rate in (
                    ("S9357", Decimal("18.50")),
                    ("S9338", Decimal("12.00")),
                    ("S9500", Decimal("88.00")),
                )
            ]
            + [
                {
                    "hcpcs": "S9500",
                    "rate": Decimal("91.00"),
                    "counting": "calendar_day",
                    "effective_from": next_month,
                }
            ],
        },
    )
    templates = []
    for name, code, schedule, drug, supplies, equipment in DEMO_THERAPIES:
        template = care.create_template(
            session,
            {
                "name": name,
                "hcpcs": code,
                "lines": [{"item_id": items[sku].id, "quantity_per_day": q} for sku, q in supplies],
                "equipment": [{"item_id": items[sku].id, "quantity": q} for sku, q in equipment],
            },
        )
        templates.append((template.id, code, schedule, drug))
    for n in range(51):
        patient = care.create_patient(
            session,
            {
                "external_ref": f"MRN-{100200 + n}",
                "name": f"{FIRST_NAMES[n % len(FIRST_NAMES)]} {LAST_NAMES[n % len(LAST_NAMES)]}",
                "address": {
                    "line1": f"{1100 + 37 * n} {STREETS[n % len(STREETS)]}",
                    "city": "Austin",
                    "state": "TX",
                    "postal_code": f"787{n % 50:02d}",
                },
                "phone": f"512-555-{1000 + n:04d}",
                "payer_id": (dose_day if n % 2 else calendar_day).id,
                "site": SITE,
            },
        )
        template_id, code, schedule, drug = templates[n % len(templates)]
        therapies.create_therapy(
            session,
            {
                "patient_id": patient.id,
                "template_id": template_id,
                "hcpcs": code,
                # Every third IG patient is on a second therapy line: the SH modifier.
                "modifier": "SH" if code == "S9338" and n % 3 == 0 else None,
                "drug": drug,
                "start_date": today + timedelta(days=n % 10),
                "schedule": schedule,
            },
            today=today,
        )
