"""Planning: reserve template supplies for infusion days (FEFO), and course equipment.

A run reads what is available and allocates with the pure FEFO rule, then locks every item
it may reserve (the ledger's lock order), checks that the days and the stock it drew on are
as it read them (drafting again under the locks if not), and holds the result through the
ledger, so two planners racing for the last units can never reserve more than there is.
Statements per run are bounded: nothing is queried per infusion day.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from sqlalchemy import Date, and_, bindparam, func, literal, or_, select, union_all, update
from sqlalchemy.orm import Session, selectinload

from inventory.care.models import TemplateEquipment, TemplateLine
from inventory.catalog.models import Item, Location, LocationKind
from inventory.db import execute_plain, utcnow
from inventory.errors import Conflict, InsufficientStock
from inventory.ledger.models import (
    Balance,
    CostLayer,
    EquipmentStatus,
    Lot,
    Reservation,
    ReservationStatus,
    SerialUnit,
)
from inventory.ledger.service import hold, hold_many, lock_items, release
from inventory.metrics import count_on_commit
from inventory.planning.rules import (
    Allocation,
    EquipmentLine,
    ItemShortage,
    Need,
    StockCandidate,
    SupplyLine,
    TemplateNeeds,
    allocate,
    reorder_quantity,
    shortage,
)
from inventory.schemas import paginate
from inventory.therapies.days import extend_schedules
from inventory.therapies.models import InfusionDay, InfusionDayStatus, Therapy, TherapyStatus

PLANNABLE = (InfusionDayStatus.SCHEDULED, InfusionDayStatus.SHORT)
OPEN_DAY = (InfusionDayStatus.SCHEDULED, InfusionDayStatus.SHORT, InfusionDayStatus.RESERVED)
DEFAULT_HORIZON_DAYS = 14


@dataclass
class PlanResult:
    reserved_lines: int = 0
    short_lines: int = 0
    days_fully_reserved: int = 0
    days_short: int = 0
    days_considered: int = 0
    equipment_reserved: int = 0
    equipment_short: int = 0
    horizon_end: date | None = None
    short: list[dict[str, int]] = field(default_factory=list)


def horizon_end(today: date, horizon_days: int) -> date:
    """The last date a run of ``horizon_days`` covers (today counts as the first)."""
    return today + timedelta(days=horizon_days - 1)


# The statements a reservation runs, built once: a request then only binds its ids (building
# and keying a statement costs more Python than running a small one).
def _templates_query() -> Any:
    parts = union_all(
        select(
            TemplateLine.template_id,
            literal(0).label("kind"),
            TemplateLine.id,
            TemplateLine.item_id,
            TemplateLine.quantity_per_day.label("quantity"),
        ),
        select(
            TemplateEquipment.template_id,
            literal(1).label("kind"),
            TemplateEquipment.id,
            TemplateEquipment.item_id,
            TemplateEquipment.quantity,
        ),
    ).subquery()
    return (
        select(Therapy.id, parts.c.kind, parts.c.item_id, parts.c.quantity)
        .outerjoin(parts, parts.c.template_id == Therapy.template_id)
        .where(Therapy.id.in_(bindparam("therapy_ids", expanding=True)))
        .order_by(Therapy.id, parts.c.kind, parts.c.id)
    )


_TEMPLATES = _templates_query()
_RESERVED_PER_DAY = (
    select(Reservation.infusion_day_id, Reservation.item_id, func.sum(Reservation.quantity))
    .where(
        Reservation.infusion_day_id.in_(bindparam("day_ids", expanding=True)),
        Reservation.status.in_([ReservationStatus.ACTIVE, ReservationStatus.PICKED]),
    )
    .group_by(Reservation.infusion_day_id, Reservation.item_id)
)


def templates_for(session: Session, therapy_ids: Iterable[int]) -> dict[int, TemplateNeeds]:
    """What each therapy's template asks for, supplies and equipment, in one query."""
    lines: dict[int, list[SupplyLine]] = {}
    equipment: dict[int, list[EquipmentLine]] = {}
    for therapy_id, kind, item_id, quantity in execute_plain(
        session, _TEMPLATES, {"therapy_ids": sorted(set(therapy_ids))}
    ):
        lines.setdefault(therapy_id, [])
        equipment.setdefault(therapy_id, [])
        if kind == 0:
            lines[therapy_id].append(SupplyLine(item_id, quantity))
        elif kind == 1:
            equipment[therapy_id].append(EquipmentLine(item_id, quantity))
    return {
        therapy_id: TemplateNeeds(tuple(lines[therapy_id]), tuple(equipment[therapy_id]))
        for therapy_id in lines
    }


