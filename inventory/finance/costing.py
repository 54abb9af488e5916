"""Gathering the facts a per diem report is computed from, and computing it.

The database hands over facts, already narrowed to the period and summed where the rules allow
(a kit's lines come summed per shipment, see :func:`rules.spread_sums`); every figure is then
computed by :mod:`inventory.finance.rules`. Closed months are read from their snapshot.
"""

from __future__ import annotations

import bisect
import functools
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, TypeVar

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    bindparam,
    case,
    cast,
    func,
    or_,
    select,
    text,
    type_coerce,
    union,
)
from sqlalchemy.orm import Session

from inventory.care.models import Patient, Payer, PayerRate
from inventory.catalog.models import Category, Item
from inventory.db import CompiledQuery, QueryAhead, business_date, business_zone
from inventory.equipment.models import EquipmentEvent
from inventory.equipment.rules import StatusChange, patient_periods
from inventory.finance import rules
from inventory.finance.models import ClosedDay
from inventory.finance.rules import Entry, Figures
from inventory.kits.models import Kit
from inventory.ledger.models import (
    ClosedPeriod,
    DocumentType,
    EquipmentStatus,
    Movement,
    MovementType,
    Party,
    SerialUnit,
    StockDocument,
)
from inventory.therapies.models import InfusionDay, InfusionDayStatus, Therapy

EQUIPMENT = (Category.PUMP, Category.POLE)
SelectT = TypeVar("SelectT", bound="Select[*tuple[Any, ...]]")
GROUP_BY = ("patient", "therapy", "hcpcs", "payer")


@dataclass(frozen=True)
class Subject:
    """What a row is about: a therapy, with the keys a report groups by."""

    therapy_id: int
    patient_id: int
    external_ref: str
    payer_id: int
    payer_name: str
    hcpcs: str
    modifier: str | None
    site: str

    def key(self, group_by: str) -> tuple[Any, ...]:
        if group_by == "patient":
            return (self.patient_id, self.external_ref)
        if group_by == "therapy":
            return (self.therapy_id, self.patient_id, self.external_ref, self.hcpcs, self.modifier)
        if group_by == "hcpcs":
            return (self.hcpcs, self.modifier or "")
        return (self.payer_id, self.payer_name)


KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "patient": ("patient_id", "external_ref"),
    "therapy": ("therapy_id", "patient_id", "external_ref", "hcpcs", "modifier"),
    "hcpcs": ("hcpcs", "modifier"),
    "payer": ("payer_id", "payer_name"),
}


@dataclass
class DayRow:
    subject: Subject
    day: date
    figures: Figures
    kit_ids: list[int]
    rate: Decimal | None


@dataclass
class Scope:
    """A period, optionally one site or given patients, and (for a batch) a range of patient
    ids: those after ``after`` up to ``upto`` (None: no bound)."""

    first: date
    last: date
    site: str | None = None
    patient_ids: list[int] | None = None
    closed: list[tuple[str, date, date]] = field(default_factory=list)
    after: int | None = None
    upto: int | None = None

    def batch(self, after: int | None, upto: int | None) -> Scope:
        return Scope(self.first, self.last, self.site, self.patient_ids, self.closed, after, upto)

    def bounds(self) -> tuple[int | None, int | None]:
        """Which batch of the scope this is."""
        return (self.after, self.upto)

    def bound_values(self) -> dict[str, int]:
        """The values of a ``named`` :meth:`narrow`'s parameters."""
        values = {"after": self.after, "upto": self.upto}
        return {name: value for name, value in values.items() if value is not None}

    def narrow(
        self, query: SelectT, site_column: Any | None, patient_column: Any, *, named: bool = False
    ) -> SelectT:
        """The query, kept to the scope's site (unless no ``site_column`` applies) and
        patients. ``named``: the batch's bounds are the parameters ``after`` and ``upto``, so
        one statement serves every batch (:meth:`bounds` gives their values)."""
        if self.site is not None and site_column is not None:
            query = query.where(site_column == self.site)
        if self.patient_ids is not None:
            query = query.where(patient_column.in_(self.patient_ids))
        if self.after is not None:
            query = query.where(
                patient_column > (bindparam("after", self.after) if named else self.after)
            )
        if self.upto is not None:
            query = query.where(
                patient_column <= (bindparam("upto", self.upto) if named else self.upto)
            )
        return query


def _start_of(session: Session, day: date) -> datetime:
    """The UTC instant a business day starts."""
    return datetime.combine(day, time.min, business_zone(session)).astimezone(UTC)


