"""Therapies and their infusion days: the schedule that planning reserves supplies for."""

from __future__ import annotations

import enum
from datetime import date, datetime
from typing import Any

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.care.models import KitTemplate, Patient
from inventory.db import Base, UTCDateTime, utcnow
from inventory.users.models import enum_column


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
    kit_id: Mapped[int | None] = mapped_column(Integer, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    therapy: Mapped[Therapy] = relationship()

    __mapper_args__ = {"version_id_col": version}
