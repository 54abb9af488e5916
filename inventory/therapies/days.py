"""Creating infusion days from schedules (used on creation and by every planning run)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import insert, or_, select, update
from sqlalchemy.orm import Session

from inventory.care.rules import expand, parse_schedule, schedule_horizon
from inventory.db import utcnow
from inventory.therapies.models import InfusionDay, InfusionDayStatus, Therapy, TherapyStatus


def schedule_days(session: Session, therapy: Therapy, today: date) -> int:
    """Create the therapy's infusion days after ``scheduled_through`` up to its horizon
    (its end date, or a rolling year). Never before today. Returns how many were created."""
    horizon = schedule_horizon(therapy.start_date, therapy.end_date, today)
    already = therapy.scheduled_through
    if already >= horizon:
        return 0
    first = max(therapy.start_date, today)
    dates = [
        day
        for day in expand(parse_schedule(therapy.schedule), therapy.start_date, horizon)
        if day >= first and day > already
    ]
    _insert_days(session, therapy, dates)
    session.execute(
        update(Therapy)
        .where(Therapy.id == therapy.id)
        .values(scheduled_through=horizon, version=Therapy.version + 1)
        .execution_options(synchronize_session=False)
    )
    session.expire(therapy)
    return len(dates)


def _insert_days(session: Session, therapy: Therapy, dates: Sequence[date]) -> None:
    if not dates:
        return
    now = utcnow()
    session.execute(
        insert(InfusionDay),
        [
            {
                "therapy_id": therapy.id,
                "patient_id": therapy.patient_id,
                "site": therapy.site,
                "date": day,
                "status": InfusionDayStatus.SCHEDULED,
                "created_at": now,
                "version": 1,
            }
            for day in dates
        ],
    )


def extend_schedules(session: Session, today: date, site: str | None = None) -> int:
    """Roll every active open-ended therapy's days forward to a year ahead."""
    query = select(Therapy).where(
        Therapy.status == TherapyStatus.ACTIVE,
        Therapy.scheduled_through < schedule_horizon(today, None, today),
        or_(Therapy.end_date.is_(None), Therapy.scheduled_through < Therapy.end_date),
    )
    if site is not None:
        query = query.where(Therapy.site == site)
    created = 0
    for therapy in session.scalars(query).all():
        created += schedule_days(session, therapy, today)
    return created
