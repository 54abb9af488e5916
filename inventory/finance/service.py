"""Closing periods and reconciling billed claims."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import date
from typing import Any

from sqlalchemy import func, insert, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from inventory.auth import Caller
from inventory.db import business_date, utcnow
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.finance import costing, rules
from inventory.finance.models import ClosedDay, MatchOutcome, Reconciliation, ReconciliationLine
from inventory.ledger.models import ClosedPeriod


def checked_period(first: date, last: date) -> None:
    problem = rules.period_problem(first, last)
    if problem is not None:
        raise InvalidInput(problem, errors={"from": [problem], "to": [problem]})


# --- periods --------------------------------------------------------------------------------


def list_periods(session: Session) -> list[ClosedPeriod]:
    return list(session.scalars(select(ClosedPeriod).order_by(ClosedPeriod.first_day)))


def close_period(session: Session, caller: Caller, month: str, note: str | None) -> ClosedPeriod:
    """Close a month for every site: snapshot its figures, then refuse movements dated in it.

    On PostgreSQL the close takes the ``closed_periods`` table in EXCLUSIVE mode: it waits for
    writers that already checked the month was open, and makes later ones wait for the close
    and then see it (see :func:`inventory.ledger.service.refuse_closed_period`).
    """
    try:
        first, last = rules.month_bounds(month)
    except ValueError:
        raise InvalidInput.field("month", "must be a month written YYYY-MM") from None
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("LOCK TABLE closed_periods IN EXCLUSIVE MODE"))
    if session.get(ClosedPeriod, month) is not None:
        raise Conflict(f"The period {month} is already closed.", extra={"period": month})
    today = business_date(session, utcnow())
    if last >= today:
        raise Conflict(
            f"The period {month} is not over yet: a month can be closed from the day after its "
            "last day.",
            extra={"period": month},
        )
    period = ClosedPeriod(
        month=month,
        first_day=first,
        last_day=last,
        closed_at=utcnow(),
        closed_by=caller.user_id,
        note=note,
    )
    session.add(period)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(f"The period {month} is already closed.", extra={"period": month}) from None
    scope = costing.Scope(first, last)  # computed live: the month is not frozen yet
    batch: list[dict[str, Any]] = []
    for row in costing.day_rows(session, scope):
        batch.append(_snapshot(month, row))
        if len(batch) >= 1000:
            session.execute(insert(ClosedDay), batch)
            batch = []
    if batch:
        session.execute(insert(ClosedDay), batch)
    return period


def _snapshot(month: str, row: costing.DayRow) -> dict[str, Any]:
    subject = row.subject
    return {
        "month": month,
        "site": subject.site,
        "day": row.day,
        "therapy_id": subject.therapy_id,
        "patient_id": subject.patient_id,
        "external_ref": subject.external_ref,
        "payer_id": subject.payer_id,
        "payer_name": subject.payer_name,
        "hcpcs": subject.hcpcs,
        "modifier": subject.modifier,
        "kit_ids": ",".join(str(kit) for kit in row.kit_ids),
        "rate": row.rate,
        "per_diem_units": row.figures.per_diem_units,
        "supply_cost": row.figures.supply_cost,
        "return_credit": row.figures.return_credit,
        "waste_cost": row.figures.waste_cost,
        "equipment_cost": row.figures.equipment_cost,
        "expected_revenue": row.figures.expected_revenue,
    }


def period_view(session: Session, period: ClosedPeriod) -> dict[str, Any]:
    days = session.scalar(select(func.count()).where(ClosedDay.month == period.month))
    return {
        "month": period.month,
        "first_day": period.first_day,
        "last_day": period.last_day,
        "closed_at": period.closed_at,
        "closed_by": period.closed_by,
        "note": period.note,
        "rows": days or 0,
    }


# --- reconciliation -------------------------------------------------------------------------


def reconcile(
    session: Session,
    caller: Caller,
    claims: Sequence[rules.Claim],
    *,
    source: str,
    period_from: date | None,
    period_to: date | None,
    site: str | None,
) -> Reconciliation:
    """Claims against what was delivered over the period (by default the claims' own span)."""
    if not claims and (period_from is None or period_to is None):
        raise InvalidInput.field("claims", "no claims to reconcile: send some, or a from/to period")
    first = period_from or min(claim.date_of_service for claim in claims)
    last = period_to or max(claim.date_of_service for claim in claims)
    checked_period(first, last)
    outside = [c.line for c in claims if not first <= c.date_of_service <= last]
    if outside:
        raise InvalidInput(
            f"{len(outside)} claim(s) fall outside the period {first} to {last}",
            errors={
                f"line {line}.date_of_service": ["is outside the period"] for line in outside[:50]
            },
        )
    scope = costing.scope_for(session, first, last, site)
    delivered = (
        rules.Delivered(
            row.subject.external_ref,
            row.subject.hcpcs,
            row.day,
            row.figures.per_diem_units,
            row.figures.expected_revenue,
        )
        for row in costing.day_rows(session, scope)
    )
    result = rules.reconcile(claims, delivered)
    reconciliation = Reconciliation(
        period_from=first,
        period_to=last,
        site=site,
        source=source,
        claim_lines=len(claims),
        created_by=caller.user_id,
    )
    session.add(reconciliation)
    session.flush()
    rows = []
    for outcome, matches in (
        (MatchOutcome.MATCHED, result.matched),
        (MatchOutcome.BILLED_NOT_DELIVERED, result.billed_not_delivered),
        (MatchOutcome.DELIVERED_NOT_BILLED, result.delivered_not_billed),
        (MatchOutcome.UNIT_MISMATCH, result.unit_mismatches),
    ):
        for match in matches:
            rows.append(
                {
                    "reconciliation_id": reconciliation.id,
                    "outcome": outcome,
                    "external_ref": match.external_ref,
                    "hcpcs": match.hcpcs,
                    "date_of_service": match.date_of_service,
                    "billed_units": match.billed_units,
                    "delivered_units": match.delivered_units,
                    "billed_amount": match.billed_amount,
                    "expected_revenue": match.expected_revenue,
                    "claim_lines": ",".join(str(line) for line in match.lines),
                }
            )
    for start in range(0, len(rows), 1000):
        session.execute(insert(ReconciliationLine), rows[start : start + 1000])
    session.expire(reconciliation, ["lines"])
    return reconciliation


def get_reconciliation(session: Session, reconciliation_id: int) -> Reconciliation:
    reconciliation = session.get(Reconciliation, reconciliation_id)
    if reconciliation is None:
        raise NotFound(f"No reconciliation {reconciliation_id}.")
    return reconciliation


def line_view(line: ReconciliationLine) -> dict[str, Any]:
    return {
        "outcome": line.outcome.value,
        "external_ref": line.external_ref,
        "hcpcs": line.hcpcs,
        "date_of_service": line.date_of_service,
        "billed_units": line.billed_units,
        "delivered_units": line.delivered_units,
        "billed_amount": rules.from_cents(rules.to_cents(line.billed_amount)),
        "expected_revenue": rules.from_cents(rules.to_cents(line.expected_revenue)),
        "amount_difference": rules.from_cents(
            rules.to_cents(line.billed_amount) - rules.to_cents(line.expected_revenue)
        ),
        "claim_lines": [int(n) for n in line.claim_lines.split(",") if n],
    }


def reconciliation_view(reconciliation: Reconciliation) -> dict[str, Any]:
    buckets: dict[str, list[dict[str, Any]]] = {outcome.value: [] for outcome in MatchOutcome}
    for line in reconciliation.lines:
        buckets[line.outcome.value].append(line_view(line))
    return {
        "id": reconciliation.id,
        "from_": reconciliation.period_from,
        "to": reconciliation.period_to,
        "site": reconciliation.site,
        "source": reconciliation.source,
        "claim_lines": reconciliation.claim_lines,
        "created_at": reconciliation.created_at,
        "created_by": reconciliation.created_by,
        "matched": len(buckets["matched"]),
        "matched_lines": buckets["matched"],
        "billed_not_delivered": buckets["billed_not_delivered"],
        "delivered_not_billed": buckets["delivered_not_billed"],
        "unit_mismatches": buckets["unit_mismatch"],
    }


def reconciliation_lines(reconciliation: Reconciliation) -> Iterator[dict[str, Any]]:
    for line in reconciliation.lines:
        yield line_view(line)
