"""The catalog: what the pharmacy stocks, and the places it keeps it."""

from __future__ import annotations

import enum
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from inventory.db import Base, Money, UTCDateTime, utcnow
from inventory.users.models import enum_column


class Category(enum.StrEnum):
    ADMINISTRATION_SET = "administration_set"
    FILTER = "filter"
    CATHETER = "catheter"
    NEEDLE = "needle"
    SYRINGE = "syringe"
    FLUSH = "flush"
    PREP = "prep"
    DRESSING = "dressing"
    PPE = "ppe"
    SHARPS = "sharps"
    COLD_CHAIN = "cold_chain"
    PUMP = "pump"
    POLE = "pole"
    OTHER = "other"

    @property
    def is_equipment(self) -> bool:
        return self in (Category.PUMP, Category.POLE)


class Tracking(enum.StrEnum):
    NONE = "none"
    LOT = "lot"
    SERIAL = "serial"


class LocationKind(enum.StrEnum):
    STORAGE = "storage"
    STAGING = "staging"
    QUARANTINE = "quarantine"
    VEHICLE = "vehicle"
    CLEANING = "cleaning"
    REPAIR = "repair"


class Item(Base):
    __tablename__ = "items"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sku: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    category: Mapped[Category] = mapped_column(enum_column(Category))
    unit: Mapped[str] = mapped_column(String(32))
    tracking: Mapped[Tracking] = mapped_column(enum_column(Tracking))
    gtin: Mapped[str | None] = mapped_column(String(14), unique=True)
    reorder_point: Mapped[int] = mapped_column(Integer, default=0)
    reorder_quantity: Mapped[int] = mapped_column(Integer, default=0)
    daily_rate: Mapped[Decimal | None] = mapped_column(Money)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_equipment(self) -> bool:
        return self.category.is_equipment


class Location(Base):
    __tablename__ = "locations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    kind: Mapped[LocationKind] = mapped_column(enum_column(LocationKind))
    site: Mapped[str] = mapped_column(String(32), index=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __mapper_args__ = {"version_id_col": version}
