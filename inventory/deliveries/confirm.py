"""Proof of delivery from the doorstep, failed stops, and reversing a mistaken confirmation.

A confirmation is safe to send again: the view requires an ``Idempotency-Key`` (a replay
answers the first response), and the kit's row lock plus its status make a second, different
confirmation a 409 rather than a second delivery.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from inventory.auth import Caller
from inventory.db import utcnow
from inventory.deliveries.models import (
    Delivery,
    DeliveryReversal,
    FailureReason,
    Outcome,
    Route,
    RouteStatus,
    RouteStop,
    Signature,
    StopStatus,
)
from inventory.deliveries.rules import SignatureRejected, check_signature, occurred_at_problem
from inventory.deliveries.service import complete_if_done, current_stop, is_driver
from inventory.equipment.service import record_event
from inventory.errors import Conflict, InvalidInput, NotFound, PayloadTooLarge
from inventory.kits import service as kits
from inventory.kits.models import Kit, KitStatus
from inventory.ledger.models import (
    DocumentType,
    EquipmentStatus,
    Movement,
    MovementType,
    Party,
    ReservationStatus,
    StockDocument,
)
from inventory.ledger.service import Leg, lock_items, post_movements
from inventory.therapies.models import InfusionDayStatus

MICRO = Decimal("1000000")


def _lock(session: Session, kit: Kit) -> Kit:
    lock_items(session, sorted(kits.held_item_ids(session, kit.id)))
    return kits.lock_row(session, kit.id, None)


def _signature(session: Session, encoded: str) -> Signature:
    try:
        data = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput.field("signature", "is not valid base64") from None
    try:
        image = check_signature(data)
    except SignatureRejected as error:
        if error.too_large:
            raise PayloadTooLarge(str(error)) from None
        raise InvalidInput.field("signature", str(error)) from None
    signature = Signature(
        png=data,
        sha256=hashlib.sha256(data).hexdigest(),
        width=image.width,
        height=image.height,
    )
    session.add(signature)
    return signature


def _micro(value: Decimal | None) -> int | None:
    return None if value is None else int((value * MICRO).to_integral_value())


def confirm(
    session: Session, caller: Caller, kit: Kit, payload: dict[str, Any], now: datetime | None = None
) -> Delivery:
    """Record a delivery (stock vehicle → patient, days delivered, equipment at the patient
    from that moment) or a failed stop (the kit stays on the vehicle)."""
    now = now or utcnow()
    outcome: Outcome = payload["outcome"]
    # The signature pad is checked (and stored) before the locks: it is the slow part.
    signature = _signature(session, payload["signature"]) if outcome is Outcome.DELIVERED else None
    kit = _lock(session, kit)
    stop = current_stop(session, kit.id)
    if (
        kit.status is not KitStatus.DISPATCHED
        or stop is None
        or stop.status is not StopStatus.PENDING
    ):
        raise Conflict(
            f"Kit {kit.number} is {kit.status.value}; only a dispatched kit is confirmed."
        )
    route = stop.route
    if is_driver(caller) and route.driver_id != caller.user_id:
        raise NotFound(f"No kit {kit.id}.")
    assert route.dispatched_at is not None
    occurred_at: datetime = payload["occurred_at"]
    problem = occurred_at_problem(occurred_at, now, route.dispatched_at)
    if problem:
        raise InvalidInput.field("occurred_at", problem)
    delivery = Delivery(
        kit_id=kit.id,
        stop_id=stop.id,
        driver_id=caller.user_id,
        outcome=outcome,
        occurred_at=occurred_at,
        recorded_at=now,
        latitude_e6=_micro(payload.get("latitude")),
        longitude_e6=_micro(payload.get("longitude")),
        note=payload.get("note"),
    )
    if outcome is Outcome.DELIVERED:
        delivery.recipient_name = payload["recipient_name"]
        delivery.relationship_to_patient = payload["relationship"]
        delivery.signature = signature
        delivery.document_id = _hand_over(session, caller, kit, occurred_at).id
        kit.status = KitStatus.DELIVERED
        kit.vehicle_location_id = None
        stop.status = StopStatus.DELIVERED
        for day in kits.kit_days(session, kit.id):
            if day.status is InfusionDayStatus.PACKED:
                day.status = InfusionDayStatus.DELIVERED
    else:
        delivery.failure_reason = FailureReason(payload["failure_reason"])
        kit.status = KitStatus.FAILED
        stop.status = StopStatus.FAILED
    session.add(delivery)
    kits.touch(kit)
    complete_if_done(route)
    session.flush()
    return delivery


def _hand_over(session: Session, caller: Caller, kit: Kit, occurred_at: datetime) -> StockDocument:
    vehicle = kit.vehicle_location
    assert vehicle is not None
    document = StockDocument(
        type=DocumentType.DELIVERY,
        site=kit.site,
        reference=kit.number,
        reason="delivered",
        actor_id=caller.user_id,
        kit_id=kit.id,
        occurred_at=occurred_at,
        recorded_at=utcnow(),
    )
    session.add(document)
    picked = [
        r for r in kits.kit_reservations(session, kit.id) if r.status is ReservationStatus.PICKED
    ]
    post_movements(
        session,
        document,
        MovementType.DELIVERY,
        [
            Leg(
                r.item,
                r.quantity,
                vehicle,
                Party.PATIENT,
                lot=r.lot,
                serial_unit=r.serial_unit,
                held=True,
            )
            for r in picked
        ],
    )
    for r in picked:
        unit = r.serial_unit
        if unit is not None:
            record_event(
                session,
                unit,
                EquipmentStatus.AT_PATIENT,
                caller.user_id,
                occurred_at=occurred_at,
                patient_id=kit.patient_id,
                kit_id=kit.id,
                reason="delivered",
            )
            unit.status = EquipmentStatus.AT_PATIENT
            unit.patient_id = kit.patient_id
    return document


def deliveries_of(session: Session, kit: Kit) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(Delivery).where(Delivery.kit_id == kit.id).order_by(Delivery.id)
    ).all()
    reversals = {
        r.delivery_id: r
        for r in session.scalars(
            select(DeliveryReversal).where(DeliveryReversal.delivery_id.in_([d.id for d in rows]))
        ).all()
    }
    return [delivery_view(d, reversals.get(d.id)) for d in rows]


def delivery_view(delivery: Delivery, reversal: DeliveryReversal | None = None) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "kit_id": delivery.kit_id,
        "route_id": delivery.stop.route_id,
        "driver_id": delivery.driver_id,
        "outcome": delivery.outcome,
        "occurred_at": delivery.occurred_at,
        "recorded_at": delivery.recorded_at,
        "recipient_name": delivery.recipient_name,
        "relationship": delivery.relationship_to_patient,
        "has_signature": delivery.signature_id is not None,
        "latitude": None if delivery.latitude_e6 is None else Decimal(delivery.latitude_e6) / MICRO,
        "longitude": None
        if delivery.longitude_e6 is None
        else Decimal(delivery.longitude_e6) / MICRO,
        "failure_reason": delivery.failure_reason,
        "note": delivery.note,
        "reversed": reversal is not None,
        "reversal_reason": reversal.reason if reversal else None,
    }


def signature_png(session: Session, delivery_id: int) -> bytes:
    delivery = session.get(Delivery, delivery_id)
    if delivery is None or delivery.signature is None:
        raise NotFound(f"No signature for delivery {delivery_id}.")
    return delivery.signature.png


def reverse(session: Session, caller: Caller, kit: Kit, reason: str) -> DeliveryReversal:
    """Undo a delivery confirmed by mistake with compensating movements (patient → the
    vehicle, at the delivered cost): the kit is dispatched again, its days packed, its
    equipment no longer at the patient. Nothing recorded is edited."""
    kit = _lock(session, kit)
    if kit.status is not KitStatus.DELIVERED:
        raise Conflict(
            f"Kit {kit.number} is {kit.status.value}; only a delivered kit with nothing returned "
            "can have its delivery reversed."
        )
    delivery = session.scalars(
        select(Delivery)
        .where(Delivery.kit_id == kit.id, Delivery.outcome == Outcome.DELIVERED)
        .order_by(Delivery.id.desc())
        .limit(1)
        .options(selectinload(Delivery.stop).selectinload(RouteStop.route))
    ).one()
    route: Route = delivery.stop.route
    vehicle = route.vehicle
    assert vehicle is not None and delivery.document_id is not None
    handed = session.scalars(
        select(Movement)
        .where(Movement.document_id == delivery.document_id)
        .order_by(Movement.id)
        .options(
            selectinload(Movement.item),
            selectinload(Movement.lot),
            selectinload(Movement.serial_unit),
        )
    ).all()
    now = utcnow()
    document = StockDocument(
        type=DocumentType.REVERSAL,
        site=kit.site,
        reference=kit.number,
        reason="delivery reversed",
        note=reason,
        actor_id=caller.user_id,
        kit_id=kit.id,
        occurred_at=now,
        recorded_at=now,
    )
    session.add(document)
    post_movements(
        session,
        document,
        MovementType.REVERSAL,
        [
            Leg(
                m.item,
                m.quantity,
                Party.PATIENT,
                vehicle,
                lot=m.lot,
                serial_unit=m.serial_unit,
                unit_cost=m.unit_cost,
                stays_held=True,  # back on the van in the kit, under its reservations
            )
            for m in handed
        ],
    )
    for m in handed:
        unit = m.serial_unit
        if unit is not None:
            record_event(
                session,
                unit,
                EquipmentStatus.RESERVED,
                caller.user_id,
                occurred_at=now,
                kit_id=kit.id,
                note=reason,
                reason="delivery reversed",
            )
            unit.status = EquipmentStatus.RESERVED
            unit.patient_id = None
    reversal = DeliveryReversal(
        delivery_id=delivery.id, reason=reason, actor_id=caller.user_id, document_id=document.id
    )
    session.add(reversal)
    kit.status = KitStatus.DISPATCHED
    kit.vehicle_location_id = vehicle.id
    delivery.stop.status = StopStatus.PENDING
    if route.status is RouteStatus.COMPLETED:
        route.status = RouteStatus.DISPATCHED
        route.completed_at = None
    for day in kits.kit_days(session, kit.id):
        if day.status is InfusionDayStatus.DELIVERED:
            day.status = InfusionDayStatus.PACKED
    kits.touch(kit)
    session.flush()
    return reversal
