"""Per diem costing, free of the database: every figure a report shows is computed here.

Money is handled in whole cents (``int``) from the moment a movement's value is taken:

- a movement line is worth ``quantity * unit_cost`` rounded half-up to the cent;
- a kit covering n days spreads each line evenly over its days, the remainder cent on the last;
- a day's expected revenue is ``rate * modifier multiplier`` rounded half-up to the cent;
- a unit of equipment costs its ``daily_rate`` rounded half-up to the cent for each day at home.

So every day's figures are exact cents, and a report's totals are exact sums of its days.

What the figures mean:

- ``supply_cost``: what the supplies delivered for the days cost (equipment excluded). A share
  can never land before the movement behind it: a kit delivered after one of its days puts that
  day's share on the delivery date. A reversal takes shares back the same way.
- ``return_credit``: unopened goods brought back (quarantined to be restocked), at their cost,
  on the day they came back.
- ``waste_cost``: goods brought back opened, damaged or expired and disposed of, at their cost,
  on the day they came back. It is the part of ``supply_cost`` that was wasted, shown on its own
  and not added again.
- ``equipment_cost``: the item's daily rate for each day a unit was at the patient's home, from
  the day it was delivered up to, not including, the day it came back.
- ``total_cost = supply_cost - return_credit + equipment_cost``.
- ``per_diem_units``: by the payer's counting rule in force on each date: ``dose_day`` counts
  delivered infusion days, ``calendar_day`` counts every day from the therapy's start to its end
  or discontinuation.
- ``expected_revenue``: for each counted unit, the rate in force that day * the modifier's
  multiplier. ``margin = expected_revenue - total_cost``.
"""

from __future__ import annotations

import bisect
import csv
import functools
import io
import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from inventory.care.models import Counting

MAX_PERIOD_DAYS = 366
K = TypeVar("K", bound=Hashable)
CENT = Decimal("0.01")


# --- money ----------------------------------------------------------------------------------


