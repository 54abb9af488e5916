"""What happened to each serial unit: the lifecycle log behind its history."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from inventory.db import Base, UTCDateTime, utcnow
from inventory.ledger.models import BigId, EquipmentStatus
from inventory.users.models import enum_column


class EquipmentEvent(Base):
    """One status change of a unit (append-only), with the patient and kit it concerned."""

    __tablename__ = "equipment_events"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    serial_unit_id: Mapped[int] = mapped_column(ForeignKey("serial_units.id"), index=True)
    from_status: Mapped[EquipmentStatus] = mapped_column(enum_column(EquipmentStatus))
    to_status: Mapped[EquipmentStatus] = mapped_column(enum_column(EquipmentStatus))
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"))
    note: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str | None] = mapped_column(String(32))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