def _reserved_per_day(session: Session, day_ids: Sequence[int]) -> dict[tuple[int, int], int]:
    if not day_ids:
        return {}
    rows = execute_plain(session, _RESERVED_PER_DAY, {"day_ids": list(day_ids)}).all()
    return {(int(day_id or 0), int(item_id)): int(total) for day_id, item_id, total in rows}


def template_item_ids(templates: Iterable[TemplateNeeds]) -> list[int]:
    """Every item the templates may reserve: supplies and equipment, sorted (lock order)."""
    ids: set[int] = set()
    for template in templates:
        ids.update(line.item_id for line in template.lines)
        ids.update(line.item_id for line in template.equipment)
    return sorted(ids)


def needs_for(
    session: Session, days: Sequence[InfusionDay], templates: dict[int, TemplateNeeds]
) -> list[Need]:
    """What each day's template asks for, less what is already reserved for it."""
    return _needs(days, templates, _reserved_per_day(session, [day.id for day in days]))


def _needs(
    days: Sequence[InfusionDay],
    templates: dict[int, TemplateNeeds],
    reserved: dict[tuple[int, int], int],
) -> list[Need]:
    needs = []
    for day in days:
        for line in templates[day.therapy_id].lines:
            missing = line.quantity_per_day - reserved.get((day.id, line.item_id), 0)
            if missing > 0:
                needs.append(Need(day.id, day.date, line.item_id, missing))
    return needs


def lock_therapies(session: Session, therapy_ids: Iterable[int]) -> dict[int, TemplateNeeds]:
    """Take the item locks that guard these therapies' reservations; return their templates.

    Everything that reserves for, releases from, or changes the status of an infusion day
    takes these locks first, so planners, movers and cancellers of one day queue up.
    """
    templates = templates_for(session, therapy_ids)
    lock_items(session, template_item_ids(templates.values()))
    return templates


def _stock_candidates_query() -> Any:
    item_ids: Any = bindparam("item_ids", expanding=True)
    oldest = (
        select(
            CostLayer.item_id,
            CostLayer.lot_id,
            CostLayer.location_id,
            func.min(CostLayer.received_at).label("received_at"),
        )
        .where(CostLayer.quantity > 0, CostLayer.item_id.in_(item_ids))
        .group_by(CostLayer.item_id, CostLayer.lot_id, CostLayer.location_id)
        .subquery()
    )
    return (
        select(
            Balance.item_id,
            Balance.lot_id,
            Balance.location_id,
            Location.code,
            Lot.expiry,
            oldest.c.received_at,
            (Balance.on_hand - Balance.reserved).label("available"),
        )
        .join(Location, Balance.location_id == Location.id)
        .outerjoin(Lot, Balance.lot_id == Lot.id)
        .outerjoin(
            oldest,
            and_(
                oldest.c.item_id == Balance.item_id,
                oldest.c.location_id == Balance.location_id,
                or_(
                    oldest.c.lot_id == Balance.lot_id,
                    and_(oldest.c.lot_id.is_(None), Balance.lot_id.is_(None)),
                ),
            ),
        )
        .where(
            Balance.item_id.in_(item_ids),
            Balance.site == bindparam("site"),
            Location.kind == LocationKind.STORAGE,
            Balance.on_hand > Balance.reserved,
            or_(
                Lot.id.is_(None),
                and_(Lot.recalled_at.is_(None), Lot.expiry >= bindparam("today", type_=Date)),
            ),
        )
    )


_STOCK_CANDIDATES = _stock_candidates_query()


