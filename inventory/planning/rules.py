"""Pure planning rules: FEFO allocation, shortages and reorder suggestions."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime


@dataclass(frozen=True)
class StockCandidate:
    """Available units of one item at one storage location, in one lot (or none)."""

    item_id: int
    lot_id: int | None
    location_id: int
    location_code: str
    expiry: date | None
    received_at: datetime
    available: int


@dataclass(frozen=True)
class Need:
    """Units of an item an infusion day still lacks."""

    day_id: int
    day: date
    item_id: int
    quantity: int


@dataclass(frozen=True)
class SupplyLine:
    """A template's supply: units of an item per infusion day."""

    item_id: int
    quantity_per_day: int


@dataclass(frozen=True)
class EquipmentLine:
    """A template's course equipment: units of a serialized item for the whole course."""

    item_id: int
    quantity: int


@dataclass(frozen=True)
class TemplateNeeds:
    """What a therapy's kit template asks for, as planning and packing read it."""

    lines: tuple[SupplyLine, ...] = ()
    equipment: tuple[EquipmentLine, ...] = ()


@dataclass(frozen=True)
class Allocation:
    day_id: int
    item_id: int
    lot_id: int | None
    location_id: int
    quantity: int


@dataclass(frozen=True)
class Shortfall:
    day_id: int
    item_id: int
    missing: int


def fefo_key(candidate: StockCandidate) -> tuple[date, datetime, str, int, int]:
    """First expiring first; then the oldest receipt; then a stable tie-break."""
    return (
        candidate.expiry or date.max,
        candidate.received_at,
        candidate.location_code,
        candidate.lot_id or 0,
        candidate.location_id,
    )


def allocate(
    needs: Sequence[Need], candidates: Iterable[StockCandidate]
) -> tuple[list[Allocation], list[Shortfall]]:
    """Serve ``needs`` in order, each from the stock that expires first among the lots still
    good on its day (expiry on or after the day), splitting across lots when one is short.

    Deterministic: the same needs and stock always give the same allocations.
    """
    pools: dict[int, list[StockCandidate]] = defaultdict(list)
    for candidate in candidates:
        if candidate.available > 0:
            pools[candidate.item_id].append(candidate)
    left: dict[int, list[int]] = {}
    for item_id, pool in pools.items():
        pool.sort(key=fefo_key)
        left[item_id] = [c.available for c in pool]

    allocations: list[Allocation] = []
    shortfalls: list[Shortfall] = []
    for need in needs:
        wanted = need.quantity
        pool = pools.get(need.item_id, [])
        remaining = left.get(need.item_id, [])
        for index, candidate in enumerate(pool):
            if wanted == 0:
                break
            if remaining[index] == 0 or (
                candidate.expiry is not None and candidate.expiry < need.day
            ):
                continue
            taken = min(wanted, remaining[index])
            remaining[index] -= taken
            wanted -= taken
            allocations.append(
                Allocation(
                    need.day_id, need.item_id, candidate.lot_id, candidate.location_id, taken
                )
            )
        if wanted:
            shortfalls.append(Shortfall(need.day_id, need.item_id, wanted))
    return allocations, shortfalls


@dataclass(frozen=True)
class ItemShortage:
    item_id: int
    demand: int
    available: int
    shortfall: int
    first_short_date: date | None


def shortage(
    item_id: int, demand_by_day: Sequence[tuple[date, int]], available: int
) -> ItemShortage:
    """Unreserved demand over the horizon against what is available now."""
    running = 0
    first_short: date | None = None
    for day, quantity in sorted(demand_by_day):
        running += quantity
        if first_short is None and running > available:
            first_short = day
    return ItemShortage(item_id, running, available, max(0, running - available), first_short)


def reorder_quantity(projected: int, reorder_point: int, multiple: int) -> int:
    """Units to order so projected available is back at the reorder point, in whole multiples."""
    if projected >= reorder_point:
        return 0
    deficit = reorder_point - projected
    if multiple <= 0:
        return deficit
    return math.ceil(deficit / multiple) * multiple