def to_cents(amount: Decimal) -> int:
    """Half-up to the cent, as a whole number of cents."""
    return int((amount / CENT).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def from_cents(cents: int) -> Decimal:
    return (Decimal(cents) * CENT).quantize(CENT)


def line_cents(quantity: int, unit_cost: Decimal) -> int:
    """What one movement line is worth."""
    return to_cents(quantity * unit_cost)


def spread(total: int, days: Sequence[date]) -> list[tuple[date, int]]:
    """One line's cost spread evenly over a kit's days, the remainder cent on the last day."""
    ordered = sorted(days)
    share = total // len(ordered)
    return [(day, share) for day in ordered[:-1]] + [
        (ordered[-1], total - share * (len(ordered) - 1))
    ]


def spread_sums(floor_sum: int, total: int, days: Sequence[date]) -> list[tuple[date, int]]:
    """:func:`spread` for many lines at once, from ``floor_sum = sum(c // n)`` and
    ``total = sum(c)``: every day but the last gets ``floor_sum``, the last the rest. This is how
    the database hands the lines over, already summed per kit."""
    ordered = sorted(days)
    return [(day, floor_sum) for day in ordered[:-1]] + [
        (ordered[-1], total - floor_sum * (len(ordered) - 1))
    ]


# --- periods --------------------------------------------------------------------------------


def month_bounds(month: str) -> tuple[date, date]:
    """``"2026-03"`` → (2026-03-01, 2026-03-31). ValueError on anything else."""
    if not re.fullmatch(r"[0-9]{4}-[0-9]{2}", month):  # ASCII digits, not any Unicode digit
        raise ValueError("a month is written YYYY-MM")
    first = date(int(month[:4]), int(month[5:]), 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following - timedelta(days=1)


def month_of(day: date) -> str:
    return f"{day.year:04d}-{day.month:02d}"


def months_between(first: date, last: date) -> list[str]:
    months: list[str] = []
    cursor = date(first.year, first.month, 1)
    while cursor <= last:
        months.append(month_of(cursor))
        cursor = month_bounds(month_of(cursor))[1] + timedelta(days=1)
    return months


def period_problem(first: date, last: date) -> str | None:
    if first > last:
        return "from must not be after to"
    if (last - first).days + 1 > MAX_PERIOD_DAYS:
        return f"a report covers at most {MAX_PERIOD_DAYS} days"
    return None


# --- fee schedules --------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    effective_from: date
    rate: Decimal
    counting: Counting


class FeeSchedule:
    """One payer's rates for one code, in order of ``effective_from``."""

    def __init__(self, rates: Iterable[Rate]):
        self.rates = sorted(rates, key=lambda rate: rate.effective_from)
        self._starts = [rate.effective_from for rate in self.rates]

    def in_force(self, day: date) -> Rate | None:
        index = bisect.bisect_right(self._starts, day) - 1
        return self.rates[index] if index >= 0 else None

    def segments(self, first: date, last: date) -> list[tuple[date, date, Rate | None]]:
        """``[first, last]`` cut where the rate in force changes."""
        cuts = [start for start in self._starts if first < start <= last]
        bounds = [first, *cuts]
        ends = [cut - timedelta(days=1) for cut in cuts] + [last]
        return [(start, end, self.in_force(start)) for start, end in zip(bounds, ends, strict=True)]


@functools.lru_cache(maxsize=4096)
def daily_revenue(rate: Rate | None, multiplier: Decimal) -> int:
    """A day's expected revenue in cents (the same few rates over and over: cached)."""
    return 0 if rate is None else to_cents(rate.rate * multiplier)


# --- what a report adds up ------------------------------------------------------------------


@dataclass(slots=True)
class Entry:
    """Figures for one therapy, the same on every day from ``first`` to ``last`` inclusive.
    Never changed once made (not ``frozen`` only because a year's report makes some 100,000,
    and a frozen dataclass takes four times as long to build)."""

    therapy_id: int
    first: date
    last: date
    units: int = 0
    supply_cost: int = 0
    return_credit: int = 0
    waste_cost: int = 0
    equipment_cost: int = 0
    expected_revenue: int = 0
    kit_id: int | None = None
    rate: Decimal | None = None

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1


@dataclass
class Figures:
    """Sums in cents; the derived figures follow the module's definitions."""

    per_diem_units: int = 0
    supply_cost: int = 0
    return_credit: int = 0
    waste_cost: int = 0
    equipment_cost: int = 0
    expected_revenue: int = 0

    def add(self, entry: Entry, days: int) -> None:
        self.per_diem_units += entry.units * days
        self.supply_cost += entry.supply_cost * days
        self.return_credit += entry.return_credit * days
        self.waste_cost += entry.waste_cost * days
        self.equipment_cost += entry.equipment_cost * days
        self.expected_revenue += entry.expected_revenue * days

    def merge(self, other: Figures) -> None:
        self.per_diem_units += other.per_diem_units
        self.supply_cost += other.supply_cost
        self.return_credit += other.return_credit
        self.waste_cost += other.waste_cost
        self.equipment_cost += other.equipment_cost
        self.expected_revenue += other.expected_revenue

    @property
    def total_cost(self) -> int:
        return self.supply_cost - self.return_credit + self.equipment_cost

    @property
    def margin(self) -> int:
        return self.expected_revenue - self.total_cost

    @property
    def cost_per_unit(self) -> Decimal | None:
        if not self.per_diem_units:
            return None
        return (Decimal(self.total_cost) / self.per_diem_units * CENT).quantize(
            CENT, rounding=ROUND_HALF_UP
        )

    def is_empty(self) -> bool:
        return not any(
            (
                self.per_diem_units,
                self.supply_cost,
                self.return_credit,
                self.waste_cost,
                self.equipment_cost,
                self.expected_revenue,
            )
        )


@dataclass(frozen=True)
class Therapy:
    """What the rules need to know about a therapy to count and price its days."""

    therapy_id: int
    start: date
    last: date | None  # the end date or the day of discontinuation, whichever is earlier
    schedule: FeeSchedule
    multiplier: Decimal


def per_diem_entries(
    therapy: Therapy, delivered_days: Iterable[date], first: date, last: date
) -> list[Entry]:
    """Units and expected revenue within ``[first, last]``, by the rule in force each day."""
    window_first = max(first, therapy.start)
    window_last = last if therapy.last is None else min(last, therapy.last)
    entries: list[Entry] = []
    if window_first <= window_last:
        for start, end, rate in therapy.schedule.segments(window_first, window_last):
            if rate is not None and rate.counting is Counting.CALENDAR_DAY:
                entries.append(
                    Entry(
                        therapy.therapy_id,
                        start,
                        end,
                        units=1,
                        expected_revenue=daily_revenue(rate, therapy.multiplier),
                        rate=rate.rate,
                    )
                )
    for day in sorted(set(delivered_days)):
        if not first <= day <= last:
            continue
        rate = therapy.schedule.in_force(day)
        # No rate yet: still a delivered dose, counted, with nothing expected for it.
        if rate is None or rate.counting is Counting.DOSE_DAY:
            entries.append(
                Entry(
                    therapy.therapy_id,
                    day,
                    day,
                    units=1,
                    expected_revenue=daily_revenue(rate, therapy.multiplier),
                    rate=None if rate is None else rate.rate,
                )
            )
    return entries


@dataclass(frozen=True)
class Shipment:
    """Supplies of one kit that moved to (sign +1) or back from (sign -1) the patient together,
    summed over its lines as :func:`spread_sums` wants them."""

    kit_id: int
    days: tuple[tuple[date, int], ...]  # the kit's days, with the therapy of each
    moved_on: date
    floor_sum: int
    total: int
    sign: int = 1


def shipment_entries(shipment: Shipment, first: date, last: date) -> list[Entry]:
    if not shipment.days:  # kits are built from days; the loader never sends one without
        return []
    # One share per infusion day: two therapies' days on one date are two shares.
    days = sorted(shipment.days)
    shares = spread_sums(shipment.floor_sum, shipment.total, [day for day, _ in days])
    entries = []
    for (day, therapy_id), (_, share) in zip(days, shares, strict=True):
        on = max(day, shipment.moved_on)
        if first <= on <= last and share:
            entries.append(
                Entry(
                    therapy_id,
                    on,
                    on,
                    supply_cost=share * shipment.sign,
                    kit_id=shipment.kit_id,
                )
            )
    return entries


@dataclass(frozen=True)
class Stay:
    """A unit of equipment at a patient's home for a therapy, ``end`` not included."""

    therapy_id: int
    kit_id: int | None
    start: date
    end: date | None  # None: still there
    daily_rate: Decimal


def stay_entries(stay: Stay, first: date, last: date) -> list[Entry]:
    start = max(first, stay.start)
    end = last if stay.end is None else min(last, stay.end - timedelta(days=1))
    if start > end:
        return []
    return [
        Entry(
            stay.therapy_id,
            start,
            end,
            equipment_cost=to_cents(stay.daily_rate),
            kit_id=stay.kit_id,
        )
    ]


@dataclass(frozen=True)
class Takeback:
    """What came back from a kit on one day: unopened (credit) and disposed (waste), in cents."""

    therapy_id: int
    kit_id: int
    on: date
    credit: int
    waste: int


def takeback_entries(takeback: Takeback, first: date, last: date) -> list[Entry]:
    if not first <= takeback.on <= last:
        return []
    return [
        Entry(
            takeback.therapy_id,
            takeback.on,
            takeback.on,
            return_credit=takeback.credit,
            waste_cost=takeback.waste,
            kit_id=takeback.kit_id,
        )
    ]


def total_by(entries: Iterable[Entry], key: Callable[[Entry], K]) -> dict[K, Figures]:
    groups: dict[K, Figures] = {}
    for entry in entries:
        groups.setdefault(key(entry), Figures()).add(entry, entry.days)
    return groups


@dataclass
class Day:
    """One row of the drill-down: a therapy on one day, and the kits behind its figures."""

    therapy_id: int
    day: date
    figures: Figures = field(default_factory=Figures)
    kit_ids: set[int] = field(default_factory=set)
    rate: Decimal | None = None


def by_day(entries: Iterable[Entry]) -> list[Day]:
    days: dict[tuple[int, date], Day] = {}
    for entry in entries:
        for offset in range(entry.days):
            on = entry.first + timedelta(days=offset)
            row = days.get((entry.therapy_id, on))
            if row is None:
                row = days[(entry.therapy_id, on)] = Day(entry.therapy_id, on)
            row.figures.add(entry, 1)
            if entry.kit_id is not None:
                row.kit_ids.add(entry.kit_id)
            if entry.rate is not None:
                row.rate = entry.rate
    return [days[key] for key in sorted(days, key=lambda key: (key[1], key[0]))]


# --- reconciliation -------------------------------------------------------------------------

CLAIM_COLUMNS = ("external_ref", "hcpcs", "date_of_service", "units", "billed_amount")
MAX_CLAIM_ROWS = 100_000


@dataclass(frozen=True)
class Claim:
    line: int
    external_ref: str
    hcpcs: str
    date_of_service: date
    units: int
    billed_amount: Decimal


@dataclass
class RowProblem:
    line: int
    errors: dict[str, list[str]]


DATE_TEXT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
UNITS_TEXT = re.compile(r"[0-9]{1,6}")
AMOUNT_TEXT = re.compile(r"[0-9]{1,12}(\.[0-9]{1,2})?")
HCPCS_TEXT = re.compile(r"[A-Z0-9]{5}")
MAX_CLAIM_UNITS = 100_000


def parse_claim(line: int, raw: Mapping[str, object]) -> Claim | RowProblem:
    """One claim, from a CSV row or a JSON object; every field checked, every problem kept.
    The same rules as the JSON schema: plain ASCII digits, dates as YYYY-MM-DD only."""
    errors: dict[str, list[str]] = {}
    raw = {**raw, "hcpcs": str(raw.get("hcpcs") or "").upper()}

    def field(name: str, pattern: re.Pattern[str], problem: str, longest: int = 64) -> str:
        value = raw.get(name)
        value = "" if value is None else str(value).strip()
        if not value:
            errors.setdefault(name, []).append("is required")
        elif len(value) > longest:
            errors.setdefault(name, []).append(f"is longer than {longest} characters")
        elif not pattern.fullmatch(value):
            errors.setdefault(name, []).append(problem)
        return value

    external_ref = field("external_ref", re.compile(r"[^\x00-\x1f\x7f]+"), "has control characters")
    hcpcs = field("hcpcs", HCPCS_TEXT, "is not a 5-character HCPCS code", 5)
    raw_date = field("date_of_service", DATE_TEXT, "is not a date (YYYY-MM-DD)", 10)
    day = date.min
    if "date_of_service" not in errors:
        try:
            day = date.fromisoformat(raw_date)
        except ValueError:
            errors["date_of_service"] = ["is not a date (YYYY-MM-DD)"]
    raw_units = field("units", UNITS_TEXT, "is not a whole number of 0 or more", 6)
    units = 0 if "units" in errors else int(raw_units)
    if units > MAX_CLAIM_UNITS:
        errors["units"] = [f"is more than {MAX_CLAIM_UNITS}"]
    raw_amount = field(
        "billed_amount", AMOUNT_TEXT, "is not an amount of 0 or more with at most 2 decimals", 16
    )
    amount = Decimal(0) if "billed_amount" in errors else Decimal(raw_amount)
    if errors:
        return RowProblem(line, errors)
    return Claim(line, external_ref, hcpcs, day, units, amount)


def parse_claims_csv(text: str) -> tuple[list[Claim], list[RowProblem], list[str]]:
    """(claims, row problems with their line numbers, missing columns). Line 1 is the header."""
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [name.strip().lower() for name in reader.fieldnames or []]
    missing = [column for column in CLAIM_COLUMNS if column not in header]
    if missing:
        return [], [], missing
    reader.fieldnames = header
    claims: list[Claim] = []
    problems: list[RowProblem] = []
    for row in reader:
        line = reader.line_num
        if None in row:  # more fields than the header names
            problems.append(RowProblem(line, {"row": ["has more fields than the header"]}))
            continue
        if not any((value or "").strip() for value in row.values()):
            continue  # a blank line
        parsed = parse_claim(line, row)
        (problems if isinstance(parsed, RowProblem) else claims).append(parsed)  # type: ignore[arg-type]
    return claims, problems, []


@dataclass(frozen=True)
class Delivered:
    """Per diem units a patient's therapy counted on one day, and what was expected for them."""

    external_ref: str
    hcpcs: str
    day: date
    units: int
    expected_revenue: int  # cents


@dataclass(frozen=True)
class Match:
    external_ref: str
    hcpcs: str
    date_of_service: date
    billed_units: int
    delivered_units: int
    billed_amount: Decimal
    expected_revenue: Decimal
    lines: tuple[int, ...]


@dataclass
class Reconciled:
    matched: list[Match] = field(default_factory=list)
    billed_not_delivered: list[Match] = field(default_factory=list)
    delivered_not_billed: list[Match] = field(default_factory=list)
    unit_mismatches: list[Match] = field(default_factory=list)


def reconcile(claims: Iterable[Claim], delivered: Iterable[Delivered]) -> Reconciled:
    """Claims against delivered units, by patient, code and date of service. Claim lines for
    the same key are added up, so a service billed twice shows as a unit mismatch."""
    billed: dict[tuple[str, str, date], list[Claim]] = {}
    for claim in claims:
        billed.setdefault((claim.external_ref, claim.hcpcs, claim.date_of_service), []).append(
            claim
        )
    counted: dict[tuple[str, str, date], list[Delivered]] = {}
    for row in delivered:
        if row.units:
            counted.setdefault((row.external_ref, row.hcpcs, row.day), []).append(row)
    result = Reconciled()
    for key in sorted(billed.keys() | counted.keys()):
        claims_here = billed.get(key, [])
        days_here = counted.get(key, [])
        match = Match(
            external_ref=key[0],
            hcpcs=key[1],
            date_of_service=key[2],
            billed_units=sum(claim.units for claim in claims_here),
            delivered_units=sum(row.units for row in days_here),
            billed_amount=sum((claim.billed_amount for claim in claims_here), Decimal("0.00")),
            expected_revenue=from_cents(sum(row.expected_revenue for row in days_here)),
            lines=tuple(sorted(claim.line for claim in claims_here)),
        )
        if not days_here:
            result.billed_not_delivered.append(match)
        elif not claims_here:
            result.delivered_not_billed.append(match)
        elif match.billed_units != match.delivered_units:
            result.unit_mismatches.append(match)
        else:
            result.matched.append(match)
    return result