def line_cents() -> ColumnElement[int]:
    """A line's value in whole cents, half-up: the sum of quantity * unit_cost over its
    movements (one per cost layer), computed by the database. Money is stored in
    ten-thousandths, so this is integer arithmetic on every database. A line is one item, lot
    and serial of one document: what a kit's line shows."""
    raw_cost = type_coerce(Movement.unit_cost, BigInteger)
    # PostgreSQL sums bigints as numeric: cast the (whole) sum back so // truncates.
    return (cast(func.sum(Movement.quantity * raw_cost), BigInteger) + 50) // 100


LINE = (Movement.item_id, Movement.lot_id, Movement.serial_unit_id)


def kit_days_subquery(kits: Select[Any] | CompoundSelect[Any] | None = None) -> Any:
    """Per kit: ``n``, the number of days its cost is spread over, and ``days``, every one of
    its infusion days as ``date:therapy:live`` joined by commas (:func:`kit_days_of` reads it).
    A kit's cost is spread over its days still to be given; if all were cancelled after it went
    out, over all of them."""
    live = case((InfusionDay.status != InfusionDayStatus.CANCELLED, 1), else_=0)
    day = (
        cast(InfusionDay.date, String)
        + ":"
        + cast(InfusionDay.therapy_id, String)
        + ":"
        + cast(live, String)
    )
    query = select(
        InfusionDay.kit_id.label("kit_id"),
        func.coalesce(func.nullif(func.sum(live), 0), func.count()).label("n"),
        func.aggregate_strings(day, ",").label("days"),
    ).where(InfusionDay.kit_id.is_not(None))
    if kits is not None:
        query = query.where(InfusionDay.kit_id.in_(kits))
    return query.group_by(InfusionDay.kit_id).cte("kit_days")


def kit_days_of(days: str) -> tuple[tuple[date, int], ...]:
    """A kit's days from :func:`kit_days_subquery`: (date, therapy) in order, the live ones, or
    all of them when none is."""
    every = []
    live = []
    for part in days.split(","):
        day, therapy, alive = part.split(":")
        entry = (_iso_date(day), int(therapy))
        every.append(entry)
        if alive == "1":
            live.append(entry)
    return tuple(sorted(live or every))


# A year's report reads some 50,000 kit days over a few hundred dates: parsed once each.
_iso_date = functools.lru_cache(maxsize=4096)(date.fromisoformat)


class ByPatient:
    """Rows ordered by patient id (their first column), from one streamed query read a chunk of
    rows at a time, handed out a range of patients at a time: the returns of a whole report
    are read in one scan, not one per batch."""

    def __init__(self, chunks: Iterable[Sequence[Any]]):
        self._chunks = iter(chunks)
        self._held: list[Any] = []  # read from the query, not handed out yet

    def upto(self, patient_id: int | None) -> list[Any]:
        """The rows of the patients up to ``patient_id`` (None: all the rest)."""
        taken: list[Any] = []
        while True:
            if not self._held:
                self._held = list(next(self._chunks, ()))
                if not self._held:
                    return taken
            if patient_id is None or self._held[-1][0] <= patient_id:
                taken.extend(self._held)
                self._held = []
                continue
            cut = bisect.bisect_right(self._held, patient_id, key=lambda row: row[0])
            taken.extend(self._held[:cut])
            del self._held[:cut]
            return taken


Fees = tuple[
    dict[tuple[int, str], rules.FeeSchedule],
    dict[tuple[int, str], list[rules.Rate]],
    dict[int, dict[str, str]],
]


