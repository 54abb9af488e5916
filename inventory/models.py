"""Imports every feature's models so the metadata (and Alembic) sees the whole schema."""

from inventory.care.models import (
    KitTemplate,
    Patient,
    Payer,
    PayerRate,
    TemplateEquipment,
    TemplateLine,
)
from inventory.catalog.models import Item, Location
from inventory.db import Base
from inventory.deliveries.models import (
    Delivery,
    DeliveryReversal,
    KitReturn,
    KitReturnLine,
    Route,
    RouteStop,
    Signature,
)
from inventory.equipment.models import EquipmentEvent
from inventory.finance.models import ClosedDay, Reconciliation, ReconciliationLine
from inventory.idempotency import IdempotencyRecord
from inventory.kits.models import Kit
from inventory.ledger.models import (
    Balance,
    ClosedPeriod,
    CostLayer,
    Lot,
    Movement,
    Reservation,
    SerialUnit,
    StockDocument,
)
from inventory.therapies.models import InfusionDay, Therapy
from inventory.users.models import ApiToken, User

__all__ = [
    "ApiToken",
    "Balance",
    "Base",
    "ClosedDay",
    "ClosedPeriod",
    "CostLayer",
    "Delivery",
    "DeliveryReversal",
    "EquipmentEvent",
    "IdempotencyRecord",
    "InfusionDay",
    "Item",
    "Kit",
    "KitReturn",
    "KitReturnLine",
    "KitTemplate",
    "Location",
    "Lot",
    "Movement",
    "Patient",
    "Payer",
    "PayerRate",
    "Reconciliation",
    "ReconciliationLine",
    "Reservation",
    "Route",
    "RouteStop",
    "SerialUnit",
    "Signature",
    "StockDocument",
    "TemplateEquipment",
    "TemplateLine",
    "Therapy",
    "User",
]
