"""A kit: the supplies (and course equipment) for one patient's next infusion days.

A kit owns reservations (``Reservation.kit_id``); its lines are those reservations grouped by
item, lot, serial and location. What the kit's days still lack, beyond its reservations, is
computed from the days' templates, so a recalled lot leaves a visible gap rather than a
silently smaller kit.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import JSON, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.care.models import Patient
from inventory.catalog.models import Location
from inventory.db import Base, UTCDateTime, utcnow
from inventory.users.models import enum_column


class KitStatus(enum.StrEnum):
    OPEN = "open"
    PACKED = "packed"
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    FAILED = "failed"
    RETURNED = "returned"
    CANCELLED = "cancelled"


# Kits still in the pharmacy's hands. Their picked units lie on the kit's staging bench or in
# the van (``vehicle_location`` if set, else ``staging_location``), counted in its ``reserved``.
IN_OUR_HANDS = (KitStatus.OPEN, KitStatus.PACKED, KitStatus.DISPATCHED, KitStatus.FAILED)

KIT_NUMBER_PREFIX = "K"


def kit_number(kit_id: int) -> str:
    """The printed and scanned kit number: ``K`` and the id in at least 7 digits."""
    return f"{KIT_NUMBER_PREFIX}{kit_id:07d}"


class Kit(Base):
    __tablename__ = "kits"
    __table_args__ = (Index("ix_kits_site_status", "site", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(32))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"), index=True)
    status: Mapped[KitStatus] = mapped_column(enum_column(KitStatus))
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    # Course equipment the kit carries to a patient who has none at home: {item_id: quantity}.
    equipment: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    # Where its packed units wait for dispatch.
    staging_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    # The vehicle its units ride in, from dispatch until delivered or brought back.
    vehicle_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    # Why packing must wait (a recalled lot to pull out and replace), shown to the packer.
    hold_reason: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    packed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    packed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    cancelled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    cancel_reason: Mapped[str | None] = mapped_column(String(200))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    patient: Mapped[Patient] = relationship()
    staging_location: Mapped[Location | None] = relationship(foreign_keys=[staging_location_id])
    vehicle_location: Mapped[Location | None] = relationship(foreign_keys=[vehicle_location_id])

    __mapper_args__ = {"version_id_col": version}

    @property
    def number(self) -> str:
        return kit_number(self.id)
