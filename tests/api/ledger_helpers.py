"""Helpers for stock API tests: read the whole ledger, compare before and after."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from inventory.care.models import KitTemplate, Patient, Payer
from inventory.db import Database
from inventory.idempotency import IdempotencyRecord
from inventory.ledger.models import Balance, CostLayer, Lot, Reservation, SerialUnit, StockDocument
from inventory.ledger.service import hold
from inventory.therapies.models import Therapy, TherapyStatus
from tests.builders import Api, ok


def all_pages(api: Api, path: str, **params: Any) -> list[dict[str, Any]]:
    """Every row of a list endpoint, following next_cursor to the end."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        query = dict(params, limit=500)
        if cursor:
            query["cursor"] = cursor
        page = ok(api.get(path, **query))
        rows.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            return rows


@dataclass(frozen=True)
class LedgerSnapshot:
    movements: list[dict[str, Any]]
    stock: list[dict[str, Any]]
    lots: list[tuple[int, str, date]]
    serial_units: list[tuple[int, str, int | None, str]]
    documents: int
    cost_layers: list[tuple[int, int | None, int, Decimal, int]]
    idempotency_records: int


def ledger_snapshot(api: Api, database: Database) -> LedgerSnapshot:
    """The ledger as the API shows it, plus the rows a failed request could leave behind."""
    session = database.session()
    try:
        lots = [
            (lot.item_id, lot.lot_number, lot.expiry)
            for lot in session.scalars(select(Lot).order_by(Lot.id)).all()
        ]
        units = [
            (unit.item_id, unit.serial, unit.location_id, unit.status.value)
            for unit in session.scalars(select(SerialUnit).order_by(SerialUnit.id)).all()
        ]
        documents = session.scalar(select(func.count()).select_from(StockDocument)) or 0
        layers = [
            (layer.item_id, layer.lot_id, layer.location_id, layer.unit_cost, layer.quantity)
            for layer in session.scalars(select(CostLayer).order_by(CostLayer.id)).all()
        ]
        records = session.scalar(select(func.count()).select_from(IdempotencyRecord)) or 0
    finally:
        session.close()
    return LedgerSnapshot(
        movements=all_pages(api, "/movements"),
        stock=all_pages(api, "/stock", include_empty="true"),
        lots=lots,
        serial_units=units,
        documents=documents,
        cost_layers=layers,
        idempotency_records=records,
    )


def set_reserved(database: Database, item_id: int, location_id: int, reserved: int) -> None:
    """Hold ``reserved`` units for a throwaway therapy, through the ledger's own hold()."""
    session = database.session()
    try:
        balance = session.scalars(
            select(Balance).where(Balance.item_id == item_id, Balance.location_id == location_id)
        ).one()
        tag = uuid.uuid4().hex[:8]
        payer = Payer(name=f"payer {tag}", modifier_multipliers={})
        patient = Patient(
            external_ref=f"MRN-{tag}",
            name="Test Patient",
            address_line1="1 Main St",
            city="Austin",
            state="TX",
            postal_code="78701",
            payer=payer,
            site=balance.site,
        )
        template = KitTemplate(name=f"template {tag}", hcpcs="S9357")
        today = date.today()
        therapy = Therapy(
            patient=patient,
            template=template,
            site=balance.site,
            hcpcs="S9357",
            start_date=today,
            schedule={"every_days": 14},
            status=TherapyStatus.ACTIVE,
            scheduled_through=today,
        )
        session.add_all([payer, patient, template, therapy])
        session.flush()
        before = balance.reserved
        hold(
            session,
            [
                Reservation(
                    site=balance.site,
                    therapy_id=therapy.id,
                    item_id=item_id,
                    lot_id=balance.lot_id,
                    location_id=location_id,
                    quantity=reserved,
                )
            ],
        )
        # hold() counts with one UPDATE, not through this object: loaded already, it must
        # read the new count all the same.
        assert balance.reserved == before + reserved
        session.commit()
    finally:
        session.close()


def me(api: Api) -> dict[str, Any]:
    return ok(api.get("/me"))


def future_expiry(days: int = 365) -> str:
    return (date.today() + timedelta(days=days)).isoformat()


def days_ago(days: int) -> str:
    """An ISO 8601 timestamp with offset, ``days`` before now (UTC)."""
    return (datetime.now(UTC) - timedelta(days=days)).isoformat()


def line_summary(movements: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """(quantity, unit_cost, from, to) of each movement, for compact assertions."""
    return [
        (
            m["quantity"],
            m["unit_cost"],
            m["from"]["location_id"] or m["from"]["type"],
            m["to"]["location_id"] or m["to"]["type"],
        )
        for m in movements
    ]


def stock_of(api: Api, item_id: int, **filters: Any) -> dict[tuple[int, str | None], int]:
    """{(location_id, lot): on_hand} for an item, empty rows included."""
    rows = all_pages(api, "/stock", item_id=item_id, include_empty="true", **filters)
    return {(row["location_id"], row["lot"]): row["on_hand"] for row in rows}