def stock_candidates(
    session: Session, site: str, item_ids: Iterable[int], today: date
) -> list[StockCandidate]:
    """Available units in the site's storage locations: not quarantined, not recalled, not
    expired today, with the date of their oldest receipt (for the FEFO tie-break)."""
    ids = sorted(set(item_ids))
    if not ids:
        return []
    rows = execute_plain(
        session, _STOCK_CANDIDATES, {"item_ids": ids, "site": site, "today": today}
    ).all()
    epoch = utcnow().replace(year=2000, month=1, day=1)
    return [
        StockCandidate(
            item_id=row.item_id,
            lot_id=row.lot_id,
            location_id=row.location_id,
            location_code=row.code,
            expiry=row.expiry,
            received_at=row.received_at or epoch,
            available=int(row.available),
        )
        for row in rows
    ]


def _reservation_rows(
    allocations: Sequence[Allocation], days: dict[int, InfusionDay]
) -> list[dict[str, Any]]:
    now = utcnow()
    return [
        {
            "site": days[a.day_id].site,
            "therapy_id": days[a.day_id].therapy_id,
            "infusion_day_id": a.day_id,
            "item_id": a.item_id,
            "lot_id": a.lot_id,
            "location_id": a.location_id,
            "serial_unit_id": None,
            "quantity": a.quantity,
            "status": ReservationStatus.ACTIVE,
            "created_at": now,
        }
        for a in allocations
    ]


_SET_STATUS = (
    update(InfusionDay)
    .where(InfusionDay.id.in_(bindparam("day_ids", expanding=True)))
    .values(
        status=bindparam("status", type_=InfusionDay.__table__.c.status.type),
        version=InfusionDay.version + 1,
    )
    .execution_options(synchronize_session=False)
)
_PLANNABLE_DAYS = (
    select(InfusionDay)
    .where(
        InfusionDay.id.in_(bindparam("day_ids", expanding=True)),
        InfusionDay.status.in_(PLANNABLE),
    )
    .order_by(InfusionDay.date, InfusionDay.id)
    .execution_options(populate_existing=True)
)
_DAYS_AS_THEY_ARE = (  # each plannable day's version, and what is reserved for it, per item
    select(
        InfusionDay.id,
        InfusionDay.status,
        InfusionDay.version,
        Reservation.item_id,
        func.sum(Reservation.quantity),
    )
    .outerjoin(
        Reservation,
        and_(
            Reservation.infusion_day_id == InfusionDay.id,
            Reservation.status.in_([ReservationStatus.ACTIVE, ReservationStatus.PICKED]),
        ),
    )
    .where(
        InfusionDay.id.in_(bindparam("day_ids", expanding=True)),
        InfusionDay.status.in_(PLANNABLE),
    )
    .group_by(
        InfusionDay.date,
        InfusionDay.id,
        InfusionDay.status,
        InfusionDay.version,
        Reservation.item_id,
    )
    .order_by(InfusionDay.date, InfusionDay.id)
)


def _set_status(session: Session, day_ids: Sequence[int], status: InfusionDayStatus) -> None:
    for start in range(0, len(day_ids), 5000):
        execute_plain(
            session, _SET_STATUS, {"day_ids": day_ids[start : start + 5000], "status": status}
        )


@dataclass
class _Draft:
    """A FEFO allocation for some days, and what it was drawn from."""

    days: list[InfusionDay]
    versions: list[tuple[int, InfusionDayStatus, int]]  # (day id, status, version) in order
    needs: list[Need]
    allocations: list[Allocation] = field(default_factory=list)
    missing: dict[int, list[dict[str, int]]] = field(default_factory=dict)


def _plannable(session: Session, day_ids: Sequence[int]) -> list[InfusionDay]:
    """These days as the database has them now, those still to plan, in date order."""
    return list(session.scalars(_PLANNABLE_DAYS, {"day_ids": list(day_ids)}).all())


