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
