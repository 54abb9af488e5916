"""Checks that the ledger's derived state still equals the sum of its movements."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from inventory.catalog.models import Item, Tracking
from inventory.kits.models import IN_OUR_HANDS, Kit
from inventory.ledger.models import (
    Balance,
    CostLayer,
    Movement,
    Reservation,
    ReservationStatus,
    SerialUnit,
)


def ledger_discrepancies(session: Session) -> list[str]:
    """Every place where balances, cost layers or serial units disagree with the movements."""
    problems: list[str] = []
    incoming = (
        select(
            Movement.item_id,
            Movement.lot_id,
            Movement.to_location_id.label("loc"),
            func.sum(Movement.quantity),
        )
        .where(Movement.to_location_id.is_not(None))
        .group_by(Movement.item_id, Movement.lot_id, Movement.to_location_id)
    )
    outgoing = (
        select(
            Movement.item_id,
            Movement.lot_id,
            Movement.from_location_id.label("loc"),
            func.sum(Movement.quantity),
        )
        .where(Movement.from_location_id.is_not(None))
        .group_by(Movement.item_id, Movement.lot_id, Movement.from_location_id)
    )
    expected: dict[tuple[int, int | None, int], int] = {}
    for sign, query in ((1, incoming), (-1, outgoing)):
        for item_id, lot_id, loc, total in session.execute(query):
            if loc is None:  # filtered out in SQL; keeps the key's type exact
                continue
            key = (int(item_id), lot_id, int(loc))
            expected[key] = expected.get(key, 0) + sign * int(total)
    actual = {
        (b.item_id, b.lot_id, b.location_id): b for b in session.scalars(select(Balance)).all()
    }
    layers: dict[tuple[int, int | None, int], int] = {}
    for layer in session.scalars(select(CostLayer)).all():
        key = (layer.item_id, layer.lot_id, layer.location_id)
        layers[key] = layers.get(key, 0) + layer.quantity
    serials: dict[tuple[int, int | None, int], int] = {}
    for unit in session.scalars(
        select(SerialUnit).where(SerialUnit.location_id.is_not(None))
    ).all():
        assert unit.location_id is not None
        key = (unit.item_id, None, unit.location_id)
        serials[key] = serials.get(key, 0) + 1
    by_reservations: dict[tuple[int, int | None, int], int] = {}
    for reservation in session.scalars(
        select(Reservation).where(Reservation.status == ReservationStatus.ACTIVE)
    ).all():
        key = (reservation.item_id, reservation.lot_id, reservation.location_id)
        by_reservations[key] = by_reservations.get(key, 0) + reservation.quantity
    where_kit_is = func.coalesce(Kit.vehicle_location_id, Kit.staging_location_id)
    for item_id, lot_id, location_id, quantity in session.execute(
        select(Reservation.item_id, Reservation.lot_id, where_kit_is, Reservation.quantity)
        .join(Kit, Reservation.kit_id == Kit.id)
        .where(Reservation.status == ReservationStatus.PICKED, Kit.status.in_(IN_OUR_HANDS))
    ):  # a kit's picked units, held on its bench or van
        key = (int(item_id), lot_id, int(location_id))
        by_reservations[key] = by_reservations.get(key, 0) + int(quantity)
    serial_items = set(
        session.scalars(select(Item.id).where(Item.tracking == Tracking.SERIAL)).all()
    )
    for key in set(expected) | set(actual):
        on_hand = actual[key].on_hand if key in actual else 0
        if on_hand != expected.get(key, 0):
            problems.append(f"balance {key}: on_hand {on_hand} != movements {expected.get(key, 0)}")
        reserved = actual[key].reserved if key in actual else 0
        if not 0 <= reserved <= on_hand:
            problems.append(f"balance {key}: reserved {reserved} outside 0..{on_hand}")
        if reserved != by_reservations.get(key, 0):
            problems.append(
                f"balance {key}: reserved {reserved} != reservations {by_reservations.get(key, 0)}"
            )
        held = serials.get(key, 0) if key[0] in serial_items else layers.get(key, 0)
        if held != on_hand:
            problems.append(f"balance {key}: on_hand {on_hand} != units/layers {held}")
    return problems