def _draft(
    session: Session,
    days: Sequence[InfusionDay],
    templates: dict[int, TemplateNeeds],
    today: date,
    *,
    before_locks: bool = False,
) -> _Draft:
    """The FEFO allocation for ``days`` (plannable, in date order) from what is free now.

    ``before_locks``: a draft the locks will check. It takes a scheduled day to hold nothing
    yet, which saves a read per request: planning leaves a day with reservations reserved or
    short, and a moved or cancelled day releases them. A recall sets the days it takes a lot
    from back to scheduled with their other reservations; the check under the locks reads
    what the days really hold, and such a day is drafted again there."""
    reads = [
        day.id for day in days if not (before_locks and day.status is InfusionDayStatus.SCHEDULED)
    ]
    draft = _Draft(
        list(days),
        [(day.id, day.status, day.version) for day in days],
        _needs(days, templates, _reserved_per_day(session, reads)),
    )
    by_id = {day.id: day for day in days}
    missing: dict[int, list[dict[str, int]]] = defaultdict(list)
    for site in sorted({day.site for day in days}):
        site_needs = [need for need in draft.needs if by_id[need.day_id].site == site]
        candidates = stock_candidates(session, site, {n.item_id for n in site_needs}, today)
        site_allocations, shortfalls = allocate(site_needs, candidates)
        draft.allocations.extend(site_allocations)
        for gap in shortfalls:
            missing[gap.day_id].append({"item_id": gap.item_id, "missing": gap.missing})
    draft.missing = dict(missing)
    return draft


def _still_holds(session: Session, draft: _Draft, templates: dict[int, TemplateNeeds]) -> bool:
    """Under the item locks: are the days as they were, and do they lack the same units? (The
    ledger checks that the balances drawn on still have them.) A short day is drafted again:
    stock may have come in meanwhile."""
    if draft.missing:
        return False
    versions: list[tuple[int, InfusionDayStatus, int]] = []
    reserved: dict[tuple[int, int], int] = {}
    for day_id, status, version, item_id, quantity in execute_plain(
        session, _DAYS_AS_THEY_ARE, {"day_ids": [day.id for day in draft.days]}
    ):
        if not versions or versions[-1][0] != day_id:
            versions.append((day_id, status, version))
        if item_id is not None:
            reserved[(day_id, item_id)] = int(quantity)
    return versions == draft.versions and _needs(draft.days, templates, reserved) == draft.needs


def plan_days(session: Session, days: Sequence[InfusionDay], today: date) -> PlanResult:
    """Reserve what ``days`` still lack, FEFO, and mark each reserved or short.

    The allocation is drafted before the item locks are taken, from what is free then. Under
    the locks it is checked (one short read, and the ledger's own check of the balances) and
    drafted again only if a concurrent planner, mover, canceller or stock movement changed
    what it was drawn from. The locks are held for little more than the writes, so
    concurrent reservations queue for milliseconds, not for the FEFO choice."""
    if not days:
        return PlanResult()
    # Course equipment is topped up for every therapy with an open day here, even one whose
    # days are all reserved already (its pump was retired, say).
    therapy_sites = {day.therapy_id: day.site for day in days}
    day_ids = [day.id for day in days]
    templates = templates_for(session, set(therapy_sites))
    # The first draft starts from the days as the caller loaded them: the check under the
    # locks compares them with the database, and a stale one is drafted again from it.
    plannable = sorted(
        (day for day in days if day.status in PLANNABLE), key=lambda day: (day.date, day.id)
    )
    draft = _draft(session, plannable, templates, today, before_locks=True)
    lock_items(session, template_item_ids(templates.values()))
    if not _still_holds(session, draft, templates):
        draft = _draft(session, _plannable(session, day_ids), templates, today)
    by_id = {day.id: day for day in draft.days}
    try:
        hold_many(session, _reservation_rows(draft.allocations, by_id), items_locked=True)
    except InsufficientStock:  # stock moved since the draft: draft again, under the locks
        draft = _draft(session, _plannable(session, day_ids), templates, today)
        by_id = {day.id: day for day in draft.days}
        hold_many(session, _reservation_rows(draft.allocations, by_id), items_locked=True)
    result = PlanResult(days_considered=len(draft.days))
    short_ids = sorted(draft.missing)
    reserved_ids = sorted(set(by_id) - set(draft.missing))
    _set_status(session, reserved_ids, InfusionDayStatus.RESERVED)
    _set_status(session, short_ids, InfusionDayStatus.SHORT)
    for day in draft.days:  # their status changed in bulk; reload on next use
        session.expire(day, ["status", "version"])
    result.reserved_lines = len(draft.allocations)
    result.short_lines = sum(len(lines) for lines in draft.missing.values())
    result.days_fully_reserved = len(reserved_ids)
    result.days_short = len(short_ids)
    result.short = [
        {"infusion_day_id": day_id, **line}
        for day_id in short_ids
        for line in draft.missing[day_id]
    ]
    _reserve_equipment(session, therapy_sites, templates, today, result)
    return result


