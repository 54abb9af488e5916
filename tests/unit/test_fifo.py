"""First-in-first-out costing: which cost layers an outgoing quantity is taken from."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from inventory.ledger.rules import (
    LayerStock,
    LayerTake,
    NotEnoughInLayers,
    take_first_in_first_out,
)


def layer(layer_id: int, quantity: int, unit_cost: str) -> LayerStock:
    return LayerStock(layer_id=layer_id, quantity=quantity, unit_cost=Decimal(unit_cost))


def test_a_quantity_one_layer_can_cover_comes_from_that_layer_at_its_cost():
    takes = take_first_in_first_out([layer(7, 10, "2.5000")], 4)
    assert takes == [LayerTake(layer_id=7, quantity=4, unit_cost=Decimal("2.5000"))]


def test_a_quantity_that_exhausts_the_oldest_layer_continues_into_the_next_at_its_own_cost():
    layers = [layer(1, 3, "1.0000"), layer(2, 5, "1.2500"), layer(3, 9, "9.9999")]
    takes = take_first_in_first_out(layers, 6)
    assert takes == [
        LayerTake(1, 3, Decimal("1.0000")),
        LayerTake(2, 3, Decimal("1.2500")),
    ]


def test_taking_everything_the_layers_hold_empties_each_of_them():
    layers = [layer(1, 2, "1.0000"), layer(2, 3, "2.0000")]
    takes = take_first_in_first_out(layers, 5)
    assert [(t.layer_id, t.quantity) for t in takes] == [(1, 2), (2, 3)]


def test_empty_layers_are_skipped_and_produce_no_take():
    layers = [
        layer(1, 0, "5.0000"),
        layer(2, 4, "1.0000"),
        layer(3, 0, "7.0000"),
        layer(4, 2, "3.0000"),
    ]
    takes = take_first_in_first_out(layers, 5)
    assert takes == [LayerTake(2, 4, Decimal("1.0000")), LayerTake(4, 1, Decimal("3.0000"))]


def test_asking_for_more_than_the_layers_hold_reports_what_was_requested_and_what_is_held():
    layers = [layer(1, 2, "1.0000"), layer(2, 3, "2.0000")]
    with pytest.raises(NotEnoughInLayers) as raised:
        take_first_in_first_out(layers, 6)
    assert raised.value.requested == 6
    assert raised.value.held == 5
    assert "6 units requested" in str(raised.value)


def test_taking_from_no_layers_at_all_reports_nothing_held():
    with pytest.raises(NotEnoughInLayers) as raised:
        take_first_in_first_out([], 1)
    assert (raised.value.requested, raised.value.held) == (1, 0)


@pytest.mark.parametrize("quantity", [0, -1, -100])
def test_a_quantity_that_is_not_positive_is_refused(quantity):
    with pytest.raises(ValueError, match="positive") as raised:
        take_first_in_first_out([layer(1, 10, "1.0000")], quantity)
    assert not isinstance(raised.value, NotEnoughInLayers)


costs = st.decimals(min_value=0, max_value=10_000, places=4, allow_nan=False, allow_infinity=False)
layer_lists = st.lists(st.tuples(st.integers(0, 50), costs), min_size=1, max_size=12).map(
    lambda rows: [LayerStock(i + 1, q, c) for i, (q, c) in enumerate(rows)]
)


@st.composite
def layers_and_a_coverable_quantity(draw: st.DrawFn) -> tuple[list[LayerStock], int]:
    layers = draw(layer_lists.filter(lambda ls: sum(x.quantity for x in ls) > 0))
    quantity = draw(st.integers(1, sum(x.quantity for x in layers)))
    return layers, quantity


@given(layers_and_a_coverable_quantity())
def test_takes_add_up_to_the_quantity_in_layer_order_within_each_layer_at_its_cost(case):
    layers, quantity = case
    takes = take_first_in_first_out(layers, quantity)
    by_id = {x.layer_id: x for x in layers}

    assert sum(t.quantity for t in takes) == quantity
    ids = [t.layer_id for t in takes]
    assert ids == sorted(ids), "takes follow the layers' order"
    assert len(set(ids)) == len(ids), "each layer is taken from at most once"
    for take in takes:
        source = by_id[take.layer_id]
        assert 0 < take.quantity <= source.quantity
        assert take.unit_cost == source.unit_cost
    # Oldest first: every layer before the last one taken from is emptied completely.
    for take in takes[:-1]:
        assert take.quantity == by_id[take.layer_id].quantity
    # No non-empty layer is passed over before the last take.
    if takes:
        skipped = [x for x in layers if x.layer_id < ids[-1] and x.layer_id not in ids]
        assert all(x.quantity == 0 for x in skipped)


@given(layer_lists, st.integers(1, 100))
def test_a_quantity_beyond_the_layers_total_always_raises_with_the_total_held(layers, extra):
    held = sum(x.quantity for x in layers)
    with pytest.raises(NotEnoughInLayers) as raised:
        take_first_in_first_out(layers, held + extra)
    assert raised.value.requested == held + extra
    assert raised.value.held == held
