"""Per diem costing rules without a database: money in cents, spreading a kit over its days,
periods, fee schedules, what each kind of fact adds to a report, and claim reconciliation.

Every expected figure below is written out by hand from the rules in the module's docstring."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.care.models import Counting
from inventory.finance.rules import (
    MAX_PERIOD_DAYS,
    Claim,
    Day,
    Delivered,
    Entry,
    FeeSchedule,
    Figures,
    Match,
    Rate,
    RowProblem,
    Shipment,
    Stay,
    Takeback,
    Therapy,
    by_day,
    daily_revenue,
    from_cents,
    line_cents,
    month_bounds,
    month_of,
    months_between,
    parse_claim,
    parse_claims_csv,
    per_diem_entries,
    period_problem,
    reconcile,
    shipment_entries,
    spread,
    spread_sums,
    stay_entries,
    takeback_entries,
    to_cents,
    total_by,
)


def d(month: int, day: int, year: int = 2026) -> date:
    return date(year, month, day)


MARCH = (d(3, 1), d(3, 31))
NEW_YEAR = d(1, 1)

# --- money -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("1.005", 101),  # 100.5 cents -> half-up -> 101
        ("1.004", 100),  # 100.4 cents -> 100
        ("0.015", 2),  # 1.5 cents -> 2
        ("2.675", 268),  # 267.5 cents -> 268 (a float would give 2.67)
        ("7.4070", 741),  # 740.70 cents -> 741
        ("7.4049", 740),  # 740.49 cents -> 740
        ("0.005", 1),  # 0.5 cent -> 1
        ("0.0049", 0),  # 0.49 cent -> 0
        ("0", 0),
        ("12", 1200),
        ("123456789.125", 12345678913),  # 12345678912.5 cents -> 12345678913
    ],
)
def test_to_cents_rounds_half_up_to_the_cent(amount: str, cents: int):
    assert to_cents(Decimal(amount)) == cents
    assert isinstance(to_cents(Decimal(amount)), int)


@pytest.mark.parametrize(
    ("cents", "text"),
    [(741, "7.41"), (5, "0.05"), (0, "0.00"), (100, "1.00"), (-120, "-1.20"), (123456, "1234.56")],
)
def test_from_cents_gives_an_amount_with_two_decimals(cents: int, text: str):
    amount = from_cents(cents)
    assert amount == Decimal(text)
    assert str(amount) == text


@pytest.mark.parametrize(
    ("quantity", "unit_cost", "cents"),
    [
        (6, "1.2345", 741),  # 6 x 1.2345 = 7.4070 -> 740.70 cents -> 741
        (3, "0.335", 101),  # 3 x 0.335 = 1.005 -> 100.5 cents -> 101
        (3, "0.3349", 100),  # 3 x 0.3349 = 1.0047 -> 100.47 cents -> 100
        (7, "0.0007", 0),  # 7 x 0.0007 = 0.0049 -> 0.49 cent -> 0
        (0, "9.99", 0),
        (12, "14.50", 17400),  # 12 x 14.50 = 174.00
    ],
)
def test_a_line_is_worth_quantity_times_unit_cost_half_up(quantity: int, unit_cost: str, cents):
    assert line_cents(quantity, Decimal(unit_cost)) == cents


# --- spread ----------------------------------------------------------------------------------


def test_spread_splits_evenly_when_it_divides():
    # 900 / 3 = 300 each
    assert spread(900, [d(3, 1), d(3, 2), d(3, 3)]) == [
        (d(3, 1), 300),
        (d(3, 2), 300),
        (d(3, 3), 300),
    ]


def test_spread_puts_the_remainder_cent_on_the_last_day():
    # 741 // 2 = 370, last day 741 - 370 = 371
    assert spread(741, [d(3, 1), d(3, 2)]) == [(d(3, 1), 370), (d(3, 2), 371)]


def test_spread_puts_the_remainder_on_the_last_day_by_date_whatever_the_input_order():
    # 1000 // 3 = 333, last day (03-03) 1000 - 2 x 333 = 334
    assert spread(1000, [d(3, 3), d(3, 1), d(3, 2)]) == [
        (d(3, 1), 333),
        (d(3, 2), 333),
        (d(3, 3), 334),
    ]
    # across a month end: the last day is 04-01, not 03-31
    assert spread(100, [d(4, 1), d(3, 30), d(3, 31)]) == [
        (d(3, 30), 33),
        (d(3, 31), 33),
        (d(4, 1), 34),
    ]


def test_spread_over_one_day_puts_everything_on_it():
    assert spread(741, [d(3, 5)]) == [(d(3, 5), 741)]


def test_spread_of_nothing_gives_zero_every_day():
    assert spread(0, [d(3, 2), d(3, 1), d(3, 3)]) == [(d(3, 1), 0), (d(3, 2), 0), (d(3, 3), 0)]


def test_spread_of_less_than_one_cent_a_day_lands_on_the_last_day():
    # 2 // 3 = 0: the first two days get 0, the last 2
    assert spread(2, [d(3, 1), d(3, 2), d(3, 3)]) == [(d(3, 1), 0), (d(3, 2), 0), (d(3, 3), 2)]


def test_spread_sums_of_a_kit_matches_its_lines_spread_one_by_one():
    # lines 741 and 259 over 3 days: floors 247 + 86 = 333 a day; total 1000; last 1000 - 666 = 334
    days = [d(3, 2), d(3, 3), d(3, 1)]
    assert spread_sums(333, 1000, days) == [(d(3, 1), 333), (d(3, 2), 333), (d(3, 3), 334)]
    # line by line: 741 -> 247, 247, 247; 259 -> 86, 86, 87; per day 333, 333, 334
    assert spread(741, days) == [(d(3, 1), 247), (d(3, 2), 247), (d(3, 3), 247)]
    assert spread(259, days) == [(d(3, 1), 86), (d(3, 2), 86), (d(3, 3), 87)]


kit_days = st.lists(
    st.dates(min_value=date(2025, 1, 1), max_value=date(2027, 12, 31)),
    min_size=1,
    max_size=12,
    unique=True,
)


@settings(max_examples=300, deadline=None)
@given(lines=st.lists(st.integers(min_value=0, max_value=10**9), max_size=20), days=kit_days)
def test_spreading_lines_one_by_one_adds_up_to_spread_sums(lines: list[int], days: list[date]):
    n = len(days)
    per_day: dict[date, int] = dict.fromkeys(days, 0)
    for cents in lines:
        for day, share in spread(cents, days):
            per_day[day] += share
    summed = spread_sums(sum(c // n for c in lines), sum(lines), days)
    assert summed == sorted(per_day.items())


@settings(max_examples=300, deadline=None)
@given(total=st.integers(min_value=0, max_value=10**12), days=kit_days)
def test_every_spread_sums_back_to_its_total(total: int, days: list[date]):
    shares = spread(total, days)
    assert sum(share for _, share in shares) == total
    assert [day for day, _ in shares] == sorted(days)
    # every day but the last gets the same floor share; the last gets at most n - 1 cents more
    assert all(share == total // len(days) for _, share in shares[:-1])
    assert 0 <= shares[-1][1] - total // len(days) < len(days)


# --- periods ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("month", "bounds"),
    [
        ("2026-03", (date(2026, 3, 1), date(2026, 3, 31))),
        ("2026-04", (date(2026, 4, 1), date(2026, 4, 30))),
        ("2026-02", (date(2026, 2, 1), date(2026, 2, 28))),
        ("2028-02", (date(2028, 2, 1), date(2028, 2, 29))),  # 2028 is a leap year
        ("2100-02", (date(2100, 2, 1), date(2100, 2, 28))),  # 2100 is not
        ("2026-11", (date(2026, 11, 1), date(2026, 11, 30))),
        ("2026-12", (date(2026, 12, 1), date(2026, 12, 31))),  # the following month is in 2027
        ("2026-01", (date(2026, 1, 1), date(2026, 1, 31))),
    ],
)
def test_month_bounds_gives_the_first_and_last_day(month: str, bounds: tuple[date, date]):
    assert month_bounds(month) == bounds


@pytest.mark.parametrize(
    "month",
    [
        "2026-13",
        "2026-00",
        "2026-1",
        "abcd-ef",
        "",
        "2026/03",
        "2026-3 ",
        "2026-03-01",
        " 2026-03",
        "\u0662\u0660\u0662\u0666-\u0660\u0661",  # Arabic-Indic digits: isdigit() but not YYYY-MM
        "\uff12\uff10\uff12\uff16-\uff10\uff11",
    ],  # full-width digits
)
def test_month_bounds_refuses_anything_but_yyyy_mm(month: str):
    with pytest.raises(ValueError):
        month_bounds(month)


def test_month_of_writes_the_month_with_two_digits():
    assert month_of(date(2026, 3, 5)) == "2026-03"
    assert month_of(date(987, 12, 31)) == "0987-12"


def test_months_between_lists_every_month_touched():
    assert months_between(d(1, 15), d(3, 2)) == ["2026-01", "2026-02", "2026-03"]
    assert months_between(date(2025, 11, 30), date(2026, 2, 1)) == [
        "2025-11",
        "2025-12",
        "2026-01",
        "2026-02",
    ]
    assert months_between(d(3, 5), d(3, 5)) == ["2026-03"]
    assert months_between(d(3, 31), d(4, 1)) == ["2026-03", "2026-04"]


def test_period_problem():
    assert period_problem(d(3, 2), d(3, 1)) == "from must not be after to"
    assert period_problem(d(3, 1), d(3, 1)) is None
    assert MAX_PERIOD_DAYS == 366
    # 2026-01-01 .. 2027-01-01 inclusive: 365 + 1 = 366 days
    assert period_problem(date(2026, 1, 1), date(2027, 1, 1)) is None
    # 2028 is a leap year: 2028-01-01 .. 2028-12-31 is 366 days
    assert period_problem(date(2028, 1, 1), date(2028, 12, 31)) is None
    # 2026-01-01 .. 2027-01-02: 367 days
    assert period_problem(date(2026, 1, 1), date(2027, 1, 2)) == "a report covers at most 366 days"
    # 2028-01-01 .. 2029-01-01: 367 days
    assert period_problem(date(2028, 1, 1), date(2029, 1, 1)) == "a report covers at most 366 days"


# --- fee schedules ---------------------------------------------------------------------------

R1 = Rate(d(3, 1), Decimal("100.00"), Counting.DOSE_DAY)
R2 = Rate(d(3, 15), Decimal("120.00"), Counting.CALENDAR_DAY)


def test_in_force_is_none_before_the_first_rate_then_the_latest_started():
    schedule = FeeSchedule([R2, R1])  # given out of order
    assert schedule.rates == [R1, R2]
    assert schedule.in_force(d(2, 28)) is None
    assert schedule.in_force(d(3, 1)) == R1  # the day it takes effect
    assert schedule.in_force(d(3, 14)) == R1
    assert schedule.in_force(d(3, 15)) == R2  # the change day
    assert schedule.in_force(date(2027, 6, 1)) == R2


def test_an_empty_schedule_has_no_rate_in_force():
    assert FeeSchedule([]).in_force(d(3, 1)) is None
    assert FeeSchedule([]).segments(d(3, 1), d(3, 31)) == [(d(3, 1), d(3, 31), None)]


def test_segments_cut_the_period_where_the_rate_changes():
    schedule = FeeSchedule([R1, R2])
    assert schedule.segments(d(3, 10), d(3, 20)) == [
        (d(3, 10), d(3, 14), R1),
        (d(3, 15), d(3, 20), R2),
    ]
    assert schedule.segments(d(2, 20), d(3, 20)) == [
        (d(2, 20), d(2, 28), None),
        (d(3, 1), d(3, 14), R1),
        (d(3, 15), d(3, 20), R2),
    ]
    # a change on the first day is no cut; a change on the last day cuts a one-day segment
    assert schedule.segments(d(3, 15), d(3, 20)) == [(d(3, 15), d(3, 20), R2)]
    assert schedule.segments(d(3, 10), d(3, 15)) == [
        (d(3, 10), d(3, 14), R1),
        (d(3, 15), d(3, 15), R2),
    ]
    assert schedule.segments(d(3, 1), d(3, 14)) == [(d(3, 1), d(3, 14), R1)]


def test_daily_revenue_is_rate_times_multiplier_half_up():
    assert daily_revenue(None, Decimal("1")) == 0
    rate = Rate(d(1, 1), Decimal("100.01"), Counting.DOSE_DAY)
    assert daily_revenue(rate, Decimal("0.5")) == 5001  # 50.005 -> 5000.5 cents -> 5001
    assert daily_revenue(rate, Decimal("1")) == 10001


# --- per diem units and expected revenue -----------------------------------------------------


def therapy(
    *rates: Rate,
    start: date = NEW_YEAR,
    last: date | None = None,
    multiplier: str = "1",
    therapy_id: int = 1,
) -> Therapy:
    return Therapy(therapy_id, start, last, FeeSchedule(rates), Decimal(multiplier))


DOSE_150 = Rate(date(2026, 1, 1), Decimal("150.00"), Counting.DOSE_DAY)
CAL_80 = Rate(date(2026, 1, 1), Decimal("80.00"), Counting.CALENDAR_DAY)


def test_dose_day_counts_only_delivered_days_inside_the_period_once_each():
    delivered = [d(3, 5), d(2, 28), d(4, 1), d(3, 3), d(3, 5), d(3, 1), d(3, 31)]
    entries = per_diem_entries(therapy(DOSE_150, last=d(12, 31)), delivered, *MARCH)
    # 02-28 and 04-01 fall outside March; 03-05 twice counts once; 150.00 -> 15000 cents
    assert entries == [
        Entry(1, day, day, units=1, expected_revenue=15000, rate=Decimal("150.00"))
        for day in (d(3, 1), d(3, 3), d(3, 5), d(3, 31))
    ]
    figures = total_by(entries, lambda entry: entry.therapy_id)[1]
    assert figures.per_diem_units == 4
    assert figures.expected_revenue == 60000  # 4 x 15000


def test_dose_day_without_deliveries_counts_nothing():
    assert per_diem_entries(therapy(DOSE_150), [], *MARCH) == []


def test_calendar_day_counts_every_day_of_the_therapy_inside_the_period():
    # therapy 03-10 .. 03-20: 11 days; a delivered day is not counted twice
    entries = per_diem_entries(therapy(CAL_80, start=d(3, 10), last=d(3, 20)), [d(3, 12)], *MARCH)
    assert entries == [
        Entry(1, d(3, 10), d(3, 20), units=1, expected_revenue=8000, rate=Decimal("80.00"))
    ]
    figures = total_by(entries, lambda entry: entry.therapy_id)[1]
    assert figures.per_diem_units == 11
    assert figures.expected_revenue == 88000  # 11 x 8000


def test_calendar_day_is_clamped_to_the_period():
    # therapy 02-01 .. 04-30, report March: 03-01 .. 03-31
    entries = per_diem_entries(therapy(CAL_80, start=d(2, 1), last=d(4, 30)), [], *MARCH)
    assert entries == [
        Entry(1, d(3, 1), d(3, 31), units=1, expected_revenue=8000, rate=Decimal("80.00"))
    ]


def test_an_open_ended_calendar_therapy_runs_to_the_period_end():
    entries = per_diem_entries(therapy(CAL_80, start=d(3, 25), last=None), [], *MARCH)
    assert entries == [
        Entry(1, d(3, 25), d(3, 31), units=1, expected_revenue=8000, rate=Decimal("80.00"))
    ]
    assert entries[0].days == 7


def test_a_calendar_therapy_outside_the_period_counts_nothing():
    assert per_diem_entries(therapy(CAL_80, start=d(4, 1)), [], *MARCH) == []
    assert per_diem_entries(therapy(CAL_80, start=d(1, 1), last=d(2, 28)), [], *MARCH) == []


def test_a_counting_rule_that_changes_mid_period_applies_from_its_date():
    # calendar at 100.00 until 03-15, dose at 110.00 from 03-16
    schedule = (
        Rate(d(1, 1), Decimal("100.00"), Counting.CALENDAR_DAY),
        Rate(d(3, 16), Decimal("110.00"), Counting.DOSE_DAY),
    )
    delivered = [d(3, 10), d(3, 16), d(3, 20)]
    entries = per_diem_entries(therapy(*schedule, start=d(3, 1)), delivered, *MARCH)
    assert entries == [
        Entry(1, d(3, 1), d(3, 15), units=1, expected_revenue=10000, rate=Decimal("100.00")),
        Entry(1, d(3, 16), d(3, 16), units=1, expected_revenue=11000, rate=Decimal("110.00")),
        Entry(1, d(3, 20), d(3, 20), units=1, expected_revenue=11000, rate=Decimal("110.00")),
    ]
    figures = total_by(entries, lambda entry: entry.therapy_id)[1]
    assert figures.per_diem_units == 17  # 15 calendar days + 2 doses (03-10 not twice)
    assert figures.expected_revenue == 172000  # 15 x 10000 + 2 x 11000


def test_a_change_from_dose_to_calendar_mid_period():
    schedule = (
        Rate(d(1, 1), Decimal("100.00"), Counting.DOSE_DAY),
        Rate(d(3, 16), Decimal("110.00"), Counting.CALENDAR_DAY),
    )
    delivered = [d(3, 10), d(3, 20)]
    entries = per_diem_entries(therapy(*schedule, start=d(3, 1)), delivered, *MARCH)
    assert entries == [
        Entry(1, d(3, 16), d(3, 31), units=1, expected_revenue=11000, rate=Decimal("110.00")),
        Entry(1, d(3, 10), d(3, 10), units=1, expected_revenue=10000, rate=Decimal("100.00")),
    ]
    figures = total_by(entries, lambda entry: entry.therapy_id)[1]
    assert figures.per_diem_units == 17  # 1 dose + 16 calendar days
    assert figures.expected_revenue == 186000  # 10000 + 16 x 11000


def test_the_modifier_multiplier_scales_the_rate_rounded_half_up():
    dose = Rate(d(1, 1), Decimal("100.01"), Counting.DOSE_DAY)
    entries = per_diem_entries(therapy(dose, multiplier="0.5"), [d(3, 2)], *MARCH)
    # 100.01 x 0.5 = 50.005 -> 5000.5 cents -> 5001; the entry keeps the payer's rate
    assert entries == [
        Entry(1, d(3, 2), d(3, 2), units=1, expected_revenue=5001, rate=Decimal("100.01"))
    ]
    calendar = Rate(d(1, 1), Decimal("33.33"), Counting.CALENDAR_DAY)
    entries = per_diem_entries(therapy(calendar, start=d(3, 30), multiplier="0.5"), [], *MARCH)
    # 33.33 x 0.5 = 16.665 -> 1666.5 cents -> 1667, for 03-30 and 03-31
    assert entries == [
        Entry(1, d(3, 30), d(3, 31), units=1, expected_revenue=1667, rate=Decimal("33.33"))
    ]


def test_a_delivered_day_before_any_rate_counts_one_unit_with_nothing_expected():
    dose = Rate(d(3, 10), Decimal("100.00"), Counting.DOSE_DAY)
    entries = per_diem_entries(therapy(dose), [d(3, 5), d(3, 12)], *MARCH)
    assert entries == [
        Entry(1, d(3, 5), d(3, 5), units=1, expected_revenue=0, rate=None),
        Entry(1, d(3, 12), d(3, 12), units=1, expected_revenue=10000, rate=Decimal("100.00")),
    ]


def test_calendar_days_before_any_rate_count_nothing_but_a_delivered_one_counts():
    calendar = Rate(d(3, 10), Decimal("80.00"), Counting.CALENDAR_DAY)
    entries = per_diem_entries(therapy(calendar, start=d(3, 1)), [d(3, 5)], *MARCH)
    # 03-01..03-09 has no rate: only the delivered 03-05 counts, for nothing
    assert entries == [
        Entry(1, d(3, 10), d(3, 31), units=1, expected_revenue=8000, rate=Decimal("80.00")),
        Entry(1, d(3, 5), d(3, 5), units=1, expected_revenue=0, rate=None),
    ]


def test_no_schedule_at_all_still_counts_delivered_doses():
    entries = per_diem_entries(therapy(), [d(3, 5)], *MARCH)
    assert entries == [Entry(1, d(3, 5), d(3, 5), units=1, expected_revenue=0, rate=None)]


# --- shipments -------------------------------------------------------------------------------

THREE_DAYS = ((d(3, 1), 1), (d(3, 2), 1), (d(3, 3), 1))


def test_a_shipment_spreads_its_kit_over_the_kits_days():
    # floor 333 a day, total 1000: 333, 333, 334
    shipment = Shipment(7, THREE_DAYS, moved_on=d(2, 27), floor_sum=333, total=1000)
    assert shipment_entries(shipment, *MARCH) == [
        Entry(1, d(3, 1), d(3, 1), supply_cost=333, kit_id=7),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
        Entry(1, d(3, 3), d(3, 3), supply_cost=334, kit_id=7),
    ]


def test_a_share_for_a_day_before_the_delivery_lands_on_the_delivery_date():
    shipment = Shipment(7, THREE_DAYS, moved_on=d(3, 2), floor_sum=333, total=1000)
    # 03-01's share moves to 03-02
    assert shipment_entries(shipment, *MARCH) == [
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
        Entry(1, d(3, 3), d(3, 3), supply_cost=334, kit_id=7),
    ]
    rows = by_day(shipment_entries(shipment, *MARCH))
    assert [(row.day, row.figures.supply_cost) for row in rows] == [(d(3, 2), 666), (d(3, 3), 334)]


def test_a_reversal_takes_the_shares_back():
    shipment = Shipment(7, THREE_DAYS, moved_on=d(3, 2), floor_sum=333, total=1000, sign=-1)
    assert shipment_entries(shipment, *MARCH) == [
        Entry(1, d(3, 2), d(3, 2), supply_cost=-333, kit_id=7),
        Entry(1, d(3, 2), d(3, 2), supply_cost=-333, kit_id=7),
        Entry(1, d(3, 3), d(3, 3), supply_cost=-334, kit_id=7),
    ]


def test_a_delivery_and_its_reversal_net_to_nothing():
    there = Shipment(7, THREE_DAYS, moved_on=d(2, 27), floor_sum=333, total=1000)
    back = Shipment(7, THREE_DAYS, moved_on=d(3, 2), floor_sum=333, total=1000, sign=-1)
    entries = shipment_entries(there, *MARCH) + shipment_entries(back, *MARCH)
    assert total_by(entries, lambda entry: entry.kit_id)[7].supply_cost == 0


def test_shares_landing_outside_the_period_are_dropped():
    shipment = Shipment(7, THREE_DAYS, moved_on=d(2, 27), floor_sum=333, total=1000)
    assert shipment_entries(shipment, d(3, 3), d(3, 31)) == [
        Entry(1, d(3, 3), d(3, 3), supply_cost=334, kit_id=7)
    ]
    assert shipment_entries(shipment, d(2, 1), d(3, 2)) == [
        Entry(1, d(3, 1), d(3, 1), supply_cost=333, kit_id=7),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
    ]
    # delivered in April for March days: every share lands in April
    late = Shipment(7, THREE_DAYS, moved_on=d(4, 2), floor_sum=333, total=1000)
    assert shipment_entries(late, *MARCH) == []
    assert sum(e.supply_cost for e in shipment_entries(late, d(4, 1), d(4, 30))) == 1000


def test_each_share_goes_to_the_therapy_of_its_day_and_zero_shares_are_left_out():
    days = ((d(3, 3), 2), (d(3, 1), 1), (d(3, 2), 1))
    # floor 0 a day, total 2: 0, 0, 2 -> only the last day (therapy 2)
    shipment = Shipment(9, days, moved_on=d(3, 1), floor_sum=0, total=2)
    assert shipment_entries(shipment, *MARCH) == [
        Entry(2, d(3, 3), d(3, 3), supply_cost=2, kit_id=9)
    ]


def test_a_kit_with_two_therapies_on_one_date_gives_each_infusion_day_its_share():
    # A kit of 3 infusion days: therapy 1 on 03-01 and 03-02, therapy 2 also on 03-02.
    # 1000 cents over 3 days: 333, 333, 334 (the last by date, then therapy).
    days = ((d(3, 2), 2), (d(3, 1), 1), (d(3, 2), 1))
    shipment = Shipment(9, days, moved_on=d(3, 1), floor_sum=333, total=1000)
    entries = shipment_entries(shipment, *MARCH)
    assert entries == [
        Entry(1, d(3, 1), d(3, 1), supply_cost=333, kit_id=9),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=9),
        Entry(2, d(3, 2), d(3, 2), supply_cost=334, kit_id=9),
    ]
    assert sum(entry.supply_cost for entry in entries) == 1000


def test_a_shipment_without_days_gives_nothing():
    assert shipment_entries(Shipment(7, (), d(3, 1), 0, 100), *MARCH) == []


# --- equipment stays -------------------------------------------------------------------------


def test_a_stay_costs_its_rounded_daily_rate_each_day_up_to_but_not_including_its_end():
    stay = Stay(1, 9, start=d(3, 5), end=d(3, 8), daily_rate=Decimal("12.345"))
    # 12.345 -> 1234.5 cents -> 1235; days 03-05, 03-06, 03-07
    assert stay_entries(stay, *MARCH) == [Entry(1, d(3, 5), d(3, 7), equipment_cost=1235, kit_id=9)]
    assert total_by(stay_entries(stay, *MARCH), lambda e: e.therapy_id)[1].equipment_cost == 3705


def test_an_open_stay_runs_to_the_period_end():
    stay = Stay(1, None, start=d(3, 20), end=None, daily_rate=Decimal("5.00"))
    assert stay_entries(stay, *MARCH) == [Entry(1, d(3, 20), d(3, 31), equipment_cost=500)]


def test_a_stay_is_clamped_to_the_period():
    stay = Stay(1, 9, start=d(2, 20), end=d(3, 3), daily_rate=Decimal("5.00"))
    assert stay_entries(stay, *MARCH) == [Entry(1, d(3, 1), d(3, 2), equipment_cost=500, kit_id=9)]
    long = Stay(1, 9, start=d(2, 20), end=d(4, 10), daily_rate=Decimal("5.00"))
    assert stay_entries(long, *MARCH) == [Entry(1, d(3, 1), d(3, 31), equipment_cost=500, kit_id=9)]


def test_a_stay_ending_on_the_periods_first_day_gives_nothing():
    stay = Stay(1, 9, start=d(2, 20), end=d(3, 1), daily_rate=Decimal("5.00"))
    assert stay_entries(stay, *MARCH) == []


def test_a_stay_ending_the_day_it_started_or_outside_the_period_gives_nothing():
    assert stay_entries(Stay(1, 9, d(3, 5), d(3, 5), Decimal("5.00")), *MARCH) == []
    assert stay_entries(Stay(1, 9, d(4, 1), None, Decimal("5.00")), *MARCH) == []


# --- takebacks -------------------------------------------------------------------------------


def test_a_takeback_counts_on_the_day_it_came_back_within_the_period():
    takeback = Takeback(1, 7, on=d(3, 10), credit=500, waste=250)
    assert takeback_entries(takeback, *MARCH) == [
        Entry(1, d(3, 10), d(3, 10), return_credit=500, waste_cost=250, kit_id=7)
    ]
    assert takeback_entries(takeback, d(3, 10), d(3, 10)) != []
    assert takeback_entries(takeback, d(3, 1), d(3, 9)) == []
    assert takeback_entries(takeback, d(3, 11), d(3, 31)) == []


# --- adding up -------------------------------------------------------------------------------


def test_total_by_multiplies_each_entry_by_its_days_and_groups_by_key():
    entries = [
        Entry(1, d(3, 1), d(3, 10), units=1, expected_revenue=8000, rate=Decimal("80.00")),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
        Entry(2, d(3, 5), d(3, 7), equipment_cost=1235, kit_id=9),
        Entry(2, d(3, 8), d(3, 8), return_credit=500, waste_cost=250, kit_id=7),
    ]
    by_therapy = total_by(entries, lambda entry: entry.therapy_id)
    assert by_therapy == {
        1: Figures(per_diem_units=10, supply_cost=333, expected_revenue=80000),
        2: Figures(equipment_cost=3705, return_credit=500, waste_cost=250),
    }
    by_kit = total_by(entries, lambda entry: entry.kit_id)
    assert by_kit == {
        None: Figures(per_diem_units=10, expected_revenue=80000),
        7: Figures(supply_cost=333, return_credit=500, waste_cost=250),
        9: Figures(equipment_cost=3705),
    }
    by_month = total_by(entries, lambda entry: month_of(entry.first))
    assert list(by_month) == ["2026-03"]
    assert total_by([], lambda entry: entry.therapy_id) == {}


def test_by_day_expands_spans_merges_kits_and_keeps_the_rate():
    entries = [
        Entry(1, d(3, 1), d(3, 3), units=1, expected_revenue=8000, rate=Decimal("80.00")),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=8),
        Entry(2, d(3, 1), d(3, 1), equipment_cost=1235, kit_id=9),
    ]
    rows = by_day(entries)
    assert [(row.day, row.therapy_id) for row in rows] == [
        (d(3, 1), 1),
        (d(3, 1), 2),
        (d(3, 2), 1),
        (d(3, 3), 1),
    ]
    assert rows[0] == Day(
        1, d(3, 1), Figures(per_diem_units=1, expected_revenue=8000), set(), Decimal("80.00")
    )
    assert rows[1] == Day(2, d(3, 1), Figures(equipment_cost=1235), {9}, None)
    # the supply entries (no rate) do not wipe the per diem rate of the day
    assert rows[2] == Day(
        1,
        d(3, 2),
        Figures(per_diem_units=1, supply_cost=666, expected_revenue=8000),
        {7, 8},
        Decimal("80.00"),
    )
    assert rows[3] == Day(
        1, d(3, 3), Figures(per_diem_units=1, expected_revenue=8000), set(), Decimal("80.00")
    )


def test_by_day_keeps_the_rate_whatever_the_entry_order():
    entries = [
        Entry(1, d(3, 2), d(3, 2), supply_cost=333, kit_id=7),
        Entry(1, d(3, 2), d(3, 2), units=1, expected_revenue=5001, rate=Decimal("100.01")),
        Entry(1, d(3, 2), d(3, 2), return_credit=100, kit_id=7),
    ]
    (row,) = by_day(entries)
    assert row.rate == Decimal("100.01")
    assert row.kit_ids == {7}
    assert row.figures == Figures(
        per_diem_units=1, supply_cost=333, return_credit=100, expected_revenue=5001
    )


entry_strategy = st.builds(
    Entry,
    therapy_id=st.integers(min_value=1, max_value=3),
    first=st.dates(min_value=d(3, 1), max_value=d(3, 31)),
    last=st.just(d(3, 1)),  # replaced below so that last >= first
    units=st.integers(min_value=0, max_value=1),
    supply_cost=st.integers(min_value=-5000, max_value=5000),
    return_credit=st.integers(min_value=0, max_value=5000),
    waste_cost=st.integers(min_value=0, max_value=5000),
    equipment_cost=st.integers(min_value=0, max_value=5000),
    expected_revenue=st.integers(min_value=0, max_value=20000),
    kit_id=st.one_of(st.none(), st.integers(min_value=1, max_value=5)),
)


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(st.tuples(entry_strategy, st.integers(min_value=0, max_value=10)), max_size=15))
def test_the_days_of_by_day_add_up_to_total_by(raw: list[tuple[Entry, int]]):
    entries = [
        Entry(
            e.therapy_id,
            e.first,
            e.first + timedelta(days=span),
            e.units,
            e.supply_cost,
            e.return_credit,
            e.waste_cost,
            e.equipment_cost,
            e.expected_revenue,
            e.kit_id,
        )
        for e, span in raw
    ]
    totals = total_by(entries, lambda entry: entry.therapy_id)
    summed: dict[int, Figures] = {}
    for row in by_day(entries):
        summed.setdefault(row.therapy_id, Figures()).merge(row.figures)
    assert summed == totals


def test_figures_derive_total_cost_margin_and_cost_per_unit():
    figures = Figures(
        per_diem_units=4,
        supply_cost=10000,
        return_credit=1500,
        waste_cost=2000,
        equipment_cost=3705,
        expected_revenue=20000,
    )
    # total = 10000 - 1500 + 3705 = 12205 (the waste is part of supply, not added again)
    assert figures.total_cost == 12205
    # margin = 20000 - 12205 = 7795
    assert figures.margin == 7795
    # 12205 / 4 = 3051.25 cents -> 30.51
    assert figures.cost_per_unit == Decimal("30.51")
    assert str(figures.cost_per_unit) == "30.51"


def test_waste_does_not_change_the_total_cost():
    without = Figures(per_diem_units=1, supply_cost=1000)
    with_waste = Figures(per_diem_units=1, supply_cost=1000, waste_cost=900)
    assert with_waste.total_cost == without.total_cost == 1000
    assert with_waste.margin == without.margin == -1000


@pytest.mark.parametrize(
    ("total", "units", "expected"),
    [
        (1001, 2, "5.01"),  # 500.5 cents -> half-up -> 5.01
        (1003, 2, "5.02"),  # 501.5 cents -> 5.02
        (1000, 3, "3.33"),  # 333.33.. cents -> 3.33
        (2000, 3, "6.67"),  # 666.66.. cents -> 6.67
        (0, 5, "0.00"),
        (12205, 1, "122.05"),
    ],
)
def test_cost_per_unit_rounds_half_up_to_the_cent(total: int, units: int, expected: str):
    figures = Figures(per_diem_units=units, supply_cost=total)
    assert figures.cost_per_unit == Decimal(expected)
    assert str(figures.cost_per_unit) == expected


def test_cost_per_unit_is_none_without_units():
    assert Figures(supply_cost=1000).cost_per_unit is None
    assert Figures().cost_per_unit is None


def test_figures_add_merge_and_is_empty():
    figures = Figures()
    assert figures.is_empty()
    figures.add(Entry(1, d(3, 1), d(3, 3), units=1, expected_revenue=8000, supply_cost=10), 3)
    assert figures == Figures(per_diem_units=3, supply_cost=30, expected_revenue=24000)
    assert not figures.is_empty()
    other = Figures(return_credit=5, waste_cost=7, equipment_cost=11)
    figures.merge(other)
    assert figures == Figures(
        per_diem_units=3,
        supply_cost=30,
        return_credit=5,
        waste_cost=7,
        equipment_cost=11,
        expected_revenue=24000,
    )
    assert not Figures(waste_cost=1).is_empty()


# --- parse_claim -----------------------------------------------------------------------------


def raw_claim(**changes: object) -> dict[str, object]:
    raw: dict[str, object] = {
        "external_ref": "P-001",
        "hcpcs": "S9500",
        "date_of_service": "2026-03-05",
        "units": "2",
        "billed_amount": "300.50",
    }
    raw.update(changes)
    return raw


def errors_of(raw: dict[str, object]) -> dict[str, list[str]]:
    parsed = parse_claim(7, raw)
    assert isinstance(parsed, RowProblem), parsed
    assert parsed.line == 7
    return parsed.errors


def test_a_valid_claim_is_trimmed_and_its_code_upper_cased():
    parsed = parse_claim(
        2, raw_claim(external_ref="  P-001 ", hcpcs=" s9500 ", units=" 2 ", billed_amount="300.5")
    )
    assert parsed == Claim(2, "P-001", "S9500", date(2026, 3, 5), 2, Decimal("300.5"))


def test_a_claim_from_json_values():
    parsed = parse_claim(0, raw_claim(units=3, billed_amount="0"))
    assert parsed == Claim(0, "P-001", "S9500", date(2026, 3, 5), 3, Decimal("0"))


def test_zero_units_and_a_zero_amount_are_allowed():
    parsed = parse_claim(2, raw_claim(units="0", billed_amount="0.00"))
    assert isinstance(parsed, Claim)
    assert (parsed.units, parsed.billed_amount) == (0, Decimal("0.00"))


def test_every_field_problem_is_collected():
    assert errors_of(
        {
            "external_ref": "",
            "hcpcs": "S95",
            "date_of_service": "2026-02-30",
            "units": "-1",
            "billed_amount": "1.005",
        }
    ) == {
        "external_ref": ["is required"],
        "hcpcs": ["is not a 5-character HCPCS code"],
        "date_of_service": ["is not a date (YYYY-MM-DD)"],
        "units": ["is not a whole number of 0 or more"],
        "billed_amount": ["is not an amount of 0 or more with at most 2 decimals"],
    }


def test_empty_missing_or_blank_fields_are_required():
    required = ["is required"]
    assert errors_of({}) == dict.fromkeys(
        ("external_ref", "hcpcs", "date_of_service", "units", "billed_amount"), required
    )
    assert errors_of(raw_claim(external_ref="   ", units=None, billed_amount="")) == {
        "external_ref": required,
        "units": required,
        "billed_amount": required,
    }


@pytest.mark.parametrize("units", ["-1", "1.5", "two", "1e3", "+1", "0x10"])
def test_units_must_be_a_whole_number_of_zero_or_more(units: str):
    assert errors_of(raw_claim(units=units)) == {"units": ["is not a whole number of 0 or more"]}


def test_units_longer_than_six_digits_or_over_the_cap_are_refused():
    assert errors_of(raw_claim(units="1000000")) == {"units": ["is longer than 6 characters"]}
    # The same cap as the JSON schema: 100,000 units on one claim line.
    assert errors_of(raw_claim(units="100001")) == {"units": ["is more than 100000"]}
    assert isinstance(parse_claim(2, raw_claim(units="100000")), Claim)


def test_a_units_value_with_a_non_ascii_digit_is_a_row_problem_not_a_crash():
    # "²".isdigit() is True but int("²") raises: the row must be reported, not blow up.
    assert errors_of(raw_claim(units="²")) == {"units": ["is not a whole number of 0 or more"]}


@pytest.mark.parametrize(
    "day", ["2026-02-30", "2026-13-01", "2026-3-5", "20260305", "05/03/2026", "yesterday"]
)
def test_the_date_of_service_must_be_a_real_yyyy_mm_dd_date(day: str):
    assert errors_of(raw_claim(date_of_service=day)) == {
        "date_of_service": ["is not a date (YYYY-MM-DD)"]
    }


def test_a_date_longer_than_ten_characters_is_refused():
    # one message per field: too long says it all (as for a 6-character code)
    assert errors_of(raw_claim(date_of_service="2026-03-05T10:00")) == {
        "date_of_service": ["is longer than 10 characters"]
    }


def test_an_iso_week_date_is_not_yyyy_mm_dd():
    # "2026-W09-1" is 10 characters and date.fromisoformat (3.11+) reads it as 2026-02-23.
    assert errors_of(raw_claim(date_of_service="2026-W09-1")) == {
        "date_of_service": ["is not a date (YYYY-MM-DD)"]
    }


def test_leap_day_is_a_date_in_a_leap_year_only():
    parsed = parse_claim(2, raw_claim(date_of_service="2028-02-29"))
    assert isinstance(parsed, Claim)
    assert parsed.date_of_service == date(2028, 2, 29)
    assert "date_of_service" in errors_of(raw_claim(date_of_service="2026-02-29"))


@pytest.mark.parametrize("amount", ["1.005", "1.000", "-1.00", "-0.01", "NaN", "Infinity", "abc"])
def test_the_billed_amount_must_be_zero_or_more_with_at_most_two_decimals(amount: str):
    assert errors_of(raw_claim(billed_amount=amount)) == {
        "billed_amount": ["is not an amount of 0 or more with at most 2 decimals"]
    }


@pytest.mark.parametrize(("amount", "value"), [("12", "12"), ("12.3", "12.3"), ("0.01", "0.01")])
def test_amounts_with_up_to_two_decimals_are_kept_as_written(amount: str, value: str):
    parsed = parse_claim(2, raw_claim(billed_amount=amount))
    assert isinstance(parsed, Claim)
    assert str(parsed.billed_amount) == value


@pytest.mark.parametrize(
    ("code", "errors"),
    [
        ("S950", ["is not a 5-character HCPCS code"]),
        ("S95-0", ["is not a 5-character HCPCS code"]),
        ("S9 50", ["is not a 5-character HCPCS code"]),
        ("S95000", ["is longer than 5 characters"]),
    ],
)
def test_hcpcs_must_be_five_letters_or_digits(code: str, errors: list[str]):
    assert errors_of(raw_claim(hcpcs=code)) == {"hcpcs": errors}


def test_external_ref_is_at_most_64_characters():
    assert isinstance(parse_claim(2, raw_claim(external_ref="x" * 64)), Claim)
    assert errors_of(raw_claim(external_ref="x" * 65)) == {
        "external_ref": ["is longer than 64 characters"]
    }


# --- parse_claims_csv ------------------------------------------------------------------------

HEADER = "external_ref,hcpcs,date_of_service,units,billed_amount\n"


def test_a_csv_gives_its_claims_with_their_line_numbers():
    text = HEADER + "P-001,S9500,2026-03-05,1,150.00\nP-002,s9501,2026-03-06,2,300\n"
    assert parse_claims_csv(text) == (
        [
            Claim(2, "P-001", "S9500", date(2026, 3, 5), 1, Decimal("150.00")),
            Claim(3, "P-002", "S9501", date(2026, 3, 6), 2, Decimal("300")),
        ],
        [],
        [],
    )


def test_missing_columns_are_reported_in_the_contracts_order():
    text = "external_ref,units,hcpcs\nP-001,1,S9500\n"
    assert parse_claims_csv(text) == ([], [], ["date_of_service", "billed_amount"])
    assert parse_claims_csv("") == (
        [],
        [],
        ["external_ref", "hcpcs", "date_of_service", "units", "billed_amount"],
    )


def test_the_header_tolerates_case_whitespace_order_and_extra_columns():
    text = (
        " Billed_Amount ,UNITS, Date_Of_Service,HCPCS , External_Ref,Notes\r\n"
        "150.00,1,2026-03-05,S9500,P-001,whatever\r\n"
    )
    claims, problems, missing = parse_claims_csv(text)
    assert (problems, missing) == ([], [])
    assert claims == [Claim(2, "P-001", "S9500", date(2026, 3, 5), 1, Decimal("150.00"))]


def test_blank_lines_are_skipped_but_still_counted():
    text = (
        HEADER  # line 1
        + "\n"  # 2: empty
        + "P-001,S9500,2026-03-05,1,150.00\n"  # 3
        + ",,,,\n"  # 4: only separators
        + "   \n"  # 5: only spaces
        + " , , , , \n"  # 6: spaces between separators
        + "P-002,S9500,2026-03-06,1,150.00\n"  # 7
    )
    claims, problems, missing = parse_claims_csv(text)
    assert (problems, missing) == ([], [])
    assert [claim.line for claim in claims] == [3, 7]


def test_crlf_line_endings_count_one_line_each():
    text = HEADER.replace("\n", "\r\n") + "\r\nP-001,S9500,2026-03-05,1,150.00\r\n"
    claims, _, _ = parse_claims_csv(text)
    assert [claim.line for claim in claims] == [3]


def test_row_problems_carry_the_physical_line_number_and_valid_rows_are_still_read():
    text = (
        HEADER  # 1
        + "P-001,S9500,2026-03-05,1,150.00\n"  # 2
        + "P-002,S95,2026-02-30,x,1.005\n"  # 3
        + "\n"  # 4
        + "P-003,S9500,2026-03-05,1,150.00,oops\n"  # 5: one field too many
        + "P-004,S9500\n"  # 6: too few
    )
    claims, problems, missing = parse_claims_csv(text)
    assert missing == []
    assert [claim.line for claim in claims] == [2]
    assert problems == [
        RowProblem(
            3,
            {
                "hcpcs": ["is not a 5-character HCPCS code"],
                "date_of_service": ["is not a date (YYYY-MM-DD)"],
                "units": ["is not a whole number of 0 or more"],
                "billed_amount": ["is not an amount of 0 or more with at most 2 decimals"],
            },
        ),
        RowProblem(5, {"row": ["has more fields than the header"]}),
        RowProblem(
            6,
            {
                "date_of_service": ["is required"],
                "units": ["is required"],
                "billed_amount": ["is required"],
            },
        ),
    ]


def test_quoted_fields_may_hold_commas():
    text = HEADER + '"P,001",S9500,2026-03-05,1,"150.00"\n'
    claims, problems, _ = parse_claims_csv(text)
    assert problems == []
    assert claims == [Claim(2, "P,001", "S9500", date(2026, 3, 5), 1, Decimal("150.00"))]


def test_a_header_only_file_has_no_claims():
    assert parse_claims_csv(HEADER) == ([], [], [])


# --- reconcile -------------------------------------------------------------------------------


def claim(line: int, ref: str, day: date, units: int, amount: str, code: str = "S9500") -> Claim:
    return Claim(line, ref, code, day, units, Decimal(amount))


def delivered(ref: str, day: date, units: int, cents: int, code: str = "S9500") -> Delivered:
    return Delivered(ref, code, day, units, cents)


def test_reconcile_sorts_claims_into_the_four_outcomes():
    claims = [
        claim(2, "P1", d(3, 1), 1, "150.00"),  # matched
        claim(4, "P1", d(3, 2), 1, "150.00"),  # billed twice ...
        claim(3, "P1", d(3, 2), 1, "150.00"),  # ... so 2 billed against 1 delivered
        claim(5, "P2", d(3, 1), 1, "80.00"),  # nothing delivered
    ]
    rows = [
        delivered("P1", d(3, 1), 1, 15000),
        delivered("P1", d(3, 2), 1, 15000),
        delivered("P1", d(3, 3), 1, 15000),  # not billed
        delivered("P3", d(3, 1), 0, 0),  # nothing counted: ignored
    ]
    result = reconcile(claims, rows)
    assert result.matched == [
        Match("P1", "S9500", d(3, 1), 1, 1, Decimal("150.00"), Decimal("150.00"), (2,))
    ]
    assert result.unit_mismatches == [
        Match("P1", "S9500", d(3, 2), 2, 1, Decimal("300.00"), Decimal("150.00"), (3, 4))
    ]
    assert result.delivered_not_billed == [
        Match("P1", "S9500", d(3, 3), 0, 1, Decimal("0.00"), Decimal("150.00"), ())
    ]
    assert result.billed_not_delivered == [
        Match("P2", "S9500", d(3, 1), 1, 0, Decimal("80.00"), Decimal("0.00"), (5,))
    ]
    assert str(result.delivered_not_billed[0].billed_amount) == "0.00"
    assert str(result.billed_not_delivered[0].expected_revenue) == "0.00"


def test_delivered_rows_of_the_same_key_add_up_units_and_expected_revenue():
    claims = [claim(2, "P1", d(3, 1), 2, "150.01")]
    rows = [delivered("P1", d(3, 1), 1, 7500), delivered("P1", d(3, 1), 1, 7501)]
    result = reconcile(claims, rows)
    # 7500 + 7501 = 15001 cents = 150.01
    assert result.matched == [
        Match("P1", "S9500", d(3, 1), 2, 2, Decimal("150.01"), Decimal("150.01"), (2,))
    ]
    assert str(result.matched[0].expected_revenue) == "150.01"


def test_duplicate_claim_lines_add_up_and_can_match():
    claims = [claim(9, "P1", d(3, 1), 1, "75.00"), claim(4, "P1", d(3, 1), 1, "75.50")]
    result = reconcile(claims, [delivered("P1", d(3, 1), 2, 15000)])
    assert result.matched == [
        Match("P1", "S9500", d(3, 1), 2, 2, Decimal("150.50"), Decimal("150.00"), (4, 9))
    ]


def test_a_zero_unit_delivered_row_does_not_count_as_delivered():
    result = reconcile([claim(2, "P1", d(3, 1), 1, "10.00")], [delivered("P1", d(3, 1), 0, 0)])
    assert result.matched == result.unit_mismatches == result.delivered_not_billed == []
    assert result.billed_not_delivered == [
        Match("P1", "S9500", d(3, 1), 1, 0, Decimal("10.00"), Decimal("0.00"), (2,))
    ]
    assert reconcile([], [delivered("P1", d(3, 1), 0, 0)]).delivered_not_billed == []


def test_the_key_is_patient_code_and_date_and_results_are_sorted_by_it():
    claims = [
        claim(2, "P2", d(3, 1), 1, "1.00"),
        claim(3, "P1", d(3, 2), 1, "1.00"),
        claim(4, "P1", d(3, 1), 1, "1.00", code="S9501"),
        claim(5, "P1", d(3, 1), 1, "1.00"),
    ]
    rows = [
        delivered("P1", d(3, 1), 1, 100),
        delivered("P1", d(3, 1), 1, 100, code="S9501"),
        delivered("P1", d(3, 2), 1, 100),
        delivered("P2", d(3, 1), 1, 100),
    ]
    result = reconcile(claims, rows)
    assert [(m.external_ref, m.hcpcs, m.date_of_service, m.lines) for m in result.matched] == [
        ("P1", "S9500", d(3, 1), (5,)),
        ("P1", "S9500", d(3, 2), (3,)),
        ("P1", "S9501", d(3, 1), (4,)),
        ("P2", "S9500", d(3, 1), (2,)),
    ]
    assert result.unit_mismatches == result.billed_not_delivered == []
    assert result.delivered_not_billed == []


def test_reconciling_nothing_gives_nothing():
    result = reconcile([], [])
    assert (result.matched, result.billed_not_delivered) == ([], [])
    assert (result.delivered_not_billed, result.unit_mismatches) == ([], [])
