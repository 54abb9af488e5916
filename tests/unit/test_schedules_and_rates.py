"""Infusion schedules (parse, expand, horizon) and the payer rate in force on a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest

from inventory.care.rules import (
    ScheduleError,
    expand,
    parse_schedule,
    rate_in_force,
    schedule_horizon,
)

# 2026-03-02 is a Monday.
MONDAY = date(2026, 3, 2)


def schedule_error(raw: Any) -> ScheduleError:
    with pytest.raises(ScheduleError) as raised:
        parse_schedule(raw)
    return raised.value


# --- parse_schedule ------------------------------------------------------------------------------


def test_every_days_parses_to_a_step_in_days():
    schedule = parse_schedule({"every_days": 14})
    assert (schedule.every_days, schedule.weekdays, schedule.dates) == (14, None, None)
    assert schedule.as_json() == {"every_days": 14}


def test_weekdays_parse_to_monday_based_numbers_case_insensitively_without_duplicates():
    schedule = parse_schedule({"weekdays": ["thu", "MON", "mon"]})
    assert schedule.weekdays == frozenset({0, 3})
    assert schedule.every_days is None and schedule.dates is None
    assert schedule.as_json() == {"weekdays": ["mon", "thu"]}


def test_explicit_dates_parse_sorted_and_deduplicated():
    schedule = parse_schedule({"dates": ["2026-03-20", "2026-03-06", "2026-03-20"]})
    assert schedule.dates == (date(2026, 3, 6), date(2026, 3, 20))
    assert schedule.as_json() == {"dates": ["2026-03-06", "2026-03-20"]}


def test_a_rule_given_as_null_does_not_count_as_a_rule():
    schedule = parse_schedule({"every_days": 7, "weekdays": None, "dates": None})
    assert schedule.every_days == 7


def test_a_schedule_without_any_rule_is_refused_on_the_schedule_field():
    error = schedule_error({})
    assert error.field == "schedule"
    assert "exactly one" in error.message


def test_a_schedule_with_two_rules_is_refused_on_the_schedule_field():
    error = schedule_error({"every_days": 14, "weekdays": ["mon"]})
    assert error.field == "schedule"
    assert "exactly one" in error.message


def test_an_unknown_rule_is_refused_naming_it():
    error = schedule_error({"monthly": 1})
    assert error.field == "schedule"
    assert "monthly" in error.message


def test_an_unknown_rule_next_to_a_good_one_is_still_refused():
    error = schedule_error({"every_days": 14, "hourly": 3})
    assert error.field == "schedule"
    assert "hourly" in error.message


@pytest.mark.parametrize("weekdays", [["mon", "funday"], ["monday"], [3]])
def test_a_bad_weekday_is_refused_on_the_weekdays_field(weekdays):
    error = schedule_error({"weekdays": weekdays})
    assert error.field == "schedule.weekdays"
    assert "is not one of" in error.message


@pytest.mark.parametrize("weekdays", [[], "mon"])
def test_weekdays_must_be_a_non_empty_list(weekdays):
    assert schedule_error({"weekdays": weekdays}).field == "schedule.weekdays"


@pytest.mark.parametrize("every_days", [0, 366, -14])
def test_every_days_outside_one_to_365_is_refused(every_days):
    error = schedule_error({"every_days": every_days})
    assert error.field == "schedule.every_days"
    assert error.message == "must be 1 to 365"


@pytest.mark.parametrize("every_days", [1, 365])
def test_every_days_of_one_and_365_are_the_accepted_limits(every_days):
    assert parse_schedule({"every_days": every_days}).every_days == every_days


@pytest.mark.parametrize("every_days", [True, 14.0, "14"])
def test_every_days_must_be_a_whole_number_not_a_bool_float_or_string(every_days):
    error = schedule_error({"every_days": every_days})
    assert error.field == "schedule.every_days"
    assert error.message == "must be a whole number of days"


@pytest.mark.parametrize("text", ["2026-02-30", "next tuesday", "2026/03/06", ""])
def test_a_bad_date_is_refused_on_the_dates_field_naming_it(text):
    error = schedule_error({"dates": ["2026-03-06", text]})
    assert error.field == "schedule.dates"
    assert repr(text) in error.message


def test_a_date_that_is_not_a_string_is_refused_on_the_dates_field():
    error = schedule_error({"dates": ["2026-03-06", 20260306]})
    assert error.field == "schedule.dates"
    assert "YYYY-MM-DD" in error.message


@pytest.mark.parametrize("dates", [[], "2026-03-06"])
def test_dates_must_be_a_non_empty_list(dates):
    assert schedule_error({"dates": dates}).field == "schedule.dates"


def test_more_than_400_dates_are_refused():
    many = [(MONDAY + timedelta(days=n)).isoformat() for n in range(401)]
    assert schedule_error({"dates": many}).field == "schedule.dates"
    assert len(parse_schedule({"dates": many[:400]}).dates or ()) == 400


def test_a_schedule_error_is_a_value_error_reading_field_colon_message():
    error = schedule_error({"every_days": 0})
    assert isinstance(error, ValueError)
    assert str(error) == "schedule.every_days: must be 1 to 365"


# --- expand --------------------------------------------------------------------------------------


def test_every_days_runs_from_the_start_inclusive_to_through_inclusive():
    schedule = parse_schedule({"every_days": 14})
    days = expand(schedule, date(2026, 1, 1), date(2026, 1, 29))
    assert days == [date(2026, 1, 1), date(2026, 1, 15), date(2026, 1, 29)]


def test_every_days_stops_before_a_step_that_would_pass_through():
    schedule = parse_schedule({"every_days": 14})
    assert expand(schedule, date(2026, 1, 1), date(2026, 1, 28)) == [
        date(2026, 1, 1),
        date(2026, 1, 15),
    ]


def test_every_14_days_over_a_year_gives_27_infusions():
    days = expand(parse_schedule({"every_days": 14}), date(2026, 1, 1), date(2027, 1, 1))
    assert len(days) == 27
    assert days[-1] == date(2026, 12, 31)


def test_a_one_day_window_on_the_start_holds_just_the_start():
    assert expand(parse_schedule({"every_days": 7}), MONDAY, MONDAY) == [MONDAY]


def test_weekdays_give_each_matching_day_in_the_window():
    schedule = parse_schedule({"weekdays": ["mon", "thu"]})
    days = expand(schedule, MONDAY, MONDAY + timedelta(days=13))
    assert days == [
        date(2026, 3, 2),
        date(2026, 3, 5),
        date(2026, 3, 9),
        date(2026, 3, 12),
    ]


def test_weekdays_do_not_need_the_start_to_be_one_of_them():
    schedule = parse_schedule({"weekdays": ["fri"]})
    assert expand(schedule, MONDAY, MONDAY + timedelta(days=11)) == [
        date(2026, 3, 6),
        date(2026, 3, 13),
    ]


def test_explicit_dates_are_filtered_to_the_window_inclusive():
    schedule = parse_schedule(
        {"dates": ["2026-02-27", "2026-03-02", "2026-03-10", "2026-03-16", "2026-03-17"]}
    )
    assert expand(schedule, date(2026, 3, 2), date(2026, 3, 16)) == [
        date(2026, 3, 2),
        date(2026, 3, 10),
        date(2026, 3, 16),
    ]


@pytest.mark.parametrize(
    "raw", [{"every_days": 1}, {"weekdays": ["mon"]}, {"dates": ["2026-03-02"]}]
)
def test_a_window_that_ends_before_it_starts_is_empty(raw):
    assert expand(parse_schedule(raw), MONDAY, MONDAY - timedelta(days=1)) == []


# --- schedule_horizon ----------------------------------------------------------------------------


def test_an_end_date_inside_the_rolling_year_is_the_horizon():
    today = date(2026, 3, 1)
    assert schedule_horizon(date(2026, 1, 1), date(2026, 6, 30), today) == date(2026, 6, 30)


def test_without_an_end_date_the_horizon_is_365_days_after_today():
    today = date(2026, 3, 1)
    assert schedule_horizon(date(2026, 1, 1), None, today) == date(2027, 3, 1)


def test_an_end_date_beyond_the_rolling_year_is_capped_at_365_days():
    today = date(2026, 3, 1)
    assert schedule_horizon(date(2026, 1, 1), date(2030, 1, 1), today) == date(2027, 3, 1)


def test_a_start_in_the_future_rolls_the_year_from_the_start():
    today = date(2026, 3, 1)
    assert schedule_horizon(date(2026, 5, 1), None, today) == date(2027, 5, 1)
    assert schedule_horizon(date(2026, 5, 1), date(2028, 1, 1), today) == date(2027, 5, 1)
    assert schedule_horizon(date(2026, 5, 1), date(2026, 8, 1), today) == date(2026, 8, 1)


def test_an_end_date_already_past_is_still_the_horizon():
    today = date(2026, 3, 1)
    assert schedule_horizon(date(2025, 1, 1), date(2025, 6, 1), today) == date(2025, 6, 1)


# --- rate_in_force -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    hcpcs: str
    effective_from: date
    rate: Decimal


FEE_SCHEDULE = [
    Rate("S9357", date(2026, 1, 1), Decimal("200.0000")),
    Rate("S9357", date(2026, 3, 15), Decimal("215.0000")),
    Rate("S9357", date(2026, 7, 1), Decimal("230.0000")),
    Rate("S9338", date(2025, 1, 1), Decimal("99.0000")),
    Rate("S9338", date(2026, 3, 10), Decimal("101.0000")),
]


def test_the_rate_in_force_is_the_latest_effective_on_or_before_the_day():
    rate = rate_in_force(FEE_SCHEDULE, "S9357", date(2026, 5, 20))
    assert rate is not None and rate.rate == Decimal("215.0000")


def test_a_rate_is_in_force_on_its_effective_date():
    rate = rate_in_force(FEE_SCHEDULE, "S9357", date(2026, 7, 1))
    assert rate is not None and rate.rate == Decimal("230.0000")


def test_a_mid_month_change_applies_from_its_day_and_not_before():
    before = rate_in_force(FEE_SCHEDULE, "S9357", date(2026, 3, 14))
    on = rate_in_force(FEE_SCHEDULE, "S9357", date(2026, 3, 15))
    after = rate_in_force(FEE_SCHEDULE, "S9357", date(2026, 3, 31))
    assert (before and before.rate, on and on.rate, after and after.rate) == (
        Decimal("200.0000"),
        Decimal("215.0000"),
        Decimal("215.0000"),
    )


def test_rates_for_other_codes_are_ignored():
    # S9338's change on 2026-03-10 is later than S9357's first rate but must not be picked.
    rate = rate_in_force(FEE_SCHEDULE, "S9357", date(2026, 3, 12))
    assert rate is not None
    assert (rate.hcpcs, rate.rate) == ("S9357", Decimal("200.0000"))


def test_no_rate_before_the_first_effective_date_is_none():
    assert rate_in_force(FEE_SCHEDULE, "S9357", date(2025, 12, 31)) is None


def test_a_code_without_any_rate_is_none():
    assert rate_in_force(FEE_SCHEDULE, "S9490", date(2026, 6, 1)) is None


def test_the_order_of_the_rates_does_not_matter():
    shuffled = list(reversed(FEE_SCHEDULE))
    rate = rate_in_force(shuffled, "S9357", date(2026, 12, 31))
    assert rate is not None and rate.effective_from == date(2026, 7, 1)
