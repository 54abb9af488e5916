"""The equipment lifecycle rules: which manual moves are legal, and the periods a unit spent
at patients' homes as read from its status changes."""

from __future__ import annotations

import itertools
from datetime import date

import pytest

from inventory.equipment.rules import (
    PatientPeriod,
    StatusChange,
    allowed_from,
    legal_move,
    patient_periods,
)
from inventory.ledger.models import EquipmentStatus as S

# --- legal_move ----------------------------------------------------------------------------------

# Written out by hand from the contract, not derived from the module's own table:
# dirty -> cleaning -> available; cleaning -> repair -> available; any (not retired) -> retired.
LEGAL: frozenset[tuple[str, str]] = frozenset(
    {
        ("dirty", "cleaning"),
        ("cleaning", "available"),
        ("cleaning", "repair"),
        ("repair", "available"),
        ("available", "retired"),
        ("reserved", "retired"),
        ("at_patient", "retired"),
        ("dirty", "retired"),
        ("cleaning", "retired"),
        ("repair", "retired"),
    }
)
STATUSES = ["available", "reserved", "at_patient", "dirty", "cleaning", "repair", "retired"]
PAIRS = list(itertools.product(STATUSES, STATUSES))


def test_the_lifecycle_has_seven_statuses_so_forty_nine_pairs():
    assert sorted(status.value for status in S) == sorted(STATUSES)
    assert len(PAIRS) == 49


@pytest.mark.parametrize(("current", "target"), PAIRS, ids=[f"{a}->{b}" for a, b in PAIRS])
def test_exactly_the_contracts_moves_are_legal(current, target):
    assert legal_move(S(current), S(target)) is ((current, target) in LEGAL)


@pytest.mark.parametrize("current", STATUSES)
def test_the_moves_offered_from_a_status_are_its_legal_moves(current):
    offered = [status.value for status in allowed_from(S(current))]
    assert sorted(offered) == sorted(target for source, target in LEGAL if source == current)
    assert offered == sorted(offered)


# --- patient_periods -----------------------------------------------------------------------------

ALICE, BOB = 11, 22


def change(on: date, source: S, target: S, patient_id: int | None = None) -> StatusChange:
    return StatusChange(on=on, from_status=source, to_status=target, patient_id=patient_id)


def test_one_stay_runs_from_the_delivery_to_the_return():
    changes = [
        change(date(2026, 1, 2), S.AVAILABLE, S.RESERVED),
        change(date(2026, 1, 5), S.RESERVED, S.AT_PATIENT, ALICE),
        change(date(2026, 2, 9), S.AT_PATIENT, S.DIRTY, ALICE),
        change(date(2026, 2, 10), S.DIRTY, S.CLEANING),
        change(date(2026, 2, 11), S.CLEANING, S.AVAILABLE),
    ]
    assert patient_periods(changes) == [PatientPeriod(ALICE, date(2026, 1, 5), date(2026, 2, 9))]


def test_two_patients_in_a_row_give_two_stays_in_order():
    changes = [
        change(date(2026, 1, 5), S.RESERVED, S.AT_PATIENT, ALICE),
        change(date(2026, 1, 20), S.AT_PATIENT, S.DIRTY, ALICE),
        change(date(2026, 1, 21), S.DIRTY, S.CLEANING),
        change(date(2026, 1, 22), S.CLEANING, S.AVAILABLE),
        change(date(2026, 1, 23), S.AVAILABLE, S.RESERVED),
        change(date(2026, 1, 25), S.RESERVED, S.AT_PATIENT, BOB),
        change(date(2026, 3, 1), S.AT_PATIENT, S.DIRTY, BOB),
    ]
    assert patient_periods(changes) == [
        PatientPeriod(ALICE, date(2026, 1, 5), date(2026, 1, 20)),
        PatientPeriod(BOB, date(2026, 1, 25), date(2026, 3, 1)),
    ]


def test_a_stay_without_a_return_yet_is_open_ended():
    changes = [
        change(date(2026, 1, 5), S.RESERVED, S.AT_PATIENT, ALICE),
        change(date(2026, 1, 20), S.AT_PATIENT, S.DIRTY, ALICE),
        change(date(2026, 4, 2), S.RESERVED, S.AT_PATIENT, BOB),
    ]
    assert patient_periods(changes) == [
        PatientPeriod(ALICE, date(2026, 1, 5), date(2026, 1, 20)),
        PatientPeriod(BOB, date(2026, 4, 2), None),
    ]


def test_retiring_a_unit_at_a_patients_home_ends_the_stay():
    changes = [
        change(date(2026, 1, 5), S.RESERVED, S.AT_PATIENT, ALICE),
        change(date(2026, 1, 30), S.AT_PATIENT, S.RETIRED, ALICE),
    ]
    assert patient_periods(changes) == [PatientPeriod(ALICE, date(2026, 1, 5), date(2026, 1, 30))]


def test_a_stay_that_starts_and_ends_on_one_day_is_kept():
    changes = [
        change(date(2026, 1, 5), S.RESERVED, S.AT_PATIENT, ALICE),
        change(date(2026, 1, 5), S.AT_PATIENT, S.DIRTY, ALICE),
    ]
    assert patient_periods(changes) == [PatientPeriod(ALICE, date(2026, 1, 5), date(2026, 1, 5))]


def test_a_life_that_never_reaches_a_patient_has_no_stays():
    changes = [
        change(date(2026, 1, 2), S.AVAILABLE, S.RESERVED),
        change(date(2026, 1, 3), S.RESERVED, S.AVAILABLE),
        change(date(2026, 1, 4), S.DIRTY, S.CLEANING),
        change(date(2026, 1, 5), S.CLEANING, S.REPAIR),
        change(date(2026, 1, 9), S.REPAIR, S.AVAILABLE),
        change(date(2026, 1, 10), S.AVAILABLE, S.RETIRED),
    ]
    assert patient_periods(changes) == []
    assert patient_periods([]) == []
