"""Imports every feature's models so the metadata (and Alembic) sees the whole schema."""

from inventory.catalog.models import Item, Location
from inventory.db import Base
from inventory.idempotency import IdempotencyRecord
from inventory.ledger.models import Balance, CostLayer, Lot, Movement, SerialUnit, StockDocument
from inventory.users.models import ApiToken, User

__all__ = [
    "ApiToken",
    "Balance",
    "Base",
    "CostLayer",
    "IdempotencyRecord",
    "Item",
    "Location",
    "Lot",
    "Movement",
    "SerialUnit",
    "StockDocument",
    "User",
]
