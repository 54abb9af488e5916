"""Care: payers and their fee schedules, patients and kit templates.

Patient names, addresses and phone numbers are protected health information: they are only
serialized for the roles allowed to read patients and never appear in logs or error messages
(errors name patients by their internal id only).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import JSON, Date, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.catalog.models import Item
from inventory.db import Base, Money, UTCDateTime, utcnow
from inventory.users.models import enum_column


class Counting(enum.StrEnum):
    """How a payer counts per diem units."""

    DOSE_DAY = "dose_day"
    CALENDAR_DAY = "calendar_day"


DEFAULT_MODIFIER_MULTIPLIERS = {"SH": "0.5000", "SJ": "0.0000"}


class Payer(Base):
    __tablename__ = "payers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    # Modifier → multiplier of the rate, as decimal strings, e.g. {"SH": "0.5000"}.
    modifier_multipliers: Mapped[dict[str, str]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    rates: Mapped[list[PayerRate]] = relationship(
        back_populates="payer", order_by="(PayerRate.hcpcs, PayerRate.effective_from)"
    )

    __mapper_args__ = {"version_id_col": version}


class PayerRate(Base):
    """One line of a payer's fee schedule: the rate for a code from a date on."""

    __tablename__ = "payer_rates"
    __table_args__ = (UniqueConstraint("payer_id", "hcpcs", "effective_from"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    hcpcs: Mapped[str] = mapped_column(String(5))
    rate: Mapped[Decimal] = mapped_column(Money)
    counting: Mapped[Counting] = mapped_column(enum_column(Counting))
    effective_from: Mapped[date] = mapped_column(Date)

    payer: Mapped[Payer] = relationship(back_populates="rates")


class Patient(Base):
    __tablename__ = "patients"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_ref: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    address_line1: Mapped[str] = mapped_column(String(200))
    address_line2: Mapped[str | None] = mapped_column(String(200))
    city: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(2))
    postal_code: Mapped[str] = mapped_column(String(10))
    phone: Mapped[str | None] = mapped_column(String(32))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"), index=True)
    site: Mapped[str] = mapped_column(String(32), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    payer: Mapped[Payer] = relationship()

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:  # never the name or address, wherever a repr ends up
        return f"<Patient {self.id}>"


class KitTemplate(Base):
    """The standard supplies per infusion day for a therapy, plus the equipment per course."""

    __tablename__ = "kit_templates"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(120), unique=True)
    hcpcs: Mapped[str] = mapped_column(String(5))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[TemplateLine]] = relationship(order_by="TemplateLine.id")
    equipment: Mapped[list[TemplateEquipment]] = relationship(order_by="TemplateEquipment.id")


class TemplateLine(Base):
    __tablename__ = "kit_template_lines"
    __table_args__ = (UniqueConstraint("template_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("kit_templates.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    quantity_per_day: Mapped[int] = mapped_column(Integer)

    item: Mapped[Item] = relationship()


class TemplateEquipment(Base):
    __tablename__ = "kit_template_equipment"
    __table_args__ = (UniqueConstraint("template_id", "item_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("kit_templates.id"))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    quantity: Mapped[int] = mapped_column(Integer)

    item: Mapped[Item] = relationship()
