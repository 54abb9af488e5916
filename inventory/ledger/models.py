"""The stock ledger: lots, serial units, documents, movements, balances and cost layers.

Movements are the truth and are append-only (database triggers refuse UPDATE and DELETE).
Balances and cost layers are kept by :func:`inventory.ledger.service.post_movements`, in the
same transaction, and always equal what the movements add up to.
"""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.catalog.models import Item, Location
from inventory.db import Base, Money, UTCDateTime, utcnow
from inventory.users.models import User, enum_column

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class MovementType(enum.StrEnum):
    RECEIPT = "receipt"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    PICK = "pick"  # a packed kit's units, storage to staging
    DISPATCH = "dispatch"  # staging (or another vehicle) to the driver's vehicle
    DELIVERY = "delivery"  # vehicle to the patient
    RETURN = "return"  # patient to quarantine, cleaning or disposal
    REVERSAL = "reversal"  # a delivery confirmed by mistake: patient back to the vehicle


class Party(enum.StrEnum):
    """Ledger endpoints outside the pharmacy's own locations."""

    SUPPLIER = "supplier"
    PATIENT = "patient"
    DISPOSAL = "disposal"
    ADJUSTMENT = "adjustment"


class AdjustmentReason(enum.StrEnum):
    COUNT = "count"
    DAMAGED = "damaged"
    EXPIRED = "expired"
    RECALLED = "recalled"
    LOST = "lost"
    FOUND = "found"


class EquipmentStatus(enum.StrEnum):
    AVAILABLE = "available"
    RESERVED = "reserved"
    AT_PATIENT = "at_patient"
    DIRTY = "dirty"
    CLEANING = "cleaning"
    REPAIR = "repair"
    RETIRED = "retired"


