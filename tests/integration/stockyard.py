"""Committed test stock in a scratch database, built through the real services."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from inventory.auth import Caller
from inventory.catalog import service as catalog
from inventory.catalog.models import Category, LocationKind, Tracking
from inventory.db import Database
from inventory.stock import service as stock
from inventory.users import service as users
from inventory.users.models import Role

_numbers = itertools.count(1)


class Stockyard:
    """One site with a shelf and a staging bench, one lot-tracked item, and users."""

    def __init__(self, database: Database) -> None:
        self.database = database
        n = next(_numbers)
        with database.transaction() as session:
            self.shelf = catalog.create_location(
                session,
                {"code": f"SHELF-{n}", "name": "shelf", "kind": LocationKind.STORAGE, "site": "S1"},
            ).id
            self.bench = catalog.create_location(
                session,
                {"code": f"BENCH-{n}", "name": "bench", "kind": LocationKind.STAGING, "site": "S1"},
            ).id
            self.item = catalog.create_item(
                session,
                {
                    "sku": f"FLUSH-{n}",
                    "name": "Saline flush 10 mL",
                    "category": Category.FLUSH,
                    "unit": "each",
                    "tracking": Tracking.LOT,
                },
            ).id
            user = users.create_user(session, {"name": "yard admin", "role": Role.ADMIN})
            self.caller = Caller(user.id, user.name, user.role, None, None)
            self.lot = f"LOT-{n}"

    def token(self, role: Role = Role.WAREHOUSE) -> str:
        with self.database.transaction() as session:
            user = users.create_user(session, {"name": f"yard {role.value}", "role": role})
            return users.issue_token(session, user).secret

    def receive(self, quantity: int, unit_cost: str = "1.0000") -> None:
        with self.database.transaction() as session:
            stock.receive(
                session,
                self.caller,
                {
                    "lines": [
                        {
                            "item_id": self.item,
                            "quantity": quantity,
                            "unit_cost": Decimal(unit_cost),
                            "location_id": self.shelf,
                            "lot": self.lot,
                            "expiry": date.today() + timedelta(days=200),
                        }
                    ]
                },
            )

    def daily_therapy(self, days: int, per_day: int = 1) -> list[int]:
        """A patient on a daily therapy for ``days`` days whose template takes ``per_day`` of
        the yard's item; returns the infusion day ids."""
        from sqlalchemy import select

        from inventory.care.models import KitTemplate, Patient, Payer, TemplateLine
        from inventory.therapies import service as therapies
        from inventory.therapies.models import InfusionDay

        n = next(_numbers)
        with self.database.transaction() as session:
            payer = Payer(name=f"payer {n}", modifier_multipliers={})
            template = KitTemplate(name=f"daily {n}", hcpcs="S9500")
            session.add_all([payer, template])
            session.flush()
            session.add(
                TemplateLine(template_id=template.id, item_id=self.item, quantity_per_day=per_day)
            )
            patient = Patient(
                external_ref=f"MRN-{n}",
                name="Pat Example",
                address_line1="1 Main St",
                city="Austin",
                state="TX",
                postal_code="78701",
                payer_id=payer.id,
                site="S1",
            )
            session.add(patient)
            session.flush()
            today = date.today()
            therapy = therapies.create_therapy(
                session,
                {
                    "patient_id": patient.id,
                    "template_id": template.id,
                    "hcpcs": "S9500",
                    "start_date": today,
                    "end_date": today + timedelta(days=days - 1),
                    "schedule": {"every_days": 1},
                },
            )
            return list(
                session.scalars(
                    select(InfusionDay.id)
                    .where(InfusionDay.therapy_id == therapy.id)
                    .order_by(InfusionDay.id)
                ).all()
            )
