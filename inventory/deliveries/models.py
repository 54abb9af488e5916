"""Routes and their stops, delivery confirmations with their signatures, returns."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    Date,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.catalog.models import Location
from inventory.db import Base, Money, UTCDateTime, utcnow
from inventory.kits.models import Kit
from inventory.ledger.models import BigId, Lot, SerialUnit
from inventory.users.models import User, enum_column


class RouteStatus(enum.StrEnum):
    PLANNED = "planned"
    DISPATCHED = "dispatched"
    COMPLETED = "completed"


class StopStatus(enum.StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
    COLLECTED = "collected"  # a pick-up stop whose return was recorded


class StopKind(enum.StrEnum):
    DELIVERY = "delivery"  # hand over a packed kit
    PICKUP = "pickup"  # collect equipment and unused goods of a delivered kit


class Route(Base):
    __tablename__ = "routes"
    __table_args__ = (Index("ix_routes_driver_date", "driver_id", "date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    site: Mapped[str] = mapped_column(String(32), index=True)
    driver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    date: Mapped[date] = mapped_column(Date)
    status: Mapped[RouteStatus] = mapped_column(enum_column(RouteStatus))
    # The vehicle the stock rides in, fixed at dispatch.
    vehicle_location_id: Mapped[int | None] = mapped_column(ForeignKey("locations.id"))
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    version: Mapped[int] = mapped_column(Integer, default=1)

    driver: Mapped[User] = relationship(foreign_keys=[driver_id])
    vehicle: Mapped[Location | None] = relationship()
    stops: Mapped[list[RouteStop]] = relationship(
        back_populates="route", order_by="RouteStop.sequence"
    )

    __mapper_args__ = {"version_id_col": version}


class RouteStop(Base):
    __tablename__ = "route_stops"
    __table_args__ = (
        UniqueConstraint("route_id", "kit_id"),
        UniqueConstraint("route_id", "sequence"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    route_id: Mapped[int] = mapped_column(ForeignKey("routes.id"))
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    status: Mapped[StopStatus] = mapped_column(enum_column(StopStatus))
    kind: Mapped[StopKind] = mapped_column(enum_column(StopKind), default=StopKind.DELIVERY)

    route: Mapped[Route] = relationship(back_populates="stops")
    kit: Mapped[Kit] = relationship()


class Outcome(enum.StrEnum):
    DELIVERED = "delivered"
    FAILED = "failed"


class FailureReason(enum.StrEnum):
    NOT_HOME = "not_home"
    REFUSED = "refused"
    ADDRESS_ISSUE = "address_issue"
    OTHER = "other"


class Signature(Base):
    """A recipient's signature: the PNG as captured, kept with the delivery it proves."""

    __tablename__ = "signatures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    png: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Delivery(Base):
    """One confirmation from the doorstep: delivered (with proof) or failed (with a reason).
    Never edited: a reversal is a row of its own."""

    __tablename__ = "deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"), index=True)
    stop_id: Mapped[int] = mapped_column(ForeignKey("route_stops.id"))
    driver_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    outcome: Mapped[Outcome] = mapped_column(enum_column(Outcome))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    recipient_name: Mapped[str | None] = mapped_column(String(120))
    relationship_to_patient: Mapped[str | None] = mapped_column("relationship", String(60))
    signature_id: Mapped[int | None] = mapped_column(ForeignKey("signatures.id"))
    # GPS in millionths of a degree (about 11 cm): exact, and an integer on every database.
    latitude_e6: Mapped[int | None] = mapped_column(Integer)
    longitude_e6: Mapped[int | None] = mapped_column(Integer)
    failure_reason: Mapped[FailureReason | None] = mapped_column(enum_column(FailureReason))
    note: Mapped[str | None] = mapped_column(Text)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("stock_documents.id"))

    stop: Mapped[RouteStop] = relationship()
    signature: Mapped[Signature | None] = relationship()


class DeliveryReversal(Base):
    """A delivery confirmed by mistake, undone by compensating movements."""

    __tablename__ = "delivery_reversals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id"), unique=True)
    reason: Mapped[str] = mapped_column(String(500))
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    document_id: Mapped[int] = mapped_column(ForeignKey("stock_documents.id"))


class Condition(enum.StrEnum):
    UNOPENED = "unopened"
    OPENED = "opened"
    DAMAGED = "damaged"
    EXPIRED = "expired"


class Disposition(enum.StrEnum):
    QUARANTINE = "quarantine"  # unopened: restocked after inspection, by a transfer
    DISPOSAL = "disposal"  # opened, damaged, expired: waste
    CLEANING = "cleaning"  # equipment: dirty, to be cleaned


class KitReturn(Base):
    """What a driver brought back from a patient, line by line, valued at cost."""

    __tablename__ = "kit_returns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kit_id: Mapped[int] = mapped_column(ForeignKey("kits.id"), index=True)
    actor_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sharps_containers: Mapped[int] = mapped_column(Integer, default=0)
    document_id: Mapped[int | None] = mapped_column(ForeignKey("stock_documents.id"))

    lines: Mapped[list[KitReturnLine]] = relationship(order_by="KitReturnLine.id")


class KitReturnLine(Base):
    __tablename__ = "kit_return_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    return_id: Mapped[int] = mapped_column(ForeignKey("kit_returns.id"), index=True)
    item_id: Mapped[int] = mapped_column(ForeignKey("items.id"))
    lot_id: Mapped[int | None] = mapped_column(ForeignKey("lots.id"))
    serial_unit_id: Mapped[int | None] = mapped_column(ForeignKey("serial_units.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    condition: Mapped[Condition] = mapped_column(enum_column(Condition))
    disposition: Mapped[Disposition] = mapped_column(enum_column(Disposition))
    unit_cost: Mapped[Decimal] = mapped_column(Money)

    lot: Mapped[Lot | None] = relationship()
    serial_unit: Mapped[SerialUnit | None] = relationship()
