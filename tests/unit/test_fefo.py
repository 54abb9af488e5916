"""FEFO allocation of stock to infusion days, shortages and reorder quantities."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from inventory.planning.rules import (
    Allocation,
    ItemShortage,
    Need,
    Shortfall,
    StockCandidate,
    allocate,
    fefo_key,
    reorder_quantity,
    shortage,
)

DAY = date(2026, 3, 10)
RECEIVED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FLUSH, FILTER = 101, 202


def stock(
    lot_id: int | None,
    available: int,
    expiry: date | None,
    item_id: int = FLUSH,
    location_id: int = 1,
    location_code: str = "A-01",
    received_at: datetime = RECEIVED,
) -> StockCandidate:
    return StockCandidate(
        item_id=item_id,
        lot_id=lot_id,
        location_id=location_id,
        location_code=location_code,
        expiry=expiry,
        received_at=received_at,
        available=available,
    )


def need(day_id: int, quantity: int, day: date = DAY, item_id: int = FLUSH) -> Need:
    return Need(day_id=day_id, day=day, item_id=item_id, quantity=quantity)


def taken(allocations: list[Allocation]) -> list[tuple[int, int | None, int, int]]:
    """(day_id, lot_id, location_id, quantity) per allocation, in order."""
    return [(a.day_id, a.lot_id, a.location_id, a.quantity) for a in allocations]


# --- allocate ------------------------------------------------------------------------------------


def test_the_lot_that_expires_first_is_used_first():
    later = stock(lot_id=1, available=10, expiry=date(2026, 9, 1))
    sooner = stock(lot_id=2, available=10, expiry=date(2026, 6, 1))
    allocations, shortfalls = allocate([need(1, 4)], [later, sooner])
    assert allocations == [Allocation(1, FLUSH, 2, 1, 4)]
    assert shortfalls == []


def test_a_lot_expiring_before_the_day_is_skipped_for_that_day():
    expires_first = stock(lot_id=1, available=10, expiry=DAY - timedelta(days=1))
    good = stock(lot_id=2, available=10, expiry=date(2026, 12, 1))
    allocations, _ = allocate([need(1, 3)], [expires_first, good])
    assert taken(allocations) == [(1, 2, 1, 3)]


def test_a_lot_expiring_on_the_day_itself_is_still_good_for_it():
    on_the_day = stock(lot_id=1, available=10, expiry=DAY)
    later = stock(lot_id=2, available=10, expiry=date(2026, 12, 1))
    allocations, _ = allocate([need(1, 3)], [later, on_the_day])
    assert taken(allocations) == [(1, 1, 1, 3)]


def test_a_lot_too_short_lived_for_a_later_day_is_used_for_an_earlier_one():
    short_lived = stock(lot_id=1, available=10, expiry=date(2026, 3, 15))
    long_lived = stock(lot_id=2, available=10, expiry=date(2026, 12, 1))
    needs = [need(1, 4, day=date(2026, 3, 10)), need(2, 4, day=date(2026, 3, 24))]
    allocations, shortfalls = allocate(needs, [long_lived, short_lived])
    assert taken(allocations) == [(1, 1, 1, 4), (2, 2, 1, 4)]
    assert shortfalls == []


def test_equal_expiries_go_to_the_oldest_receipt_first():
    newer = stock(lot_id=1, available=5, expiry=date(2026, 9, 1), received_at=RECEIVED)
    older = stock(
        lot_id=2,
        available=5,
        expiry=date(2026, 9, 1),
        received_at=RECEIVED - timedelta(days=30),
    )
    allocations, _ = allocate([need(1, 2)], [newer, older])
    assert taken(allocations) == [(1, 2, 1, 2)]


def test_equal_expiries_and_receipts_go_to_the_first_location_code():
    bin_b = stock(lot_id=7, available=5, expiry=date(2026, 9, 1), location_id=1, location_code="B")
    bin_a = stock(lot_id=7, available=5, expiry=date(2026, 9, 1), location_id=2, location_code="A")
    allocations, _ = allocate([need(1, 2)], [bin_b, bin_a])
    assert taken(allocations) == [(1, 7, 2, 2)]


def test_the_fefo_key_orders_by_expiry_then_receipt_then_location_code():
    candidates = [
        stock(1, 1, date(2026, 9, 1), location_code="A"),
        stock(2, 1, date(2026, 8, 1), location_code="Z"),
        stock(3, 1, date(2026, 9, 1), location_code="A", received_at=RECEIVED - timedelta(1)),
        stock(4, 1, None, location_code="A", received_at=RECEIVED - timedelta(999)),
        stock(5, 1, date(2026, 9, 1), location_code="0"),
    ]
    assert [c.lot_id for c in sorted(candidates, key=fefo_key)] == [2, 3, 5, 1, 4]


def test_a_need_larger_than_one_lot_splits_across_lots_in_expiry_order():
    first = stock(lot_id=1, available=3, expiry=date(2026, 5, 1))
    second = stock(lot_id=2, available=4, expiry=date(2026, 6, 1))
    third = stock(lot_id=3, available=9, expiry=date(2026, 7, 1))
    allocations, shortfalls = allocate([need(1, 10)], [third, second, first])
    assert taken(allocations) == [(1, 1, 1, 3), (1, 2, 1, 4), (1, 3, 1, 3)]
    assert shortfalls == []


def test_a_shortfall_records_exactly_what_is_missing_after_using_what_there_is():
    allocations, shortfalls = allocate(
        [need(1, 10)], [stock(lot_id=1, available=6, expiry=date(2026, 9, 1))]
    )
    assert taken(allocations) == [(1, 1, 1, 6)]
    assert shortfalls == [Shortfall(day_id=1, item_id=FLUSH, missing=4)]


def test_an_item_without_any_stock_is_short_by_the_whole_need():
    allocations, shortfalls = allocate([need(1, 2, item_id=FILTER)], [stock(1, 50, None)])
    assert allocations == []
    assert shortfalls == [Shortfall(1, FILTER, 2)]


def test_only_expired_stock_for_the_day_counts_as_missing():
    allocations, shortfalls = allocate(
        [need(1, 5)], [stock(lot_id=1, available=50, expiry=DAY - timedelta(days=1))]
    )
    assert allocations == []
    assert shortfalls == [Shortfall(1, FLUSH, 5)]


def test_untracked_stock_without_expiry_is_good_on_any_day():
    untracked = stock(lot_id=None, available=5, expiry=None)
    far_future = date(2099, 12, 31)
    allocations, shortfalls = allocate([need(1, 2), need(2, 3, day=far_future)], [untracked])
    assert taken(allocations) == [(1, None, 1, 2), (2, None, 1, 3)]
    assert shortfalls == []


def test_stock_with_an_expiry_is_used_before_untracked_stock():
    untracked = stock(lot_id=None, available=5, expiry=None, received_at=RECEIVED - timedelta(99))
    dated = stock(lot_id=4, available=5, expiry=date(2030, 1, 1))
    allocations, _ = allocate([need(1, 2)], [untracked, dated])
    assert taken(allocations) == [(1, 4, 1, 2)]


def test_needs_are_served_in_order_so_earlier_days_get_the_scarce_stock():
    scarce = stock(lot_id=1, available=5, expiry=date(2026, 12, 1))
    needs = [need(1, 4, day=date(2026, 3, 10)), need(2, 4, day=date(2026, 3, 12))]
    allocations, shortfalls = allocate(needs, [scarce])
    assert taken(allocations) == [(1, 1, 1, 4), (2, 1, 1, 1)]
    assert shortfalls == [Shortfall(2, FLUSH, 3)]


def test_items_are_allocated_from_their_own_stock_only():
    flushes = stock(lot_id=1, available=4, expiry=None, item_id=FLUSH)
    filters = stock(lot_id=2, available=1, expiry=None, item_id=FILTER, location_id=9)
    needs = [need(1, 4, item_id=FLUSH), need(1, 1, item_id=FILTER)]
    allocations, shortfalls = allocate(needs, [filters, flushes])
    assert allocations == [Allocation(1, FLUSH, 1, 1, 4), Allocation(1, FILTER, 2, 9, 1)]
    assert shortfalls == []


def test_candidates_with_nothing_available_are_ignored():
    empty = stock(lot_id=1, available=0, expiry=date(2026, 4, 1))
    full = stock(lot_id=2, available=3, expiry=date(2026, 9, 1))
    allocations, _ = allocate([need(1, 2)], [empty, full])
    assert taken(allocations) == [(1, 2, 1, 2)]


def test_the_same_input_always_gives_the_same_allocation():
    candidates = [
        stock(lot_id=n, available=3, expiry=date(2026, 9, 1), location_code=f"L{n % 3}")
        for n in range(1, 8)
    ]
    needs = [need(n, 4, day=DAY + timedelta(days=n)) for n in range(1, 6)]
    first = allocate(needs, candidates)
    second = allocate(needs, list(reversed(candidates)))
    assert first == second
    assert first == allocate(needs, candidates)
    assert sum(a.quantity for a in first[0]) == 20


# --- the FEFO properties, for any stock and any needs --------------------------------------------


@st.composite
def candidates_strategy(draw: st.DrawFn) -> list[StockCandidate]:
    """Stock as the ledger holds it: one row per item, lot and location; a lot has one expiry
    and a location one code; untracked stock (no lot) has no expiry."""
    expiry_of_lot = draw(
        st.lists(st.dates(date(2026, 3, 1), date(2026, 4, 30)), min_size=7, max_size=7)
    )
    rows = draw(
        st.lists(
            st.tuples(
                st.sampled_from([FLUSH, FILTER]),
                st.one_of(st.none(), st.integers(min_value=1, max_value=6)),
                st.integers(min_value=1, max_value=3),
                st.integers(min_value=0, max_value=12),
                st.integers(min_value=0, max_value=3),
            ),
            unique_by=lambda row: row[:3],
            max_size=10,
        )
    )
    return [
        stock(
            lot_id=lot_id,
            available=available,
            expiry=None if lot_id is None else expiry_of_lot[lot_id],
            item_id=item_id,
            location_id=location_id,
            location_code="CAB"[location_id - 1],
            received_at=RECEIVED + timedelta(days=received),
        )
        for item_id, lot_id, location_id, available, received in rows
    ]


needs_strategy = st.lists(
    st.tuples(
        st.integers(min_value=1, max_value=15),
        st.dates(date(2026, 3, 1), date(2026, 4, 30)),
        st.sampled_from([FLUSH, FILTER]),
    ),
    max_size=12,
).map(
    # One need per day id, so every allocation and shortfall names the need it serves.
    lambda rows: [
        need(index, quantity, day, item) for index, (quantity, day, item) in enumerate(rows)
    ]
)


@settings(max_examples=300, deadline=None)
@given(needs=needs_strategy, candidates=candidates_strategy())
def test_fefo_never_over_allocates_never_uses_a_lot_expired_on_its_day_and_accounts_for_each_need(
    needs, candidates
):
    allocations, shortfalls = allocate(needs, candidates)

    available: dict[int, int] = defaultdict(int)
    for candidate in candidates:
        available[candidate.item_id] += candidate.available
    allocated: dict[int, int] = defaultdict(int)
    for allocation in allocations:
        allocated[allocation.item_id] += allocation.quantity
        assert allocation.quantity > 0
    for item_id, quantity in allocated.items():
        assert quantity <= available[item_id]

    expiry_of = {(c.item_id, c.lot_id, c.location_id): c.expiry for c in candidates}
    served: dict[int, int] = defaultdict(int)
    for allocation in allocations:
        each = needs[allocation.day_id]
        assert allocation.item_id == each.item_id
        expiry = expiry_of[(allocation.item_id, allocation.lot_id, allocation.location_id)]
        assert expiry is None or expiry >= each.day
        served[allocation.day_id] += allocation.quantity
    missing = {gap.day_id: gap.missing for gap in shortfalls}
    assert len(missing) == len(shortfalls)
    assert all(gap.missing > 0 and gap.item_id == needs[gap.day_id].item_id for gap in shortfalls)
    for each in needs:
        assert served[each.day_id] + missing.get(each.day_id, 0) == each.quantity
    # Needs are served in order: allocations never go back to an earlier need.
    assert [a.day_id for a in allocations] == sorted(a.day_id for a in allocations)


@settings(max_examples=100, deadline=None)
@given(needs=needs_strategy, candidates=candidates_strategy())
def test_fefo_is_deterministic_whatever_order_the_stock_arrives_in(needs, candidates):
    assert allocate(needs, candidates) == allocate(needs, list(reversed(candidates)))


# --- shortage ------------------------------------------------------------------------------------


def test_the_first_short_date_is_the_first_day_cumulative_demand_exceeds_available():
    demand = [(date(2026, 3, 12), 4), (date(2026, 3, 10), 4), (date(2026, 3, 14), 4)]
    result = shortage(FLUSH, demand, available=8)
    assert result == ItemShortage(
        item_id=FLUSH,
        demand=12,
        available=8,
        shortfall=4,
        first_short_date=date(2026, 3, 14),
    )


def test_demand_exactly_equal_to_available_is_not_short():
    result = shortage(FLUSH, [(date(2026, 3, 10), 4), (date(2026, 3, 12), 4)], available=8)
    assert (result.demand, result.shortfall, result.first_short_date) == (8, 0, None)


def test_with_nothing_available_the_first_day_of_demand_is_short():
    result = shortage(FLUSH, [(date(2026, 3, 20), 1), (date(2026, 3, 11), 2)], available=0)
    assert (result.shortfall, result.first_short_date) == (3, date(2026, 3, 11))


def test_no_demand_is_no_shortage():
    assert shortage(FLUSH, [], available=5) == ItemShortage(FLUSH, 0, 5, 0, None)


# --- reorder_quantity ----------------------------------------------------------------------------


def test_a_deficit_is_ordered_in_whole_multiples_of_the_reorder_quantity():
    assert reorder_quantity(projected=3, reorder_point=20, multiple=10) == 20
    assert reorder_quantity(projected=10, reorder_point=20, multiple=10) == 10
    assert reorder_quantity(projected=-15, reorder_point=20, multiple=25) == 50


def test_nothing_is_ordered_at_or_above_the_reorder_point():
    assert reorder_quantity(projected=20, reorder_point=20, multiple=10) == 0
    assert reorder_quantity(projected=35, reorder_point=20, multiple=10) == 0


def test_a_reorder_multiple_of_zero_orders_the_raw_deficit():
    assert reorder_quantity(projected=3, reorder_point=20, multiple=0) == 17
    assert reorder_quantity(projected=-4, reorder_point=1, multiple=0) == 5
