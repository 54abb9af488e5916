"""The one way stock changes: :func:`post_movements`.

Every receipt, transfer, adjustment (and later pick, dispatch, delivery, return and recall)
posts its stock changes here, inside the caller's transaction. The function

1. locks the items involved, in id order, so concurrent writers queue instead of deadlocking
   (PostgreSQL ``SELECT ... FOR UPDATE``; SQLite serializes writers with ``BEGIN IMMEDIATE``);
2. checks that no balance would go below zero and that reserved units stay put;
   (:func:`hold` and :func:`release` keep the reserved counts, under the same locks);
3. appends movements at the actual cost of the units that moved (FIFO cost layers, or the
   serial unit's own cost) and updates balances and cost layers to match.

No other code writes balances, cost layers or movements.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar, cast

from sqlalchemy import Integer, Table, and_, bindparam, insert, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from inventory.catalog.models import Item, Location, Tracking
from inventory.db import business_date, execute_plain, to_money, utcnow
from inventory.errors import Conflict, InsufficientStock, PeriodClosed
from inventory.ledger.models import (
    Balance,
    ClosedPeriod,
    CostLayer,
    EquipmentStatus,
    Lot,
    Movement,
    MovementType,
    Party,
    Reservation,
    ReservationStatus,
    SerialUnit,
    StockDocument,
)
from inventory.ledger.rules import LayerStock, NotEnoughInLayers, take_first_in_first_out
from inventory.metrics import count_on_commit

Endpoint = Location | Party


@dataclass(frozen=True)
class _Chunk:
    """Units that move together at one cost; ``received_at`` keeps their FIFO place."""

    quantity: int
    unit_cost: Decimal
    received_at: datetime


@dataclass(frozen=True)
class Leg:
    """One line of a stock document: units of an item going from one place to another."""

    item: Item
    quantity: int
    source: Endpoint
    destination: Endpoint
    lot: Lot | None = None
    serial_unit: SerialUnit | None = None
    # The purchase cost of units entering stock from outside (a supplier, a found count).
    unit_cost: Decimal | None = None
    # The units move under their kit's reservations: they are counted in the source's
    # ``reserved`` (storage until the kit is packed, then its bench or van) and leave that
    # count with them; a reserved serial unit may go.
    held: bool = False
    # The units stay held where they land (a packed kit's bench or van): they count in the
    # destination's ``reserved``, so no transfer, adjustment or other kit can take them.
    stays_held: bool = False


def _describe(item: Item, lot: Lot | None) -> str:
    return f"item {item.sku}" + (f" lot {lot.lot_number}" if lot else "")


_LOCK_ITEMS = (
    select(Item.id)
    .where(Item.id.in_(bindparam("item_ids", expanding=True)))
    .order_by(Item.id)
    .with_for_update()
)


def lock_items(session: Session, item_ids: Sequence[int]) -> None:
    """Lock item rows in ascending id order: the single lock order of the ledger."""
    ids = sorted(set(item_ids))
    if ids:
        execute_plain(session, _LOCK_ITEMS, {"item_ids": ids}).all()


Place = tuple[int, int | None, int]  # (item id, lot id, location id)


def _place(item: Item, lot: Lot | None, location: Location) -> Place:
    return (item.id, lot.id if lot else None, location.id)


class _Posting:
    """One document's legs, worked out in memory: the balances and cost layers of every place
    the legs touch are read together (two reads per hundred places, under the item locks),
    and every change goes to the database in one flush, so a posting costs a few round trips
    however many lines it has."""

    def __init__(self, session: Session, document: StockDocument, movement_type: MovementType):
        self.session = session
        self.document = document
        self.movement_type = movement_type
        self.movements: list[Movement] = []
        self.balances: dict[Place, Balance] = {}
        self.layers: dict[Place, list[CostLayer]] = {}

    def load(self, legs: Sequence[Leg]) -> None:
        places = sorted(
            {
                _place(leg.item, leg.lot, end)
                for leg in legs
                for end in (leg.source, leg.destination)
                if isinstance(end, Location)
            },
            key=lambda place: (place[0], place[1] or 0, place[2]),
        )
        for balance in _at_places(self.session, Balance, places):
            self.balances[(balance.item_id, balance.lot_id, balance.location_id)] = balance
        if not any(leg.serial_unit is None for leg in legs):
            return
        self.layers = {place: [] for place in places}
        for layer in _at_places(self.session, CostLayer, places):
            self.layers[(layer.item_id, layer.lot_id, layer.location_id)].append(layer)

    def balance(self, item: Item, lot: Lot | None, location: Location) -> Balance | None:
        return self.balances.get(_place(item, lot, location))

    def balance_for_update(self, item: Item, lot: Lot | None, location: Location) -> Balance:
        balance = self.balance(item, lot, location)
        if balance is None:
            balance = Balance(
                item=item, lot=lot, location=location, site=location.site, on_hand=0, reserved=0
            )
            self.session.add(balance)
            self.balances[_place(item, lot, location)] = balance
        return balance

    def site_of(self, leg: Leg) -> str:
        sites = {end.site for end in (leg.source, leg.destination) if isinstance(end, Location)}
        if not sites:  # between ledger endpoints (a patient's return to disposal)
            return self.document.site
        if len(sites) != 1 or self.document.site not in sites:
            raise Conflict(
                "Stock moves within one site: "
                f"{_describe(leg.item, leg.lot)} spans sites {sorted(sites)}"
            )
        return self.document.site

    def record(self, leg: Leg, quantity: int, unit_cost: Decimal) -> None:
        movement = Movement(
            document=self.document,
            type=self.movement_type,
            site=self.document.site,
            item_id=leg.item.id,
            lot_id=leg.lot.id if leg.lot else None,
            serial_unit_id=leg.serial_unit.id if leg.serial_unit else None,
            quantity=quantity,
            from_location_id=leg.source.id if isinstance(leg.source, Location) else None,
            from_party=leg.source if isinstance(leg.source, Party) else None,
            to_location_id=leg.destination.id if isinstance(leg.destination, Location) else None,
            to_party=leg.destination if isinstance(leg.destination, Party) else None,
            unit_cost=to_money(unit_cost),
            occurred_at=self.document.occurred_at,
            actor_id=self.document.actor_id,
            reason=self.document.reason,
            reference=self.document.reference,
        )
        self.session.add(movement)
        self.movements.append(movement)

    def take_out(self, leg: Leg, location: Location) -> list[_Chunk]:
        """Remove units from a location; return the chunks that left, at their cost."""
        balance = self.balance(leg.item, leg.lot, location)
        on_hand = balance.on_hand if balance else 0
        reserved = balance.reserved if balance else 0
        if leg.held:  # the kit's own units, counted in reserved here
            if balance is None or leg.quantity > min(reserved, on_hand):
                raise RuntimeError(
                    f"{_describe(leg.item, leg.lot)} at {location.code}: {leg.quantity} held "
                    f"units should be here, {reserved} reserved of {on_hand} on hand"
                )
            balance.reserved -= leg.quantity
            reserved -= leg.quantity
        available = on_hand - reserved
        if leg.quantity > available:
            held = f" ({reserved} of {on_hand} on hand are reserved)" if reserved else ""
            raise InsufficientStock(
                f"Only {available} of {_describe(leg.item, leg.lot)} available at "
                f"{location.code}{held}; {leg.quantity} requested",
                extra={
                    "item_id": leg.item.id,
                    "lot": leg.lot.lot_number if leg.lot else None,
                    "location_id": location.id,
                    "requested": leg.quantity,
                    "available": available,
                    "reserved": reserved,
                },
            )
        assert balance is not None
        balance.on_hand -= leg.quantity
        if leg.serial_unit is not None:
            unit = leg.serial_unit
            if unit.location_id != location.id:
                raise Conflict(f"Serial {unit.serial} is not at {location.code}")
            if unit.status is EquipmentStatus.RESERVED and not leg.held:
                raise Conflict(f"Serial {unit.serial} is reserved for a therapy; release it first")
            return [_Chunk(1, unit.unit_cost, self.document.occurred_at)]
        # Oldest first; a layer this posting created (no id yet) after the stored ones.
        layers = sorted(
            (
                layer
                for layer in self.layers[_place(leg.item, leg.lot, location)]
                if layer.quantity > 0
            ),
            key=lambda layer: (layer.received_at, layer.id is None, layer.id or 0),
        )
        try:
            takes = take_first_in_first_out(
                (
                    LayerStock(index, layer.quantity, layer.unit_cost)
                    for index, layer in enumerate(layers)
                ),
                leg.quantity,
            )
        except NotEnoughInLayers as error:  # balances and layers disagree: never expected
            raise RuntimeError(f"cost layers out of step with balance: {error}") from error
        chunks: list[_Chunk] = []
        for take in takes:
            layer = layers[take.layer_id]
            layer.quantity -= take.quantity
            chunks.append(_Chunk(take.quantity, take.unit_cost, layer.received_at))
        return chunks

    def put_in(self, leg: Leg, location: Location, chunks: list[_Chunk]) -> None:
        balance = self.balance_for_update(leg.item, leg.lot, location)
        balance.on_hand += sum(chunk.quantity for chunk in chunks)
        if leg.stays_held:
            balance.reserved += leg.quantity
        if leg.serial_unit is not None:
            leg.serial_unit.location_id = location.id
            return
        here = self.layers[_place(leg.item, leg.lot, location)]
        for chunk in chunks:
            layer = next(
                (
                    layer
                    for layer in here
                    if layer.unit_cost == chunk.unit_cost and layer.received_at == chunk.received_at
                ),
                None,
            )
            if layer is None:
                layer = CostLayer(
                    item_id=leg.item.id,
                    lot_id=leg.lot.id if leg.lot else None,
                    location_id=location.id,
                    unit_cost=chunk.unit_cost,
                    received_at=chunk.received_at,
                    quantity=0,
                )
                self.session.add(layer)
                here.append(layer)
            layer.quantity += chunk.quantity

    def post(self, leg: Leg) -> None:
        self.site_of(leg)
        if leg.quantity <= 0:
            raise ValueError("a leg moves a positive quantity")
        if (leg.item.tracking is Tracking.LOT) != (leg.lot is not None):
            raise ValueError(f"{leg.item.sku}: a lot is given exactly when the item is lot-tracked")
        if (leg.item.tracking is Tracking.SERIAL) != (leg.serial_unit is not None):
            raise ValueError(f"{leg.item.sku}: a serial is given exactly for serial items")
        if leg.serial_unit is not None and leg.quantity != 1:
            raise ValueError("a serial unit moves one at a time")

        if isinstance(leg.source, Location):
            chunks = self.take_out(leg, leg.source)
        else:
            if leg.unit_cost is None:
                raise ValueError("units entering stock need a unit cost")
            chunks = [_Chunk(leg.quantity, to_money(leg.unit_cost), self.document.occurred_at)]
            if leg.serial_unit is not None:
                leg.serial_unit.unit_cost = to_money(leg.unit_cost)

        if isinstance(leg.destination, Location):
            self.put_in(leg, leg.destination, chunks)
        elif leg.serial_unit is not None:
            leg.serial_unit.location_id = None
            if leg.destination in (Party.DISPOSAL, Party.ADJUSTMENT):
                leg.serial_unit.status = EquipmentStatus.RETIRED

        for chunk in chunks:
            self.record(leg, chunk.quantity, chunk.unit_cost)


def refuse_closed_period(session: Session, occurred_at: datetime) -> None:
    """409 for a movement dated inside a month finance has closed: late corrections are dated
    in the open period, with their reason, and leave the closed month as it was reported.

    On PostgreSQL the read is ``FOR SHARE``, which holds a ROW SHARE lock on ``closed_periods``
    to the end of the transaction: a close (which takes the table in EXCLUSIVE mode) waits for
    this posting to commit, and a posting that starts during a close waits for it and then
    sees the month closed. SQLite runs one writer at a time, so the race cannot arise there."""
    day = business_date(session, occurred_at)
    closed = session.scalar(
        select(ClosedPeriod.month)
        .where(ClosedPeriod.first_day <= day, ClosedPeriod.last_day >= day)
        .with_for_update(read=True)
    )
    if closed is not None:
        raise PeriodClosed(
            f"The period {closed} is closed: no movement may be dated {day.isoformat()}. "
            "Date the correction in the open period and give its reason.",
            extra={"period": closed},
        )


def post_movements(
    session: Session,
    document: StockDocument,
    movement_type: MovementType,
    legs: Sequence[Leg],
) -> list[Movement]:
    """Append the movements for ``legs`` and keep balances and cost layers in step."""
    refuse_closed_period(session, document.occurred_at)
    lock_items(session, [leg.item.id for leg in legs])
    posting = _Posting(session, document, movement_type)
    posting.load(legs)
    for leg in legs:
        posting.post(leg)
    session.flush()
    count_on_commit(session, "movements", movement_type.value, len(posting.movements))
    return posting.movements


def _balance_for(session: Session, item_id: int, lot_id: int | None, location_id: int) -> Balance:
    balance = session.scalars(
        select(Balance)
        .where(Balance.item_id == item_id, Balance.location_id == location_id)
        .where(Balance.lot_id.is_(None) if lot_id is None else Balance.lot_id == lot_id)
        .execution_options(populate_existing=True)
    ).one_or_none()
    if balance is None:
        raise InsufficientStock(
            f"Nothing of item {item_id} is at location {location_id} to reserve.",
            extra={"item_id": item_id, "location_id": location_id, "available": 0},
        )
    return balance


ModelT = TypeVar("ModelT", Balance, CostLayer)
PLACES_PER_READ = 100  # SQLite refuses expressions nested over 1,000 deep; a read ORs places


def _at_places(session: Session, model: type[ModelT], places: Sequence[Place]) -> list[ModelT]:
    """The rows of ``model`` at these (item, lot, location) places, fresh from the database;
    cost layers oldest first. One read per hundred places."""
    found: list[ModelT] = []
    for start in range(0, len(places), PLACES_PER_READ):
        query = select(model).where(
            or_(
                *(
                    and_(
                        model.item_id == item_id,
                        model.location_id == location_id,
                        model.lot_id.is_(None) if lot_id is None else model.lot_id == lot_id,
                    )
                    for item_id, lot_id, location_id in places[start : start + PLACES_PER_READ]
                )
            )
        )
        if model is CostLayer:
            query = query.order_by(CostLayer.received_at, CostLayer.id)
        found.extend(session.scalars(query.execution_options(populate_existing=True)))
    return found


_BALANCES = cast(Table, Balance.__table__)
# Plain columns from the table, not Balance objects: a reservation only counts units.
_STOCKED_BALANCES = select(
    _BALANCES.c.id,
    _BALANCES.c.item_id,
    _BALANCES.c.lot_id,
    _BALANCES.c.location_id,
    _BALANCES.c.on_hand,
    _BALANCES.c.reserved,
).where(
    _BALANCES.c.item_id.in_(bindparam("item_ids", expanding=True)),
    _BALANCES.c.location_id.in_(bindparam("location_ids", expanding=True)),
    _BALANCES.c.on_hand > 0,
)
# Relative, so it needs no object loaded: the item locks keep every other writer out. Code
# that sets a balance's count from an object (the postings, release) reads that balance fresh
# under the same locks first (_at_places, _balance_for), so it never writes back a stale one.
_COUNT_RESERVED = (
    update(_BALANCES)
    .where(_BALANCES.c.id == bindparam("balance_id"))
    .values(reserved=_BALANCES.c.reserved + bindparam("units", type_=Integer))
)


@dataclass(frozen=True)
class _Stocked:
    balance_id: int
    on_hand: int
    reserved: int


def _stocked_balances(session: Session, places: Sequence[Place]) -> dict[Place, _Stocked]:
    """The balances with units on hand at these places, as the database has them now. One
    statement built once: it reads the items' stocked balances at the places' locations (a
    reservation's few lots, and perhaps a few more) and keeps the places asked for."""
    wanted = set(places)
    found: dict[Place, _Stocked] = {}
    item_ids = sorted({item_id for item_id, _, _ in wanted})
    location_ids = sorted({location_id for _, _, location_id in wanted})
    for start in range(0, len(item_ids), PLACES_PER_READ):
        for balance_id, item_id, lot_id, location_id, on_hand, reserved in execute_plain(
            session,
            _STOCKED_BALANCES,
            {"item_ids": item_ids[start : start + PLACES_PER_READ], "location_ids": location_ids},
        ):
            place = (item_id, lot_id, location_id)
            if place in wanted:
                found[place] = _Stocked(balance_id, on_hand, reserved)
    return found


def _count_reserved(session: Session, wanted: dict[tuple[int, int | None, int], int]) -> None:
    """Add ``wanted`` units to the balances' reserved counts, refusing to exceed on hand.
    Under the item locks, the balances are read together and all are checked before any is
    changed, so a refusal leaves them as they were; the counts change in one executemany."""
    if not wanted:
        return
    balances = _stocked_balances(session, list(wanted))
    for (item_id, lot_id, location_id), quantity in sorted(
        wanted.items(), key=lambda entry: (entry[0][0], entry[0][1] or 0, entry[0][2])
    ):
        balance = balances.get((item_id, lot_id, location_id))
        if balance is None:
            raise InsufficientStock(
                f"Nothing of item {item_id} is at location {location_id} to reserve.",
                extra={"item_id": item_id, "location_id": location_id, "available": 0},
            )
        available = balance.on_hand - balance.reserved
        if available < quantity:
            raise InsufficientStock(
                f"Only {available} of item {item_id} available at location {location_id} "
                f"to reserve; {quantity} requested",
                extra={
                    "item_id": item_id,
                    "location_id": location_id,
                    "requested": quantity,
                    "available": available,
                },
            )
    counted = [
        {"balance_id": balances[key].balance_id, "units": quantity}
        for key, quantity in wanted.items()
    ]
    execute_plain(session, _COUNT_RESERVED, counted)
    for entry in counted:  # a Balance already loaded in this session reads the new count
        loaded = session.identity_map.get(identity_key(Balance, entry["balance_id"]))
        if loaded is not None:
            session.expire(loaded, ["reserved"])


def hold(session: Session, reservations: Sequence[Reservation]) -> None:
    """Add active reservations and count them in the balances' ``reserved``.

    Refuses (409) if any balance would hold more reserved than on hand. The caller builds the
    reservations (usually from a FEFO allocation made after :func:`lock_items`).
    """
    lock_items(session, [r.item_id for r in reservations])
    wanted: dict[tuple[int, int | None, int], int] = {}
    for reservation in reservations:
        key = (reservation.item_id, reservation.lot_id, reservation.location_id)
        wanted[key] = wanted.get(key, 0) + reservation.quantity
    _count_reserved(session, wanted)
    units = [r.serial_unit for r in reservations if r.serial_unit is not None]
    for unit in units:
        if unit.status is not EquipmentStatus.AVAILABLE:
            raise Conflict(f"Serial {unit.serial} is not available.")
    for reservation in reservations:
        reservation.status = ReservationStatus.ACTIVE
    session.add_all(reservations)
    session.flush()
    if units:  # one UPDATE for the whole course set, not one per unit
        session.execute(
            update(SerialUnit)
            .where(SerialUnit.id.in_([unit.id for unit in units]))
            .values(status=EquipmentStatus.RESERVED, version=SerialUnit.version + 1)
            .execution_options(synchronize_session=False)
        )
        for unit in units:
            session.expire(unit, ["status", "version"])


def hold_many(
    session: Session, rows: Sequence[dict[str, Any]], *, items_locked: bool = False
) -> None:
    """:func:`hold` for many supply reservations at once (planning runs): one INSERT.
    ``items_locked``: the caller already holds :func:`lock_items` on every item in ``rows``."""
    if not rows:
        return
    if not items_locked:
        lock_items(session, [row["item_id"] for row in rows])
    wanted: dict[tuple[int, int | None, int], int] = {}
    for row in rows:
        if row.get("serial_unit_id") is not None:
            raise ValueError("serial equipment is held one unit at a time with hold()")
        key = (row["item_id"], row["lot_id"], row["location_id"])
        wanted[key] = wanted.get(key, 0) + row["quantity"]
    _count_reserved(session, wanted)
    session.flush()
    # Core executemany on the table: one statement, whatever mix of lots and no lots.
    session.connection().execute(
        insert(Reservation.__table__),  # type: ignore[arg-type]
        [{**row, "status": ReservationStatus.ACTIVE.value} for row in rows],
    )


def release(
    session: Session,
    reservations: Sequence[Reservation],
    reason: str,
    picked_at: Location | None = None,
) -> int:
    """Release reservations. Active ones give their units back to available. Picked ones
    (moved out of storage by :func:`pick`) end; if their units still lie ``picked_at`` (a
    packed kit's bench, say), they stop being held there. Units already moved on (put back,
    or delivered) are not counted anywhere. Returns how many ended."""
    ending = [r for r in reservations if r.status is not ReservationStatus.RELEASED]
    if not ending:
        return 0
    lock_items(session, [r.item_id for r in ending])
    for reservation in ending:
        if reservation.status is ReservationStatus.ACTIVE:
            held_at: int | None = reservation.location_id
        else:
            held_at = picked_at.id if picked_at is not None else None
        if held_at is not None:
            balance = _balance_for(session, reservation.item_id, reservation.lot_id, held_at)
            balance.reserved -= reservation.quantity
        reservation.status = ReservationStatus.RELEASED
        reservation.released_at = utcnow()
        reservation.release_reason = reason
        if reservation.serial_unit is not None:
            reservation.serial_unit.status = EquipmentStatus.AVAILABLE
    session.flush()
    return len(ending)


def pick(
    session: Session,
    document: StockDocument,
    reservations: Sequence[Reservation],
    destination: Location,
) -> list[Movement]:
    """Move reserved units out of storage under their own reservations (packing a kit).

    Each active reservation becomes picked; its units move from the reservation's location
    to ``destination`` at their FIFO cost, and stay reserved there (moved from the shelf's
    ``reserved`` count to the bench's) until they are delivered or put back. Serial units
    stay ``reserved`` for their therapy.
    """
    active = [r for r in reservations if r.status is ReservationStatus.ACTIVE]
    for reservation in active:
        reservation.status = ReservationStatus.PICKED
    legs = [
        Leg(
            r.item,
            r.quantity,
            r.location,
            destination,
            lot=r.lot,
            serial_unit=r.serial_unit,
            held=True,
            stays_held=True,
        )
        for r in active
    ]
    return post_movements(session, document, MovementType.PICK, legs)


def put_back(
    session: Session,
    document: StockDocument,
    reservations: Sequence[Reservation],
    source: Location,
    reason: str,
) -> list[Movement]:
    """Undo :func:`pick`: picked units go from ``source`` (the kit's bench or van, where they
    are held) back to where each reservation took them from, free again, and the
    reservations end (serial units become available again)."""
    picked = [r for r in reservations if r.status is ReservationStatus.PICKED]
    legs = [
        Leg(r.item, r.quantity, source, r.location, lot=r.lot, serial_unit=r.serial_unit, held=True)
        for r in picked
    ]
    movements = post_movements(session, document, MovementType.TRANSFER, legs)
    release(session, picked, reason)
    return movements