class Lot(Base):
    __tablename__ = "lots"
    __table_args__ = (UniqueConstraint("item_id", "lot_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_number: Mapped[str] = mapped_column(String(20))
    expiry: Mapped[date] = mapped_column(Date, index=True)
    recalled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    item: Mapped[Item] = relationship()


class SerialUnit(Base):
    __tablename__ = "serial_units"
    __table_args__ = (UniqueConstraint("item_id", "serial"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    serial: Mapped[str] = mapped_column(String(20))
    status: Mapped[EquipmentStatus] = mapped_column(enum_column(EquipmentStatus))
    # None while the unit is outside the pharmacy's locations (at a patient, disposed).
    location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    unit_cost: Mapped[Decimal] = mapped_column(Money)
    pm_due: Mapped[date | None] = mapped_column(Date)
    # The patient whose home the unit is at (status at_patient), else None.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patients.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    version: Mapped[int] = mapped_column(Integer, default=1)

    item: Mapped[Item] = relationship()

    __mapper_args__ = {"version_id_col": version}


class DocumentType(enum.StrEnum):
    RECEIPT = "receipt"
    TRANSFER = "transfer"
    ADJUSTMENT = "adjustment"
    KIT = "kit"  # packing a kit, or putting a cancelled kit's units back
    RECALL = "recall"
    EQUIPMENT = "equipment"  # retiring a unit
    DISPATCH = "dispatch"
    DELIVERY = "delivery"
    RETURN = "return"
    REVERSAL = "reversal"


class StockDocument(Base):
    """The business document a group of movements belongs to (a receipt, a transfer...)."""

    __tablename__ = "stock_documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[DocumentType] = mapped_column(enum_column(DocumentType))
    site: Mapped[str] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(120))
    reason: Mapped[str | None] = mapped_column(String(32))
    note: Mapped[str | None] = mapped_column(Text)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    # The kit the document packs, unpacks (and later dispatches, delivers, takes back).
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"), index=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    actor: Mapped[User] = relationship()
    movements: Mapped[list[Movement]] = relationship(
        back_populates="document", order_by="Movement.id"
    )


class Movement(Base):
    __tablename__ = "stock_movements"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint("(from_location_id IS NULL) <> (from_party IS NULL)", name="one_source"),
        CheckConstraint("(to_location_id IS NULL) <> (to_party IS NULL)", name="one_destination"),
        Index("ix_stock_movements_site_occurred_at", "site", "occurred_at"),
        Index("ix_stock_movements_item_lot", "item_id", "lot_id"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    document_id: Mapped[int] = mapped_column(ForeignKey("stock_documents.id"), index=True)
    type: Mapped[MovementType] = mapped_column(enum_column(MovementType))
    site: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    serial_unit_id: Mapped[int | None] = mapped_column(ForeignKey("serial_units.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    from_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    from_party: Mapped[Party | None] = mapped_column(enum_column(Party))
    to_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"), index=True)
    to_party: Mapped[Party | None] = mapped_column(enum_column(Party))
    unit_cost: Mapped[Decimal] = mapped_column(Money)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reason: Mapped[str | None] = mapped_column(String(32))
    reference: Mapped[str | None] = mapped_column(String(120))

    document: Mapped[StockDocument] = relationship(back_populates="movements")
    item: Mapped[Item] = relationship()
    lot: Mapped[Lot | None] = relationship()
    serial_unit: Mapped[SerialUnit | None] = relationship()
    from_location: Mapped[Location | None] = relationship(foreign_keys=[from_location_id])
    to_location: Mapped[Location | None] = relationship(foreign_keys=[to_location_id])
    actor: Mapped[User] = relationship()


class Balance(Base):
    """On hand and reserved units of one item (and lot) at one location."""

    __tablename__ = "stock_balances"
    __table_args__ = (
        UniqueConstraint("item_id", "lot_id", "location_id", postgresql_nulls_not_distinct=True),
        CheckConstraint("on_hand >= 0", name="on_hand_not_negative"),
        CheckConstraint("reserved >= 0 AND reserved <= on_hand", name="reserved_within_on_hand"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"), index=True)
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"), index=True)
    site: Mapped[str] = mapped_column(String(32), index=True)
    on_hand: Mapped[int] = mapped_column(Integer, default=0)
    reserved: Mapped[int] = mapped_column(Integer, default=0)

    item: Mapped[Item] = relationship()
    lot: Mapped[Lot | None] = relationship()
    location: Mapped[Location] = relationship()

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


class CostLayer(Base):
    """Units at one location that share a purchase cost; consumed first in, first out."""

    __tablename__ = "cost_layers"
    __table_args__ = (
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
        Index("ix_cost_layers_stock", "item_id", "lot_id", "location_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    unit_cost: Mapped[Decimal] = mapped_column(Money)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    quantity: Mapped[int] = mapped_column(Integer)


class ReservationStatus(enum.StrEnum):
    ACTIVE = "active"
    PICKED = "picked"
    RELEASED = "released"


class Reservation(Base):
    """Units held for an infusion day (supplies) or a therapy's course (serial equipment).

    Active: held in storage; its quantity counts in the balance's ``reserved`` at (item, lot,
    location). Picked: packed into a kit and moved out of storage; while the kit is in the
    pharmacy's hands its units count in the ``reserved`` of the kit's bench or van, and once
    delivered in none. Released: given up. Only the ledger (hold, release, pick and the held
    legs of :func:`~inventory.ledger.service.post_movements`) changes either.
    """

    __tablename__ = "reservations"
    __table_args__ = (
        CheckConstraint("quantity > 0", name="quantity_positive"),
        CheckConstraint(
            "packed_quantity >= 0 AND packed_quantity <= quantity", name="packed_within_quantity"
        ),
        Index("ix_reservations_stock", "item_id", "lot_id", "location_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    site: Mapped[str] = mapped_column(String(32))
    therapy_id: Mapped[int] = mapped_column(ForeignKey("therapies.id"), index=True)
    infusion_day_id: Mapped[int | None] = mapped_column(ForeignKey("infusion_days.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    location_id: Mapped[int] = mapped_column(ForeignKey("locations.id"))
    serial_unit_id: Mapped[int | None] = mapped_column(ForeignKey("serial_units.id"), index=True)
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[ReservationStatus] = mapped_column(enum_column(ReservationStatus))
    # The kit the units are packed into, and how many of them a packer has scanned.
    kit_id: Mapped[int | None] = mapped_column(ForeignKey("kits.id"), index=True)
    packed_quantity: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    release_reason: Mapped[str | None] = mapped_column(String(64))

    item: Mapped[Item] = relationship()
    lot: Mapped[Lot | None] = relationship()
    location: Mapped[Location] = relationship()
    serial_unit: Mapped[SerialUnit | None] = relationship()


class ClosedPeriod(Base):
    """A month finance has closed: no movement may be dated inside it any more.

    Months are in the pharmacy's business time zone (``INVENTORY_TIMEZONE``) and close for
    every site at once.
    """

    __tablename__ = "closed_periods"

    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # YYYY-MM
    first_day: Mapped[date] = mapped_column(Date)
    last_day: Mapped[date] = mapped_column(Date)
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    closed_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    note: Mapped[str | None] = mapped_column(Text)
