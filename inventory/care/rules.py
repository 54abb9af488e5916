"""Pure care rules: schedules and fee schedules. No Flask, no SQLAlchemy."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any, Protocol, TypeVar

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
ROLLING_DAYS = 365
MAX_EVERY_DAYS = 365
MAX_DATES = 400


class ScheduleError(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class Schedule:
    """Exactly one rule: every n days from the start, given weekdays, or explicit dates."""

    every_days: int | None = None
    weekdays: frozenset[int] | None = None
    dates: tuple[date, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        if self.every_days is not None:
            return {"every_days": self.every_days}
        if self.weekdays is not None:
            return {"weekdays": [WEEKDAYS[d] for d in sorted(self.weekdays)]}
        assert self.dates is not None
        return {"dates": [d.isoformat() for d in self.dates]}


def parse_schedule(raw: Mapping[str, Any]) -> Schedule:
    rules = [key for key in ("every_days", "weekdays", "dates") if raw.get(key) is not None]
    unknown = set(raw) - {"every_days", "weekdays", "dates"}
    if unknown:
        raise ScheduleError("schedule", f"unknown rule(s) {sorted(unknown)}")
    if len(rules) != 1:
        raise ScheduleError("schedule", "give exactly one of every_days, weekdays or dates")
    rule = rules[0]
    value = raw[rule]
    if rule == "every_days":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ScheduleError("schedule.every_days", "must be a whole number of days")
        if not 1 <= value <= MAX_EVERY_DAYS:
            raise ScheduleError("schedule.every_days", f"must be 1 to {MAX_EVERY_DAYS}")
        return Schedule(every_days=value)
    if rule == "weekdays":
        if not isinstance(value, list) or not value:
            raise ScheduleError("schedule.weekdays", f"list one or more of {', '.join(WEEKDAYS)}")
        days = set()
        for name in value:
            if not isinstance(name, str) or name.lower() not in WEEKDAYS:
                raise ScheduleError("schedule.weekdays", f"{name!r} is not one of {WEEKDAYS}")
            days.add(WEEKDAYS.index(name.lower()))
        return Schedule(weekdays=frozenset(days))
    if not isinstance(value, list) or not value or len(value) > MAX_DATES:
        raise ScheduleError("schedule.dates", f"list 1 to {MAX_DATES} dates (YYYY-MM-DD)")
    dates = set()
    for text in value:
        try:
            dates.add(date.fromisoformat(text) if isinstance(text, str) else None)
        except ValueError:
            raise ScheduleError("schedule.dates", f"{text!r} is not a YYYY-MM-DD date") from None
    if None in dates:
        raise ScheduleError("schedule.dates", "dates are YYYY-MM-DD strings")
    return Schedule(dates=tuple(sorted(d for d in dates if d is not None)))


def expand(schedule: Schedule, start: date, through: date) -> list[date]:
    """The infusion dates of ``schedule`` from ``start`` to ``through``, inclusive."""
    if through < start:
        return []
    if schedule.every_days is not None:
        step = timedelta(days=schedule.every_days)
        out, day = [], start
        while day <= through:
            out.append(day)
            day += step
        return out
    if schedule.weekdays is not None:
        return [
            start + timedelta(days=offset)
            for offset in range((through - start).days + 1)
            if (start + timedelta(days=offset)).weekday() in schedule.weekdays
        ]
    assert schedule.dates is not None
    return [d for d in schedule.dates if start <= d <= through]


def schedule_horizon(start: date, end: date | None, today: date) -> date:
    """How far infusion days exist: the end date, or a rolling year ahead."""
    rolling = max(start, today) + timedelta(days=ROLLING_DAYS)
    return min(end, rolling) if end is not None else rolling


class RateLike(Protocol):
    @property
    def hcpcs(self) -> str: ...
    @property
    def effective_from(self) -> date: ...


R = TypeVar("R", bound=RateLike)


def rate_in_force(rates: Iterable[R], hcpcs: str, day: date) -> R | None:
    """The rate for ``hcpcs`` whose ``effective_from`` is the latest on or before ``day``."""
    best: R | None = None
    for rate in rates:
        if rate.hcpcs != hcpcs or rate.effective_from > day:
            continue
        if best is None or rate.effective_from > best.effective_from:
            best = rate
    return best
