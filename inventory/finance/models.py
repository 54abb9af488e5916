"""What finance keeps: the figures of closed months, and reconciliations of billed claims."""

from __future__ import annotations

import enum
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from inventory.db import Base, Money, UTCDateTime, utcnow
from inventory.ledger.models import BigId
from inventory.users.models import enum_column


class ClosedDay(Base):
    """One drill-down row of a closed month, as it stood when the month closed.

    Reports read closed months from here, so they come out the same, byte for byte, whatever
    changes later (a fee schedule edited, a patient moved to another payer or site).
    Amounts are whole cents.
    """

    __tablename__ = "closed_days"
    __table_args__ = (
        Index("ix_closed_days_month_site", "month", "site"),
        Index("ix_closed_days_patient_day", "patient_id", "day"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    month: Mapped[str] = mapped_column(ForeignKey("closed_periods.month"))
    site: Mapped[str] = mapped_column(String(32))
    day: Mapped[date] = mapped_column(Date)
    therapy_id: Mapped[int] = mapped_column(ForeignKey("therapies.id"))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patients.id"))
    external_ref: Mapped[str] = mapped_column(String(64))
    payer_id: Mapped[int] = mapped_column(ForeignKey("payers.id"))
    payer_name: Mapped[str] = mapped_column(String(120))
    hcpcs: Mapped[str] = mapped_column(String(5))
    modifier: Mapped[str | None] = mapped_column(String(2))
    kit_ids: Mapped[str] = mapped_column(Text)  # "12,15"
    rate: Mapped[Decimal | None] = mapped_column(Money)
    per_diem_units: Mapped[int] = mapped_column(Integer)
    supply_cost: Mapped[int] = mapped_column(BigInteger)
    return_credit: Mapped[int] = mapped_column(BigInteger)
    waste_cost: Mapped[int] = mapped_column(BigInteger)
    equipment_cost: Mapped[int] = mapped_column(BigInteger)
    expected_revenue: Mapped[int] = mapped_column(BigInteger)


class MatchOutcome(enum.StrEnum):
    MATCHED = "matched"
    BILLED_NOT_DELIVERED = "billed_not_delivered"
    DELIVERED_NOT_BILLED = "delivered_not_billed"
    UNIT_MISMATCH = "unit_mismatch"


class Reconciliation(Base):
    """Billed claims checked against delivered per diem units, kept to be read back."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    period_from: Mapped[date] = mapped_column(Date)
    period_to: Mapped[date] = mapped_column(Date)
    site: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(8))  # csv | json
    claim_lines: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[int] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    lines: Mapped[list[ReconciliationLine]] = relationship(
        order_by="ReconciliationLine.id", cascade="all, delete-orphan"
    )


class ReconciliationLine(Base):
    __tablename__ = "reconciliation_lines"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    reconciliation_id: Mapped[int] = mapped_column(ForeignKey("reconciliations.id"), index=True)
    outcome: Mapped[MatchOutcome] = mapped_column(enum_column(MatchOutcome))
    external_ref: Mapped[str] = mapped_column(String(64))
    hcpcs: Mapped[str] = mapped_column(String(5))
    date_of_service: Mapped[date] = mapped_column(Date)
    billed_units: Mapped[int] = mapped_column(Integer)
    delivered_units: Mapped[int] = mapped_column(Integer)
    billed_amount: Mapped[Decimal] = mapped_column(Money)
    expected_revenue: Mapped[Decimal] = mapped_column(Money)
    claim_lines: Mapped[str] = mapped_column(Text)  # the line numbers of the claims, "3,9"
