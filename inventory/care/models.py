"""Care: payers and their fee schedules, patients, kit templates, therapies and infusion days.

Patient names, addresses and phone numbers are protected health information: they are only
serialized for the roles allowed to read patients and never appear in logs or error messages
(errors name patients by their internal id only).
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
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


class TherapyStatus(enum.StrEnum):
    ACTIVE = "active"
    DISCONTINUED = "discontinued"


class Therapy(Base):
    __tablename__ = "therapies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    template_id: Mapped[int] = mapped_column(ForeignKey("kit_templates.id"))
    site: Mapped[str] = mapped_column(String(32), index=True)
    hcpcs: Mapped[str] = mapped_column(String(5))
    modifier: Mapped[str | None] = mapped_column(String(2))
    drug: Mapped[str | None] = mapped_column(String(200))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    # {"every_days": 14} | {"weekdays": ["mon", "thu"]} | {"dates": ["2026-12-01", ...]}
    schedule: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[TherapyStatus] = mapped_column(enum_column(TherapyStatus))
    # Infusion days exist up to this date; planning rolls it forward for open-ended therapies.
    scheduled_through: Mapped[date] = mapped_column(Date)
    discontinued_on: Mapped[date | None] = mapped_column(Date)
    equipment_pickup_due: Mapped[date | None] = mapped_column(Date)
    note: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    patient: Mapped[Patient] = relationship()
    template: Mapped[KitTemplate] = relationship()

    __mapper_args__ = {"version_id_col": version}


class InfusionDayStatus(enum.StrEnum):
    SCHEDULED = "scheduled"
    RESERVED = "reserved"
    SHORT = "short"
    PACKED = "packed"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"


class InfusionDay(Base):
    __tablename__ = "infusion_days"
    __table_args__ = (
        Index("ix_infusion_days_site_date", "site", "date"),
        Index("ix_infusion_days_therapy_date", "therapy_id", "date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    therapy_id: Mapped[int] = mapped_column(ForeignKey("therapies.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    site: Mapped[str] = mapped_column(String(32))
    date: Mapped[date] = mapped_column(Date)
    status: Mapped[InfusionDayStatus] = mapped_column(enum_column(InfusionDayStatus))
    kit_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    therapy: Mapped[Therapy] = relationship()

    __mapper_args__ = {"version_id_col": version}