class ReportFacts:
    """What a whole report reads across its batches: the supplies moved to patients, a batch
    at a time, each batch's sent to the database ahead while the batch before is computed
    (:meth:`send_shipments`); those brought back, streamed in patient order as batches ask for
    them; and the payers' fees, read once. :meth:`close` when done."""

    def __init__(self, session: Session, scope: Scope):
        self.session = session
        self.scope = scope
        self._ahead: tuple[Scope, QueryAhead] | None = None
        self._ready: dict[tuple[int | None, int | None], Sequence[Any]] = {}
        self._statements: dict[tuple[bool, bool], CompiledQuery] = {}
        self._takebacks: ByPatient | None = None
        self._fees: Fees | None = None
        if session.get_bind().dialect.name == "postgresql":
            # A cursor is planned for its first tenth of rows by default (nested loops that
            # take minutes over a month of movements); a report reads every row. Grouping a
            # batch's movements wants more than the default 4 MB. For this transaction only.
            session.execute(text("SET LOCAL cursor_tuple_fraction = 1.0"))
            session.execute(text(f"SET LOCAL work_mem = '{REPORT_WORK_MEM}'"))

    def fees(self) -> Fees:
        """The payers' rates and modifier multipliers, read once for the whole report; and the
        fee schedules built from them as therapies need them."""
        if self._fees is None:
            rates: dict[tuple[int, str], list[rules.Rate]] = defaultdict(list)
            for rate in self.session.scalars(select(PayerRate)):
                rates[(rate.payer_id, rate.hcpcs)].append(
                    rules.Rate(rate.effective_from, rate.rate, rate.counting)
                )
            multipliers = {
                payer.id: payer.modifier_multipliers
                for payer in self.session.scalars(select(Payer))
            }
            self._fees = ({}, rates, multipliers)
        return self._fees

    def _narrow(self, query: SelectT, batch: Scope | None = None) -> SelectT:
        if batch is None:
            return self.scope.narrow(query, Kit.site, Kit.patient_id)
        return batch.narrow(query, Kit.site, Kit.patient_id, named=True)

    def long_period(self) -> bool:
        return (self.scope.last - self.scope.first).days >= INDEXED_PERIOD_DAYS

    def _rows(self, query: Select[Any]) -> Any:
        """The query's rows in chunks of ``STREAM_ROWS``, fetched as they are read. Columns
        only, so on the session's connection: the ORM would only wrap each row again."""
        result = self.session.connection().execute(query.execution_options(yield_per=STREAM_ROWS))
        return result.partitions()

    def send_shipments(self, batch: Scope) -> None:
        """Sends the batch's shipments query ahead (unless it was): the database computes it
        while Python computes. Nothing else may be read until :meth:`settle`."""
        self.settle()
        if batch.bounds() not in self._ready:
            # Batches differ only in their bounds: one statement (per bound present) for all.
            shape = (batch.after is None, batch.upto is None)
            if shape not in self._statements:
                self._statements[shape] = CompiledQuery.of(
                    self.session, self._shipment_query(batch)
                )
            ahead = QueryAhead(self.session, self._statements[shape], batch.bound_values())
            self._ahead = (batch, ahead)

    def settle(self) -> None:
        """Reads what was sent ahead, leaving the connection free: before a batch reads
        anything else, or its rows are handed out (whoever takes them may use the session)."""
        if self._ahead is not None:
            batch, ahead = self._ahead
            self._ahead = None
            self._ready[batch.bounds()] = ahead.rows()

    def has_shipments(self, batch: Scope) -> bool:
        """Whether the batch's shipments are read already (not just sent)."""
        return batch.bounds() in self._ready

    def expect_shipments(self, batch: Scope) -> None:
        """Makes sure the batch's shipments are on their way: read or sent during the batch
        before, or sent now."""
        if self.has_shipments(batch):
            return
        if self._ahead is None or self._ahead[0].bounds() != batch.bounds():
            self.send_shipments(batch)

    def shipments(self, batch: Scope) -> Sequence[Any]:
        """(patient, kit, moved at, type, sum of line shares a day, sum of lines) per document
        of supplies delivered to (or, by a reversal, taken back from) the batch's patients."""
        if not self.has_shipments(batch):
            self.expect_shipments(batch)
            self.settle()
        return self._ready.pop(batch.bounds())

    def close(self) -> None:
        """Drops a query sent ahead and never read (a report abandoned halfway)."""
        if self._ahead is not None:
            self._ahead[1].close()
            self._ahead = None
        self._ready.clear()

    def takebacks(self, upto: int | None) -> list[Any]:
        """(patient, kit, brought back at, credit, waste) per document of supplies brought back
        from a patient within the period."""
        if self._takebacks is None:
            self._takebacks = ByPatient(self._rows(self._takeback_query()))
        return self._takebacks.upto(upto)

    def _shipment_query(self, batch: Scope) -> Select[Any]:
        first_at = _start_of(self.session, self.scope.first)
        end_at = _start_of(self.session, self.scope.last + timedelta(days=1))
        # A kit's supplies cost its infusion days, or the day they arrived if that was later
        # (:func:`rules.shipment_entries`): only documents dated in the period, or of kits
        # still running into it, can cost anything in it.
        moved_in_period: ColumnElement[bool]
        if not self.long_period():
            # A short period reads its own documents through their indexes: those dated in
            # it, and those of kits with an infusion day in it.
            kits_with_days = batch.narrow(
                select(InfusionDay.kit_id).where(
                    InfusionDay.date >= self.scope.first,
                    InfusionDay.date <= self.scope.last,
                    InfusionDay.kit_id.is_not(None),
                ),
                InfusionDay.site,
                InfusionDay.patient_id,
                named=True,
            )
            # The kits those documents are of, without reading the documents again.
            moving_kits: Select[Any] | CompoundSelect[Any] = union(
                self._narrow(
                    select(StockDocument.kit_id)
                    .join(Kit, Kit.id == StockDocument.kit_id)
                    .where(
                        StockDocument.occurred_at >= first_at, StockDocument.occurred_at < end_at
                    ),
                    batch,
                ),
                kits_with_days,
            )
            moved_in_period = StockDocument.id.in_(
                union(
                    select(StockDocument.id).where(
                        StockDocument.occurred_at >= first_at, StockDocument.occurred_at < end_at
                    ),
                    select(StockDocument.id).where(
                        StockDocument.kit_id.in_(kits_with_days), StockDocument.occurred_at < end_at
                    ),
                )
            )
        else:  # a long one reads most documents: one filtered scan is quicker
            moved_in_period = and_(
                StockDocument.occurred_at < end_at,
                or_(StockDocument.occurred_at >= first_at, Kit.last_day >= self.scope.first),
            )
            moving_kits = self._narrow(
                select(StockDocument.kit_id)
                .join(Kit, Kit.id == StockDocument.kit_id)
                .where(moved_in_period),
                batch,
            )
        kits = kit_days_subquery(moving_kits)
        lines = (
            select(
                Kit.patient_id.label("patient_id"),
                StockDocument.id.label("document_id"),
                StockDocument.kit_id.label("kit_id"),
                StockDocument.occurred_at.label("occurred_at"),
                Movement.type.label("type"),
                line_cents().label("cents"),
            )
            .join(Movement, Movement.document_id == StockDocument.id)
            .join(Item, Item.id == Movement.item_id)
            .join(Kit, Kit.id == StockDocument.kit_id)
            .where(
                or_(
                    and_(
                        Movement.type == MovementType.DELIVERY, Movement.to_party == Party.PATIENT
                    ),
                    and_(
                        Movement.type == MovementType.REVERSAL,
                        Movement.from_party == Party.PATIENT,
                    ),
                ),
                Item.category.not_in(EQUIPMENT),
                moved_in_period,
            )
            .group_by(
                Kit.patient_id,
                StockDocument.id,
                StockDocument.kit_id,
                StockDocument.occurred_at,
                Movement.type,
                *LINE,
            )
        )
        line = self._narrow(lines, batch).subquery()
        # Per document, with its kit's days (one kit per document: the aggregate only
        # carries them through).
        return (
            select(
                line.c.patient_id,
                line.c.kit_id,
                line.c.occurred_at,
                line.c.type,
                func.sum(line.c.cents // kits.c.n).label("floor_sum"),
                func.sum(line.c.cents).label("total"),
                func.min(kits.c.days).label("days"),
            )
            .join(kits, kits.c.kit_id == line.c.kit_id)
            .group_by(
                line.c.patient_id,
                line.c.document_id,
                line.c.kit_id,
                line.c.occurred_at,
                line.c.type,
            )
        )

    def _takeback_query(self) -> Select[Any]:
        first_at = _start_of(self.session, self.scope.first)
        end_at = _start_of(self.session, self.scope.last + timedelta(days=1))
        wasted = case((Movement.to_party == Party.DISPOSAL, 1), else_=0)
        lines = (
            select(
                Kit.patient_id.label("patient_id"),
                StockDocument.id.label("document_id"),
                StockDocument.kit_id.label("kit_id"),
                StockDocument.occurred_at.label("occurred_at"),
                wasted.label("wasted"),
                line_cents().label("cents"),
            )
            .join(Movement, Movement.document_id == StockDocument.id)
            .join(Item, Item.id == Movement.item_id)
            .join(Kit, Kit.id == StockDocument.kit_id)
            .where(
                # Returns are booked as return documents only (deliveries/returns.py); saying
                # so lets the database start from the period's few return documents.
                StockDocument.type == DocumentType.RETURN,
                Movement.type == MovementType.RETURN,
                Movement.from_party == Party.PATIENT,
                Item.category.not_in(EQUIPMENT),
                StockDocument.occurred_at >= first_at,
                StockDocument.occurred_at < end_at,
            )
            .group_by(
                Kit.patient_id,
                StockDocument.id,
                StockDocument.kit_id,
                StockDocument.occurred_at,
                wasted,
                *LINE,
            )
        )
        line = self._narrow(lines).subquery()
        return (
            select(
                line.c.patient_id,
                line.c.kit_id,
                line.c.occurred_at,
                func.sum(case((line.c.wasted == 1, 0), else_=line.c.cents)),
                func.sum(case((line.c.wasted == 1, line.c.cents), else_=0)),
            )
            .group_by(line.c.patient_id, line.c.document_id, line.c.kit_id, line.c.occurred_at)
            .order_by(line.c.patient_id, line.c.document_id)
        )


class Facts:
    """Everything the rules need for one batch of a scope, loaded in a handful of queries."""

    def __init__(self, session: Session, scope: Scope, shared: ReportFacts):
        self.session = session
        self.scope = scope
        self.shared = shared
        self.subjects: dict[int, Subject] = {}
        self.therapies: dict[int, rules.Therapy] = {}
        self.kit_days: dict[int, tuple[tuple[date, int], ...]] = {}

    # -- therapies and their fee schedules ----------------------------------------------------

    def load_therapies(self) -> None:
        query = (
            select(
                Therapy.id,
                Therapy.patient_id,
                Therapy.hcpcs,
                Therapy.modifier,
                Therapy.site,
                Therapy.start_date,
                Therapy.end_date,
                Therapy.discontinued_on,
                Patient.external_ref,
                Patient.payer_id,
                Payer.name,
            )
            .join(Patient, Patient.id == Therapy.patient_id)
            .join(Payer, Payer.id == Patient.payer_id)
        )
        # Every therapy of the batch's patients, whatever its dates: a pump delivered the day
        # before a therapy starts, or left at home after it ended, is still its cost.
        query = self._narrow(query, Therapy.site, Therapy.patient_id)
        schedules, rates, multipliers = self.shared.fees()
        for therapy in self.session.connection().execute(query).all():
            external_ref, payer_id, payer_name = (
                therapy.external_ref,
                therapy.payer_id,
                therapy.name,
            )
            self.subjects[therapy.id] = Subject(
                therapy.id,
                therapy.patient_id,
                external_ref,
                payer_id,
                payer_name,
                therapy.hcpcs,
                therapy.modifier,
                therapy.site,
            )
            key = (payer_id, therapy.hcpcs)
            if key not in schedules:
                schedules[key] = rules.FeeSchedule(rates.get(key, []))
            ends = [d for d in (therapy.end_date, therapy.discontinued_on) if d is not None]
            multiplier = Decimal(
                multipliers.get(payer_id, {}).get(therapy.modifier or "", "1")
                if therapy.modifier
                else "1"
            )
            self.therapies[therapy.id] = rules.Therapy(
                therapy.id,
                therapy.start_date,
                min(ends) if ends else None,
                schedules[key],
                multiplier,
            )

    def _narrow(self, query: SelectT, site_column: Any | None, patient_column: Any) -> SelectT:
        return self.scope.narrow(query, site_column, patient_column)

    # -- what was delivered, returned, and stayed at home ---------------------------------------

    def delivered_days(self) -> dict[int, list[date]]:
        query = select(InfusionDay.therapy_id, InfusionDay.date).where(
            InfusionDay.status == InfusionDayStatus.DELIVERED,
            InfusionDay.date >= self.scope.first,
            InfusionDay.date <= self.scope.last,
        )
        query = self._narrow(query, InfusionDay.site, InfusionDay.patient_id)
        days: dict[int, list[date]] = defaultdict(list)
        for therapy_id, day in self.session.connection().execute(query).all():
            days[therapy_id].append(day)
        return days

    def load_kit_days(self, kit_ids: Iterable[int]) -> None:
        wanted = sorted(set(kit_ids) - self.kit_days.keys())
        if not wanted:
            return
        days = kit_days_subquery(select(Kit.id).where(Kit.id.in_(wanted)))
        query = select(days.c.kit_id, days.c.days)
        for kit_id, kit_days in self.session.connection().execute(query).all():
            self.kit_days[int(kit_id)] = kit_days_of(kit_days)

    def _days_of(self, kit_id: int, days: str) -> tuple[tuple[date, int], ...]:
        found = self.kit_days.get(kit_id)
        if found is None:
            found = self.kit_days[kit_id] = kit_days_of(days)
        return found

    def shipments(self, rows: Iterable[Any]) -> list[rules.Shipment]:
        """Supplies delivered to (or, by a reversal, taken back from) the batch's patients,
        from :meth:`ReportFacts.shipments`' rows."""
        zone = business_zone(self.session)
        return [
            rules.Shipment(
                int(kit_id),
                self._days_of(int(kit_id), days),
                occurred_at.astimezone(zone).date(),
                int(floor_sum),
                int(total),
                1 if movement_type == MovementType.DELIVERY else -1,
            )
            for _, kit_id, occurred_at, movement_type, floor_sum, total, days in rows
        ]

    def takebacks(self) -> list[rules.Takeback]:
        """Supplies brought back from the batch's patients within the period: restocked
        unopened goods (credit) and disposed ones (waste), per kit and day."""
        rows = self.shared.takebacks(self.scope.upto)
        self.load_kit_days(int(row[1]) for row in rows)
        takebacks = []
        for _, kit_id, occurred_at, credit, waste in rows:
            days = self.kit_days.get(int(kit_id))
            if not days:
                continue
            # The credit belongs to the therapy of the kit's last day.
            takebacks.append(
                rules.Takeback(
                    days[-1][1],
                    int(kit_id),
                    business_date(self.session, occurred_at),
                    int(credit),
                    int(waste),
                )
            )
        return takebacks

    def stays(self) -> list[rules.Stay]:
        """Equipment at patients' homes, from the units' event logs."""
        end_at = _start_of(self.session, self.scope.last + timedelta(days=1))
        units_at_patients = select(EquipmentEvent.serial_unit_id).where(
            EquipmentEvent.to_status == EquipmentStatus.AT_PATIENT,
            EquipmentEvent.occurred_at < end_at,
        )
        units_at_patients = self._narrow(units_at_patients, None, EquipmentEvent.patient_id)
        event = EquipmentEvent
        query = (
            select(
                event.serial_unit_id,
                event.occurred_at,
                event.from_status,
                event.to_status,
                event.patient_id,
                event.kit_id,
                Item.daily_rate,
            )
            .join(SerialUnit, SerialUnit.id == EquipmentEvent.serial_unit_id)
            .join(Item, Item.id == SerialUnit.item_id)
            .where(
                EquipmentEvent.serial_unit_id.in_(units_at_patients.scalar_subquery()),
                EquipmentEvent.occurred_at < end_at,
            )
            .order_by(EquipmentEvent.serial_unit_id, EquipmentEvent.occurred_at, EquipmentEvent.id)
        )
        by_unit: dict[int, list[Any]] = defaultdict(list)
        for row in self.session.connection().execute(query).all():
            by_unit[row.serial_unit_id].append(row)
        found: list[tuple[int | None, date, date | None, Decimal]] = []
        for events in by_unit.values():
            changes = [
                StatusChange(
                    business_date(self.session, row.occurred_at),
                    row.from_status,
                    row.to_status,
                    row.patient_id,
                )
                for row in events
            ]
            # The kit a stay began with: the one the unit was delivered in.
            kit_of = {
                (change.on, change.patient_id): row.kit_id
                for change, row in zip(changes, events, strict=True)
                if row.to_status is EquipmentStatus.AT_PATIENT
            }
            daily_rate = events[0].daily_rate or Decimal(0)
            for period in patient_periods(changes):
                if period.end is None or period.end > self.scope.first:
                    kit_id = kit_of.get((period.start, period.patient_id))
                    found.append((kit_id, period.start, period.end, daily_rate))
        self.load_kit_days(kit_id for kit_id, *_ in found if kit_id is not None)
        stays = []
        for kit_id, start, end, daily_rate in found:
            days = self.kit_days.get(kit_id) if kit_id is not None else None
            if days:  # equipment that went out with no kit is no therapy's cost
                # Attributed to the therapy of the kit's first day.
                stays.append(rules.Stay(days[0][1], kit_id, start, end, daily_rate))
        return stays


def _clip(entry: Entry, closed: list[tuple[str, date, date]]) -> Iterator[Entry]:
    """The parts of an entry that fall outside closed months."""
    pieces = [entry]
    for _, first, last in closed:
        next_pieces = []
        for piece in pieces:
            if piece.last < first or piece.first > last:
                next_pieces.append(piece)
                continue
            if piece.first < first:
                next_pieces.append(_span(piece, piece.first, first - timedelta(days=1)))
            if piece.last > last:
                next_pieces.append(_span(piece, last + timedelta(days=1), piece.last))
        pieces = next_pieces
    yield from pieces


def _span(entry: Entry, first: date, last: date) -> Entry:
    return Entry(
        entry.therapy_id,
        first,
        last,
        entry.units,
        entry.supply_cost,
        entry.return_credit,
        entry.waste_cost,
        entry.equipment_cost,
        entry.expected_revenue,
        entry.kit_id,
        entry.rate,
    )


def closed_months(session: Session, first: date, last: date) -> list[tuple[str, date, date]]:
    rows = session.execute(
        select(ClosedPeriod.month, ClosedPeriod.first_day, ClosedPeriod.last_day)
        .where(ClosedPeriod.last_day >= first, ClosedPeriod.first_day <= last)
        .order_by(ClosedPeriod.first_day)
    ).all()
    return [(month, first_day, last_day) for month, first_day, last_day in rows]


def live_entries(
    session: Session, scope: Scope, shared: ReportFacts, following: Scope | None = None
) -> tuple[list[Entry], dict[int, Subject]]:
    """The figures of a batch's open days, computed from the ledger and the schedules.

    The shipments, the biggest read, are computed by the database while Python works. Once
    the batch's other reads are done, the ``following`` batch's shipments are sent ahead if this
    batch's were read during the batch before; otherwise (the first batch) this batch's are
    sent, and the following batch's once they are taken."""
    facts = Facts(session, scope, shared)
    facts.load_therapies()
    delivered = facts.delivered_days()
    takebacks = facts.takebacks()
    stays = facts.stays()
    if shared.has_shipments(scope):
        if following is not None:
            shared.send_shipments(following)
    else:
        shared.expect_shipments(scope)
    entries: list[Entry] = []
    for therapy_id, therapy in facts.therapies.items():
        entries.extend(
            rules.per_diem_entries(therapy, delivered.get(therapy_id, []), scope.first, scope.last)
        )
    for takeback in takebacks:
        entries.extend(rules.takeback_entries(takeback, scope.first, scope.last))
    for stay in stays:
        entries.extend(rules.stay_entries(stay, scope.first, scope.last))
    shipped = shared.shipments(scope)
    if following is not None:
        shared.expect_shipments(following)
    for shipment in facts.shipments(shipped):
        entries.extend(rules.shipment_entries(shipment, scope.first, scope.last))
    subjects = facts.subjects
    entries = [entry for entry in entries if entry.therapy_id in subjects]
    if scope.closed:
        entries = [piece for entry in entries for piece in _clip(entry, scope.closed)]
    return entries, subjects


def closed_rows(session: Session, scope: Scope) -> Iterator[DayRow]:
    if not scope.closed:
        return
    query = select(ClosedDay).where(
        ClosedDay.day >= scope.first,
        ClosedDay.day <= scope.last,
        ClosedDay.month.in_([month for month, _, _ in scope.closed]),
    )
    query = scope.narrow(query, ClosedDay.site, ClosedDay.patient_id)
    for row in session.scalars(query.execution_options(yield_per=STREAM_ROWS)):
        yield DayRow(
            Subject(
                row.therapy_id,
                row.patient_id,
                row.external_ref,
                row.payer_id,
                row.payer_name,
                row.hcpcs,
                row.modifier,
                row.site,
            ),
            row.day,
            Figures(
                row.per_diem_units,
                row.supply_cost,
                row.return_credit,
                row.waste_cost,
                row.equipment_cost,
                row.expected_revenue,
            ),
            [int(kit) for kit in row.kit_ids.split(",") if kit],
            row.rate,
        )


# Patients times days in the period per batch: about 100 patients for a year's report, and
# more for a shorter period (a month takes about 1,200 in one batch).
BATCH_PATIENT_DAYS = 100 * 366
# Periods shorter than this read their documents through indexes (see _shipment_query): a
# month so reads a month's movements, a year one scan. Measured on the report benchmark when
# the whole report was one query (June 0.67 s by the scan, 0.46 s by the indexes; the year
# 2.3 s by the scan, 2.7 s by the indexes); the batched reads kept the same choice.
INDEXED_PERIOD_DAYS = 62
REPORT_WORK_MEM = "64MB"
# Rows fetched at a time from the report's streamed queries: what a report holds of them,
# whatever its size. 2,000 made the year's CSV by therapy for every site peak 1.38 times the
# small site's (the fetch buffer fills only for the big one); 200 brings that to about 1.16
# for no measurable time.
STREAM_ROWS = 200


def scope_for(
    session: Session, first: date, last: date, site: str | None, patient_id: int | None = None
) -> Scope:
    return Scope(
        first,
        last,
        site,
        None if patient_id is None else [patient_id],
        closed_months(session, first, last),
    )


def batches(session: Session, scope: Scope) -> Iterator[Scope]:
    """The scope cut into consecutive ranges of patient ids, in patient order, so a report of
    any size is computed (and streamed) a range at a time, in bounded memory. The ranges cover
    every patient id; they are cut so each holds about ``BATCH_PATIENT_DAYS`` divided by the
    days in the period of the patients on therapy in the period (or in a closed month of it):
    the patient-days, and so the memory, of a batch stay about the same whatever the period."""
    if scope.patient_ids is not None:
        yield scope
        return
    on_therapy = select(Therapy.patient_id).where(
        Therapy.start_date <= scope.last,
        or_(Therapy.end_date.is_(None), Therapy.end_date >= scope.first),
        or_(Therapy.discontinued_on.is_(None), Therapy.discontinued_on >= scope.first),
    )
    if scope.site is not None:
        on_therapy = on_therapy.where(Therapy.site == scope.site)
    query = on_therapy
    if scope.closed:
        frozen = select(ClosedDay.patient_id).where(
            ClosedDay.month.in_([month for month, _, _ in scope.closed])
        )
        if scope.site is not None:
            frozen = frozen.where(ClosedDay.site == scope.site)
        query = on_therapy.union(frozen)  # type: ignore[assignment]
    patient_ids = sorted(set(session.scalars(query)))
    days = (scope.last - scope.first).days + 1
    size = max(1, BATCH_PATIENT_DAYS // days)
    bounds = patient_ids[size - 1 :: size]
    after = None
    for upto in bounds[: -1 if bounds and bounds[-1] == patient_ids[-1] else None]:
        yield scope.batch(after, upto)
        after = upto
    yield scope.batch(after, None)


def _group_sort_key(key: tuple[Any, ...]) -> tuple[Any, ...]:
    return tuple((part is None, part if part is not None else "") for part in key)


class Report:
    """Figures per group and their totals. ``rows()`` yields the groups in key order, a batch
    of patients at a time when grouping by patient or therapy; ``totals`` is complete once
    ``rows()`` is exhausted."""

    def __init__(self, session: Session, scope: Scope, group_by: str):
        self.session = session
        self.scope = scope
        self.group_by = group_by
        self.totals = Figures()

    def _batch_groups(
        self, scope: Scope, shared: ReportFacts, following: Scope | None
    ) -> dict[tuple[Any, ...], Figures]:
        closed = list(closed_rows(self.session, scope))
        entries, subjects = live_entries(self.session, scope, shared, following)
        groups: dict[tuple[Any, ...], Figures] = {}
        for therapy_id, figures in rules.total_by(entries, lambda entry: entry.therapy_id).items():
            groups.setdefault(subjects[therapy_id].key(self.group_by), Figures()).merge(figures)
        for row in closed:
            groups.setdefault(row.subject.key(self.group_by), Figures()).merge(row.figures)
        return groups

    def rows(self) -> Iterator[tuple[tuple[Any, ...], Figures]]:
        per_patient = self.group_by in ("patient", "therapy")  # keys start with patient order
        pending: dict[tuple[Any, ...], Figures] = {}
        shared = ReportFacts(self.session, self.scope)
        try:
            for scope, following in _with_following(batches(self.session, self.scope)):
                for key, figures in self._batch_groups(scope, shared, following).items():
                    pending.setdefault(key, Figures()).merge(figures)
                shared.settle()
                if per_patient:
                    yield from self._flush(pending)
                    pending = {}
        finally:
            shared.close()
        yield from self._flush(pending)

    def _flush(
        self, groups: dict[tuple[Any, ...], Figures]
    ) -> Iterator[tuple[tuple[Any, ...], Figures]]:
        for key in sorted(groups, key=_group_sort_key):
            figures = groups[key]
            if figures.is_empty():
                continue
            self.totals.merge(figures)
            yield key, figures


def day_rows(session: Session, scope: Scope) -> Iterator[DayRow]:
    """The drill-down: one row per therapy and day with anything on it, by patient, then date,
    then therapy; computed a batch of patients at a time."""
    shared = ReportFacts(session, scope)
    try:
        for batch, following in _with_following(batches(session, scope)):
            closed = list(closed_rows(session, batch))
            entries, subjects = live_entries(session, batch, shared, following)
            rows = [
                DayRow(
                    subjects[day.therapy_id], day.day, day.figures, sorted(day.kit_ids), day.rate
                )
                for day in rules.by_day(entries)
                if not day.figures.is_empty()
            ]
            del entries
            rows.extend(closed)
            del closed
            rows.sort(key=lambda row: (row.subject.patient_id, row.day, row.subject.therapy_id))
            shared.settle()
            yield from rows
            del rows  # not kept while the next batch is computed
    finally:
        shared.close()


def _with_following(scopes: Iterable[Scope]) -> Iterator[tuple[Scope, Scope | None]]:
    """Each batch with the one after it (None for the last)."""
    ahead = iter(scopes)
    current = next(ahead, None)
    while current is not None:
        following = next(ahead, None)
        yield current, following
        current = following
