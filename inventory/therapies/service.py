"""Therapy use cases: create (which schedules the infusion days), move, cancel, discontinue.

Whatever changes an infusion day first takes the item locks that guard its reservations
(:func:`inventory.planning.service.lock_therapies`), the same locks planning takes.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session

from inventory.care.models import KitTemplate, Patient
from inventory.care.rules import ScheduleError, parse_schedule
from inventory.db import utcnow
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.planning import service as planning
from inventory.schemas import decode_cursor, encode_cursor, paginate
from inventory.therapies.days import schedule_days
from inventory.therapies.models import InfusionDay, InfusionDayStatus, Therapy, TherapyStatus

LOCKED_DAY = (InfusionDayStatus.PACKED, InfusionDayStatus.DELIVERED)


def get_therapy(session: Session, therapy_id: int) -> Therapy:
    therapy = session.get(Therapy, therapy_id)
    if therapy is None:
        raise NotFound(f"No therapy {therapy_id}.")
    return therapy


def get_day(session: Session, day_id: int) -> InfusionDay:
    day = session.get(InfusionDay, day_id)
    if day is None:
        raise NotFound(f"No infusion day {day_id}.")
    return day


def create_therapy(session: Session, fields: dict[str, Any], today: date | None = None) -> Therapy:
    """Start a therapy for a patient and create its infusion days (to the end, or a year)."""
    today = today or utcnow().date()
    patient = session.get(Patient, fields["patient_id"])
    if patient is None:
        raise InvalidInput.field("patient_id", f"no patient {fields['patient_id']}")
    if session.get(KitTemplate, fields["template_id"]) is None:
        raise InvalidInput.field("template_id", f"no kit template {fields['template_id']}")
    try:
        schedule = parse_schedule(fields["schedule"])
    except ScheduleError as error:
        raise InvalidInput.field(error.field, error.message) from None
    start, end = fields["start_date"], fields.get("end_date")
    if schedule.dates is not None and (
        schedule.dates[0] < start or (end is not None and schedule.dates[-1] > end)
    ):
        raise InvalidInput.field("schedule.dates", "every date must fall within the therapy")
    therapy = Therapy(
        patient_id=patient.id,
        template_id=fields["template_id"],
        site=patient.site,
        hcpcs=fields["hcpcs"],
        modifier=fields.get("modifier"),
        drug=fields.get("drug"),
        start_date=start,
        end_date=end,
        schedule=schedule.as_json(),
        status=TherapyStatus.ACTIVE,
        scheduled_through=start - timedelta(days=1),
        note=fields.get("note"),
    )
    session.add(therapy)
    session.flush()
    schedule_days(session, therapy, today)
    session.refresh(therapy)
    return therapy


def list_therapies(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Therapy)
    for name in ("patient_id", "status", "site"):
        if args.get(name) is not None:
            query = query.where(getattr(Therapy, name) == args[name])
    return paginate(session, query, Therapy.id, args)


def _with_missing(session: Session, days: list[InfusionDay]) -> list[dict[str, Any]]:
    short = [day for day in days if day.status is InfusionDayStatus.SHORT]
    missing = planning.missing_for(session, short)
    return [day_view(day, missing.get(day.id, [])) for day in days]


def day_view(day: InfusionDay, missing: list[dict[str, int]] | None = None) -> dict[str, Any]:
    return {
        "id": day.id,
        "therapy_id": day.therapy_id,
        "patient_id": day.patient_id,
        "date": day.date,
        "status": day.status,
        "kit_id": day.kit_id,
        "missing": missing or [],
    }


# A day's cursor is its (date, id) packed into one number: date ordinal * span + id.
_DAY_CURSOR_SPAN = 10**10


def list_days(session: Session, therapy: Therapy, args: dict[str, Any]) -> dict[str, Any]:
    """The therapy's days by date, paged on (date, id): a moved day keeps its id, so paging
    on the id alone would skip or repeat days whose id order differs from their date order."""
    query = select(InfusionDay).where(InfusionDay.therapy_id == therapy.id)
    if args.get("status") is not None:
        query = query.where(InfusionDay.status == args["status"])
    after = decode_cursor(args.get("cursor"))
    if after is not None:
        try:
            after_date = date.fromordinal(after // _DAY_CURSOR_SPAN)
        except (ValueError, OverflowError):
            raise InvalidInput.field("cursor", "is not a cursor this service issued") from None
        after_id = after % _DAY_CURSOR_SPAN
        query = query.where(
            or_(
                InfusionDay.date > after_date,
                and_(InfusionDay.date == after_date, InfusionDay.id > after_id),
            )
        )
    limit = int(args["limit"])
    rows = list(
        session.scalars(query.order_by(InfusionDay.date, InfusionDay.id).limit(limit + 1)).all()
    )
    more = len(rows) > limit
    rows = rows[:limit]
    last = rows[-1] if more and rows else None
    return {
        "items": _with_missing(session, rows),
        "next_cursor": encode_cursor(last.date.toordinal() * _DAY_CURSOR_SPAN + last.id)
        if last is not None
        else None,
    }


def show_day(session: Session, day: InfusionDay) -> dict[str, Any]:
    return _with_missing(session, [day])[0]


def _lock_and_refresh(session: Session, day: InfusionDay) -> InfusionDay:
    planning.lock_therapies(session, [day.therapy_id])
    session.refresh(day)
    return day


def change_day(
    session: Session, day: InfusionDay, changes: dict[str, Any], today: date | None = None
) -> InfusionDay:
    """Move a day (releasing and re-planning its reservations) or cancel it."""
    today = today or utcnow().date()
    day = _lock_and_refresh(session, day)
    if day.status is InfusionDayStatus.CANCELLED:
        raise Conflict(f"Infusion day {day.id} is cancelled.")
    if day.status in LOCKED_DAY or day.kit_id is not None:
        raise Conflict(
            f"Infusion day {day.id} is in kit {day.kit_id}: cancel the kit before changing it."
            if day.kit_id is not None
            else f"Infusion day {day.id} is {day.status.value}: cancel its kit first."
        )
    if "status" in changes:
        planning.release_days(session, [day.id], "day cancelled")
        day.status = InfusionDayStatus.CANCELLED
        session.flush()
        return day
    new_date: date = changes["date"]
    if new_date < today:
        raise InvalidInput.field("date", "cannot move an infusion day into the past")
    therapy = day.therapy
    if new_date < therapy.start_date or (
        therapy.end_date is not None and new_date > therapy.end_date
    ):
        raise InvalidInput.field("date", "must fall within the therapy's start and end dates")
    clash = session.scalars(
        select(InfusionDay.id).where(
            InfusionDay.therapy_id == day.therapy_id,
            InfusionDay.date == new_date,
            InfusionDay.id != day.id,
            InfusionDay.status != InfusionDayStatus.CANCELLED,
        )
    ).first()
    if clash is not None:
        raise Conflict(f"The therapy already has infusion day {clash} on {new_date}.")
    planning.release_days(session, [day.id], "day moved")
    day.date = new_date
    day.status = InfusionDayStatus.SCHEDULED
    session.flush()
    if new_date <= planning.horizon_end(today, planning.DEFAULT_HORIZON_DAYS):
        planning.plan_days(session, [day], today)
        session.refresh(day)
    return day


def discontinue(
    session: Session, therapy: Therapy, end_date: date, note: str | None, today: date | None = None
) -> Therapy:
    """Stop a therapy: later days are cancelled, their reservations and the course equipment
    released, and the equipment pick-up scheduled."""
    today = today or utcnow().date()
    if therapy.status is TherapyStatus.DISCONTINUED:
        raise Conflict(f"Therapy {therapy.id} is already discontinued.")
    if end_date < therapy.start_date:
        raise InvalidInput.field("end_date", "must not be before the therapy's start_date")
    if therapy.end_date is not None and end_date > therapy.end_date:
        raise InvalidInput.field(
            "end_date", f"must not be after the therapy's planned end {therapy.end_date}"
        )
    later = session.scalars(
        select(InfusionDay).where(
            InfusionDay.therapy_id == therapy.id,
            InfusionDay.date > end_date,
            InfusionDay.status != InfusionDayStatus.CANCELLED,
        )
    ).all()
    planning.lock_therapies(session, [therapy.id])
    for day in later:
        session.refresh(day)
    packed = [day.id for day in later if day.status in LOCKED_DAY or day.kit_id is not None]
    if packed:
        raise Conflict(
            f"Infusion days {packed} after {end_date} are already in kits; "
            "cancel or return those kits first.",
            extra={"infusion_day_ids": packed},
        )
    planning.release_days(session, [day.id for day in later], "therapy discontinued")
    for day in later:
        day.status = InfusionDayStatus.CANCELLED
    planning.release_equipment(session, therapy.id, "therapy discontinued")
    therapy.status = TherapyStatus.DISCONTINUED
    therapy.end_date = end_date
    therapy.discontinued_on = today
    if note:
        therapy.note = note
    if therapy.template.equipment:
        therapy.equipment_pickup_due = max(end_date + timedelta(days=1), today)
    session.flush()
    return therapy
