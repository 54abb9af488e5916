"""The equipment lifecycle, free of the database: which moves are legal, and the periods a
unit spent at patients' homes."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from inventory.ledger.models import EquipmentStatus as S

# Moves warehouse staff make by hand. Reserving, delivering and returning a unit happen
# through planning, kits and deliveries, not through a transition.
MANUAL_MOVES: dict[S, frozenset[S]] = {
    S.DIRTY: frozenset({S.CLEANING}),
    S.CLEANING: frozenset({S.AVAILABLE, S.REPAIR}),
    S.REPAIR: frozenset({S.AVAILABLE}),
}


def legal_move(current: S, target: S) -> bool:
    """dirty -> cleaning -> available; cleaning -> repair -> available; any -> retired."""
    if target is S.RETIRED:
        return current is not S.RETIRED
    return target in MANUAL_MOVES.get(current, frozenset())


def allowed_from(current: S) -> list[S]:
    moves = set(MANUAL_MOVES.get(current, frozenset()))
    if current is not S.RETIRED:
        moves.add(S.RETIRED)
    return sorted(moves, key=lambda status: status.value)


@dataclass(frozen=True)
class StatusChange:
    on: date
    from_status: S
    to_status: S
    patient_id: int | None


@dataclass(frozen=True)
class PatientPeriod:
    patient_id: int
    start: date
    end: date | None  # None: still there


def patient_periods(changes: Iterable[StatusChange]) -> list[PatientPeriod]:
    """The stretches a unit spent at patients' homes: from the change that put it
    ``at_patient`` to the next change that took it out (a return, a retirement)."""
    periods: list[PatientPeriod] = []
    open_period: tuple[int, date] | None = None
    for change in changes:
        if open_period is not None and change.from_status is S.AT_PATIENT:
            periods.append(PatientPeriod(open_period[0], open_period[1], change.on))
            open_period = None
        if change.to_status is S.AT_PATIENT and change.patient_id is not None:
            open_period = (change.patient_id, change.on)
    if open_period is not None:
        periods.append(PatientPeriod(open_period[0], open_period[1], None))
    return periods