def _reserve_equipment(
    session: Session,
    therapy_sites: dict[int, str],
    templates: dict[int, TemplateNeeds],
    today: date,
    result: PlanResult,
) -> None:
    """One set of course equipment per therapy, by serial: available, in storage, and not
    overdue for preventive maintenance."""
    wanted = {  # only the therapies whose days this run actually planned
        therapy_id: template.equipment
        for therapy_id, template in templates.items()
        if template.equipment and therapy_id in therapy_sites
    }
    if not wanted:
        return
    held = session.execute(
        select(Reservation.therapy_id, Reservation.item_id, func.count())
        .where(
            Reservation.therapy_id.in_(wanted),
            Reservation.serial_unit_id.is_not(None),
            Reservation.status.in_([ReservationStatus.ACTIVE, ReservationStatus.PICKED]),
        )
        .group_by(Reservation.therapy_id, Reservation.item_id)
    ).all()
    have = {(int(t), int(i)): int(n) for t, i, n in held}
    item_ids = sorted({line.item_id for lines in wanted.values() for line in lines})
    sites = sorted(set(therapy_sites.values()))
    free: dict[tuple[str, int], list[SerialUnit]] = defaultdict(list)
    for unit, unit_site in session.execute(
        select(SerialUnit, Location.site)
        .join(Location, SerialUnit.location_id == Location.id)
        .where(
            SerialUnit.item_id.in_(item_ids),
            SerialUnit.status == EquipmentStatus.AVAILABLE,
            Location.kind == LocationKind.STORAGE,
            Location.site.in_(sites),
            or_(SerialUnit.pm_due.is_(None), SerialUnit.pm_due >= today),
        )
        .order_by(SerialUnit.id)
    ).all():
        free[(unit_site, unit.item_id)].append(unit)
    reservations: list[Reservation] = []
    for therapy_id in sorted(wanted):
        site = therapy_sites[therapy_id]
        for line in wanted[therapy_id]:
            short = line.quantity - have.get((therapy_id, line.item_id), 0)
            if short <= 0:
                continue
            pool = free[(site, line.item_id)]
            units, pool[:] = pool[:short], pool[short:]
            for unit in units:
                assert unit.location_id is not None
                reservations.append(
                    Reservation(
                        site=site,
                        therapy_id=therapy_id,
                        infusion_day_id=None,
                        item_id=unit.item_id,
                        lot_id=None,
                        location_id=unit.location_id,
                        serial_unit=unit,
                        quantity=1,
                    )
                )
            result.equipment_short += short - len(units)
    if reservations:
        hold(session, reservations)
    result.equipment_reserved = len(reservations)
    result.reserved_lines += len(reservations)
    result.short_lines += result.equipment_short


def run(
    session: Session, horizon_days: int, site: str | None = None, today: date | None = None
) -> PlanResult:
    """Reserve template supplies for every infusion day in the horizon (idempotent)."""
    today = today or utcnow().date()
    extend_schedules(session, today, site)
    query = (
        select(InfusionDay)
        .where(
            InfusionDay.status.in_(PLANNABLE),
            InfusionDay.date >= today,
            InfusionDay.date <= horizon_end(today, horizon_days),
        )
        .order_by(InfusionDay.date, InfusionDay.id)
    )
    if site is not None:
        query = query.where(InfusionDay.site == site)
    days = session.scalars(query).all()
    result = plan_days(session, days, today)
    _top_up_equipment(session, today, horizon_days, site, {day.therapy_id for day in days}, result)
    result.horizon_end = horizon_end(today, horizon_days)
    count_on_commit(session, "shortfalls", "supply", result.short_lines - result.equipment_short)
    count_on_commit(session, "shortfalls", "equipment", result.equipment_short)
    return result


