"""Pure ledger rules: no Flask, no SQLAlchemy, tested without a database."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal


@dataclass(frozen=True)
class LayerStock:
    """Units of one cost layer that could be taken, in the order they should go."""

    layer_id: int
    quantity: int
    unit_cost: Decimal


@dataclass(frozen=True)
class LayerTake:
    layer_id: int
    quantity: int
    unit_cost: Decimal


class NotEnoughInLayers(ValueError):
    def __init__(self, requested: int, held: int) -> None:
        super().__init__(f"{requested} units requested but the cost layers hold {held}")
        self.requested = requested
        self.held = held


def take_first_in_first_out(layers: Iterable[LayerStock], quantity: int) -> list[LayerTake]:
    """Take ``quantity`` units from the layers in the order given (oldest first).

    Each outgoing unit then carries the actual cost it was bought at.
    """
    if quantity <= 0:
        raise ValueError("quantity must be positive")
    takes: list[LayerTake] = []
    remaining = quantity
    held = 0
    for layer in layers:
        held += layer.quantity
        if remaining == 0 or layer.quantity <= 0:
            continue
        taken = min(layer.quantity, remaining)
        takes.append(LayerTake(layer.layer_id, taken, layer.unit_cost))
        remaining -= taken
    if remaining:
        raise NotEnoughInLayers(quantity, held)
    return takes
