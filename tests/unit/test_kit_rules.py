"""Packing rules: where a scan lands in a kit (count, swap, fill or refuse), which lots may go
into a kit at all, and spreading units over places with room."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.kits.rules import ScanPlan, ScanRefused, Slot, lot_refusal, plan_scan, split_units

MON, TUE, WED, THU = (date(2026, 3, 9) + timedelta(days=n) for n in range(4))
LOT_A, LOT_B, LOT_C = 1, 2, 3


def slot(
    reservation_id: int, lot_id: int | None, day: date | None, quantity: int, packed: int = 0
) -> Slot:
    return Slot(
        reservation_id=reservation_id, lot_id=lot_id, day=day, quantity=quantity, packed=packed
    )


def totals(plan: ScanPlan) -> tuple[int, int, int]:
    """(counted, swapped, filled) units."""
    return (sum(u for _, u in plan.count), sum(u for _, u in plan.swap), plan.fill)


# --- plan_scan -----------------------------------------------------------------------------------


def test_units_of_the_reserved_lot_are_counted_on_the_earliest_day_first():
    # Given out of order; Monday partly scanned, Tuesday's older reservation first.
    slots = [
        slot(3, LOT_A, WED, 4),
        slot(1, LOT_A, MON, 4, packed=3),
        slot(7, LOT_A, TUE, 1),
        slot(2, LOT_A, TUE, 4),
        slot(9, LOT_A, MON, 2, packed=2),
    ]

    plan = plan_scan(slots, LOT_A, 7, unreserved=0)

    assert plan.count == [(1, 1), (2, 4), (7, 1), (3, 1)]
    assert (plan.swap, plan.fill, plan.moved) == ([], 0, 0)


def test_another_lot_swaps_unscanned_units_from_the_latest_day_first():
    slots = [slot(1, LOT_A, MON, 4), slot(2, LOT_A, TUE, 4), slot(3, LOT_C, WED, 4)]

    plan = plan_scan(slots, LOT_B, 6, unreserved=0)

    assert plan.count == []
    assert plan.swap == [(3, 4), (2, 2)]
    assert (plan.fill, plan.moved) == (0, 6)


def test_the_scanned_lot_is_counted_before_any_swap():
    slots = [slot(1, LOT_A, MON, 4), slot(2, LOT_B, TUE, 4), slot(3, LOT_A, WED, 4)]

    plan = plan_scan(slots, LOT_B, 6, unreserved=0)

    assert plan.count == [(2, 4)]
    assert plan.swap == [(3, 2)]


def test_a_partial_swap_leaves_earlier_days_and_scanned_units_alone():
    # Monday's 4 are untouched; Tuesday's 2 already scanned stay on lot A.
    slots = [slot(1, LOT_A, MON, 4), slot(2, LOT_A, TUE, 4, packed=2)]

    plan = plan_scan(slots, LOT_B, 3, unreserved=0)

    assert plan.swap == [(2, 2), (1, 1)]
    assert totals(plan) == (0, 3, 0)


def test_course_equipment_without_a_day_counts_before_any_day():
    slots = [slot(2, None, MON, 1), slot(1, None, None, 1)]
    assert plan_scan(slots, None, 1, unreserved=0).count == [(1, 1)]


def test_units_beyond_the_reservations_fill_unreserved_demand():
    slots = [slot(1, LOT_A, MON, 2), slot(2, LOT_C, TUE, 2)]

    plan = plan_scan(slots, LOT_A, 7, unreserved=4)

    assert plan.count == [(1, 2)]
    assert plan.swap == [(2, 2)]
    assert (plan.fill, plan.moved) == (3, 5)
    # After a recall released the kit's lot, only the unreserved demand is left to fill.
    assert totals(plan_scan([], LOT_B, 8, unreserved=8)) == (0, 0, 8)


def test_more_than_the_kit_needs_is_refused_as_too_many_saying_how_many_it_needs():
    slots = [slot(1, LOT_A, MON, 4, packed=1), slot(2, LOT_B, TUE, 2)]

    with pytest.raises(ScanRefused) as refused:
        plan_scan(slots, LOT_A, 9, unreserved=1)

    assert refused.value.code == "too_many"
    assert refused.value.message == "The kit needs 6 more of this item; 9 were scanned."
    assert str(refused.value) == refused.value.message
    with pytest.raises(ScanRefused) as complete:
        plan_scan([slot(1, LOT_A, MON, 4, packed=4)], LOT_A, 1, unreserved=0)
    assert (complete.value.code, complete.value.message) == (
        "too_many",
        "The kit needs no more of this item.",
    )


@pytest.mark.parametrize("quantity", [0, -3])
def test_a_scan_counts_at_least_one_unit(quantity):
    with pytest.raises(ValueError):
        plan_scan([slot(1, LOT_A, MON, 4)], LOT_A, quantity, unreserved=0)


slots_strategy = st.lists(
    st.tuples(
        st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
        st.one_of(st.none(), st.dates(MON, MON + timedelta(days=6))),
        st.integers(min_value=1, max_value=8),
        st.integers(min_value=0, max_value=8),
    ),
    max_size=6,
).map(
    lambda rows: [
        slot(index + 1, lot_id, day, quantity, min(packed, quantity))
        for index, (lot_id, day, quantity, packed) in enumerate(rows)
    ]
)


@settings(max_examples=300, deadline=None)
@given(
    slots=slots_strategy,
    lot_id=st.one_of(st.none(), st.integers(min_value=1, max_value=3)),
    quantity=st.integers(min_value=1, max_value=40),
    unreserved=st.integers(min_value=0, max_value=10),
)
def test_a_scan_lands_whole_within_the_room_or_is_refused_exactly_when_it_cannot(
    slots, lot_id, quantity, unreserved
):
    capacity = sum(s.room for s in slots) + unreserved
    try:
        plan = plan_scan(slots, lot_id, quantity, unreserved)
    except ScanRefused as refused:
        assert refused.code == "too_many"
        assert quantity > capacity
        return
    assert quantity <= capacity
    counted, swapped, filled = totals(plan)
    assert counted + swapped + filled == quantity
    assert plan.moved == swapped + filled
    assert 0 <= filled <= unreserved
    by_id = {s.reservation_id: s for s in slots}
    touched = [rid for rid, _ in plan.count] + [rid for rid, _ in plan.swap]
    assert len(touched) == len(set(touched))
    for rid, units in plan.count:
        assert by_id[rid].lot_id == lot_id
        assert 0 < units <= by_id[rid].room
    for rid, units in plan.swap:
        assert by_id[rid].lot_id != lot_id
        assert 0 < units <= by_id[rid].room


# --- lot_refusal ---------------------------------------------------------------------------------

TODAY = date(2026, 3, 10)
LAST_DAY = date(2026, 3, 20)


def test_a_recalled_lot_is_refused_as_recalled_even_when_also_expired():
    refusal = lot_refusal("L1", TODAY - timedelta(days=5), True, TODAY, LAST_DAY)
    assert refusal is not None
    assert refusal.code == "recalled"
    assert "L1" in refusal.message


def test_an_expired_lot_is_refused_with_its_expiry():
    refusal = lot_refusal("L2", date(2026, 3, 9), False, TODAY, LAST_DAY)
    assert refusal is not None
    assert refusal.code == "expired"
    assert "L2" in refusal.message and "2026-03-09" in refusal.message


def test_a_lot_expiring_before_the_kits_last_day_is_refused():
    refusal = lot_refusal("L3", LAST_DAY - timedelta(days=1), False, TODAY, LAST_DAY)
    assert refusal is not None
    assert refusal.code == "expires_before_last_day"
    assert "2026-03-19" in refusal.message and "2026-03-20" in refusal.message


@pytest.mark.parametrize("expiry", [LAST_DAY, LAST_DAY + timedelta(days=1), date(2030, 1, 1)])
def test_a_lot_good_until_the_last_day_or_later_is_fine(expiry):
    assert lot_refusal("L4", expiry, False, TODAY, LAST_DAY) is None


def test_a_lot_expiring_today_is_fine_for_a_kit_for_today():
    assert lot_refusal("L5", TODAY, False, TODAY, TODAY) is None


# --- split_units ---------------------------------------------------------------------------------


def test_units_fill_each_place_in_order_up_to_its_room_skipping_full_ones():
    assert split_units([("a", 3), ("b", 4), ("c", 5)], 6) == [("a", 3), ("b", 3)]
    assert split_units([("a", 0), ("b", 2), ("c", 0), ("d", 9)], 5) == [("b", 2), ("d", 3)]
    assert split_units([(1, 2), (2, 2)], 4) == [(1, 2), (2, 2)]
    assert split_units([("a", 3)], 0) == []


def test_more_units_than_room_is_an_error():
    with pytest.raises(ValueError):
        split_units([("a", 3), ("b", 1)], 5)
    with pytest.raises(ValueError):
        split_units([], 1)