def _top_up_equipment(
    session: Session,
    today: date,
    horizon_days: int,
    site: str | None,
    planned: set[int],
    result: PlanResult,
) -> None:
    """Course equipment for therapies whose days were all reserved before this run but that
    hold no unit any more (one was retired or swapped out): one query when there are none."""
    holding = select(Reservation.therapy_id).where(
        Reservation.serial_unit_id.is_not(None),
        Reservation.status.in_([ReservationStatus.ACTIVE, ReservationStatus.PICKED]),
    )
    query = (
        select(InfusionDay.therapy_id, InfusionDay.site)
        .join(Therapy, InfusionDay.therapy_id == Therapy.id)
        .join(TemplateEquipment, TemplateEquipment.template_id == Therapy.template_id)
        .where(
            InfusionDay.status == InfusionDayStatus.RESERVED,
            InfusionDay.date >= today,
            InfusionDay.date <= horizon_end(today, horizon_days),
            InfusionDay.therapy_id.not_in(holding),
            # A discontinued therapy's equipment is on its way back, not to be replaced.
            Therapy.status == TherapyStatus.ACTIVE,
        )
        .distinct()
    )
    if site is not None:
        query = query.where(InfusionDay.site == site)
    therapy_sites = {
        int(therapy_id): day_site
        for therapy_id, day_site in session.execute(query).all()
        if therapy_id not in planned
    }
    if therapy_sites:
        templates = lock_therapies(session, set(therapy_sites))
        _reserve_equipment(session, therapy_sites, templates, today, result)


def reserve_day(session: Session, day: InfusionDay, today: date | None = None) -> PlanResult:
    """Reserve what one infusion day still lacks."""
    today = today or utcnow().date()
    if day.status not in OPEN_DAY:
        raise Conflict(f"Infusion day {day.id} is {day.status.value}; nothing to reserve.")
    if day.date < today:
        raise Conflict(f"Infusion day {day.id} is in the past.")
    return plan_days(session, [day], today)


def release_days(session: Session, day_ids: Sequence[int], reason: str) -> int:
    """Release the active reservations of these days (units go back to available)."""
    if not day_ids:
        return 0
    reservations = session.scalars(
        select(Reservation).where(
            Reservation.infusion_day_id.in_(day_ids),
            Reservation.status == ReservationStatus.ACTIVE,
        )
    ).all()
    return release(session, reservations, reason)


def release_equipment(session: Session, therapy_id: int, reason: str) -> int:
    reservations = session.scalars(
        select(Reservation)
        .where(
            Reservation.therapy_id == therapy_id,
            Reservation.serial_unit_id.is_not(None),
            Reservation.status == ReservationStatus.ACTIVE,
        )
        .options(selectinload(Reservation.serial_unit))
    ).all()
    return release(session, reservations, reason)


def missing_for(session: Session, days: Sequence[InfusionDay]) -> dict[int, list[dict[str, int]]]:
    """Per open day, what its template still lacks (for showing short days)."""
    open_days = [day for day in days if day.status in OPEN_DAY]
    templates = templates_for(session, {day.therapy_id for day in open_days})
    needs = needs_for(session, open_days, templates)
    missing: dict[int, list[dict[str, int]]] = defaultdict(list)
    for need in needs:
        missing[need.day_id].append({"item_id": need.item_id, "missing": need.quantity})
    return missing


# --- shortages and reorder suggestions -------------------------------------------------------


