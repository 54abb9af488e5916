"""Packing rules, free of the database: what a scan may count, swap or fill, and whether a
lot may go into a kit at all."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import TypeVar

K = TypeVar("K")


class ScanRefused(Exception):
    """A scan the kit cannot take; ``code`` says why, for clients to act on."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Slot:
    """One reservation of the scanned item in the kit."""

    reservation_id: int
    lot_id: int | None
    day: date | None
    quantity: int
    packed: int

    @property
    def room(self) -> int:
        return self.quantity - self.packed


@dataclass
class ScanPlan:
    """How a scan of ``quantity`` units of one lot lands in the kit."""

    # (reservation id, units): scanned units counted on reservations of the same lot.
    count: list[tuple[int, int]] = field(default_factory=list)
    # (reservation id, units): unscanned units of another lot whose reservation moves to the
    # scanned lot.
    swap: list[tuple[int, int]] = field(default_factory=list)
    # Units covering demand the kit has no reservation for (after a recall, say).
    fill: int = 0

    @property
    def moved(self) -> int:
        return sum(units for _, units in self.swap) + self.fill


def lot_refusal(
    lot_number: str, expiry: date, recalled: bool, today: date, last_day: date
) -> ScanRefused | None:
    """Why a lot may not go into a kit covering days up to ``last_day``, or None."""
    if recalled:
        return ScanRefused("recalled", f"Lot {lot_number} is recalled: it must not be packed.")
    if expiry < today:
        return ScanRefused("expired", f"Lot {lot_number} expired on {expiry.isoformat()}.")
    if expiry < last_day:
        return ScanRefused(
            "expires_before_last_day",
            f"Lot {lot_number} expires on {expiry.isoformat()}, before the kit's last "
            f"infusion day {last_day.isoformat()}.",
        )
    return None


def plan_scan(
    slots: Sequence[Slot], lot_id: int | None, quantity: int, unreserved: int
) -> ScanPlan:
    """Place ``quantity`` scanned units of ``lot_id``.

    First on reservations of that very lot (earliest day first); then by moving unscanned
    units of other lots' reservations to it (latest day first, so earlier days keep what was
    planned for them); then on demand the kit holds no reservation for. More than all of that
    together is refused: the kit does not need them.
    """
    if quantity <= 0:
        raise ValueError("a scan counts at least one unit")
    plan = ScanPlan()
    left = quantity
    by_day = sorted(slots, key=lambda s: (s.day or date.min, s.reservation_id))
    for slot in by_day:
        if left and slot.lot_id == lot_id and slot.room > 0:
            units = min(slot.room, left)
            plan.count.append((slot.reservation_id, units))
            left -= units
    for slot in reversed(by_day):
        if left and slot.lot_id != lot_id and slot.room > 0:
            units = min(slot.room, left)
            plan.swap.append((slot.reservation_id, units))
            left -= units
    if left:
        plan.fill = min(unreserved, left)
        left -= plan.fill
    if left:
        room = quantity - left
        raise ScanRefused(
            "too_many",
            f"The kit needs {room} more of this item; {quantity} were scanned."
            if room
            else "The kit needs no more of this item.",
        )
    return plan


def split_units(wanted: Sequence[tuple[K, int]], units: int) -> list[tuple[K, int]]:
    """Spread ``units`` over ``wanted`` (key, room) pairs in order: [(key, units), ...]."""
    placed = []
    for key, room in wanted:
        if units <= 0:
            break
        take = min(room, units)
        if take > 0:
            placed.append((key, take))
            units -= take
    if units > 0:
        raise ValueError("more units than room")
    return placed