def _horizon_demand(
    session: Session, today: date, horizon_days: int, site: str | None
) -> tuple[dict[int, list[tuple[date, int]]], dict[int, str]]:
    query = select(InfusionDay).where(
        InfusionDay.status.in_(OPEN_DAY),
        InfusionDay.date >= today,
        InfusionDay.date <= horizon_end(today, horizon_days),
    )
    if site is not None:
        query = query.where(InfusionDay.site == site)
    days = session.scalars(query.order_by(InfusionDay.date, InfusionDay.id)).all()
    needs = needs_for(session, days, templates_for(session, {day.therapy_id for day in days}))
    demand: dict[int, list[tuple[date, int]]] = defaultdict(list)
    for need in needs:
        demand[need.item_id].append((need.day, need.quantity))
    return demand, {day.id: day.site for day in days}


def _available(session: Session, site: str | None, today: date) -> dict[int, int]:
    query = (
        select(Balance.item_id, func.sum(Balance.on_hand - Balance.reserved))
        .join(Location, Balance.location_id == Location.id)
        .outerjoin(Lot, Balance.lot_id == Lot.id)
        .where(
            Location.kind == LocationKind.STORAGE,
            or_(Lot.id.is_(None), and_(Lot.recalled_at.is_(None), Lot.expiry >= today)),
        )
        .group_by(Balance.item_id)
    )
    if site is not None:
        query = query.where(Balance.site == site)
    return {int(item_id): int(total or 0) for item_id, total in session.execute(query).all()}


def shortages(
    session: Session, horizon_days: int, site: str | None = None, today: date | None = None
) -> list[ItemShortage]:
    """Per item: unreserved demand in the horizon against what is available now."""
    today = today or utcnow().date()
    demand, _ = _horizon_demand(session, today, horizon_days, site)
    available = _available(session, site, today)
    return [
        shortage(item_id, demand[item_id], available.get(item_id, 0)) for item_id in sorted(demand)
    ]


def reorder_suggestions(
    session: Session, horizon_days: int, site: str | None = None, today: date | None = None
) -> list[dict[str, Any]]:
    """Items whose projected available (available - unreserved demand) falls below their
    reorder point, with an order in whole multiples of the reorder quantity."""
    today = today or utcnow().date()
    demand, _ = _horizon_demand(session, today, horizon_days, site)
    available = _available(session, site, today)
    suggestions = []
    items = session.scalars(
        select(Item).where(Item.active.is_(True), Item.reorder_point > 0).order_by(Item.id)
    ).all()
    for item in items:
        needed = sum(quantity for _, quantity in demand.get(item.id, []))
        projected = available.get(item.id, 0) - needed
        quantity = reorder_quantity(projected, item.reorder_point, item.reorder_quantity)
        if quantity:
            suggestions.append(
                {
                    "item_id": item.id,
                    "sku": item.sku,
                    "available": available.get(item.id, 0),
                    "demand": needed,
                    "projected_available": projected,
                    "reorder_point": item.reorder_point,
                    "reorder_quantity": item.reorder_quantity,
                    "suggested_quantity": quantity,
                }
            )
    return suggestions


def list_reservations(session: Session, args: dict[str, Any]) -> dict[str, Any]:
    query = select(Reservation).options(
        selectinload(Reservation.lot), selectinload(Reservation.serial_unit)
    )
    for name in ("infusion_day_id", "therapy_id", "item_id", "status", "kit_id"):
        if args.get(name) is not None:
            query = query.where(getattr(Reservation, name) == args[name])
    if args.get("lot") is not None:
        query = query.join(Lot, Reservation.lot_id == Lot.id).where(Lot.lot_number == args["lot"])
    page = paginate(session, query, Reservation.id, args)
    page["items"] = [
        {
            "id": r.id,
            "therapy_id": r.therapy_id,
            "infusion_day_id": r.infusion_day_id,
            "item_id": r.item_id,
            "lot": r.lot.lot_number if r.lot else None,
            "expiry": r.lot.expiry if r.lot else None,
            "serial": r.serial_unit.serial if r.serial_unit else None,
            "location_id": r.location_id,
            "quantity": r.quantity,
            "status": r.status,
            "kit_id": r.kit_id,
            "packed_quantity": r.packed_quantity,
            "created_at": r.created_at,
            "released_at": r.released_at,
            "release_reason": r.release_reason,
        }
        for r in page["items"]
    ]
    return page
