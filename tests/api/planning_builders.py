"""ORM builders for planning tests: payers, patients and kit templates straight into the
database, so therapy and planning tests do not depend on the care HTTP API.

Each builder opens a session on the test's ``database`` fixture and commits it; the test's
outer transaction still rolls everything back afterwards::

    payer_id = make_payer(database)
    patient_id = make_patient(database, payer_id, site="SITE1")
    template_id = make_template(database, lines=[(flush["id"], 4)], equipment=[(pump["id"], 1)])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime

from sqlalchemy import select

from inventory.care.models import KitTemplate, Patient, Payer, TemplateEquipment, TemplateLine
from inventory.db import Database
from inventory.ledger.models import SerialUnit
from inventory.therapies.models import InfusionDay, InfusionDayStatus
from tests.builders import unique


def today() -> date:
    """The service's today: the UTC date, whatever the machine's time zone."""
    return datetime.now(UTC).date()


def make_payer(database: Database) -> int:
    session = database.session()
    try:
        payer = Payer(name=unique("Payer"), modifier_multipliers={})
        session.add(payer)
        session.commit()
        return payer.id
    finally:
        session.close()


def make_patient(database: Database, payer_id: int, site: str = "SITE1") -> int:
    session = database.session()
    try:
        patient = Patient(
            external_ref=unique("MRN"),
            name="Test Patient",
            address_line1="100 Congress Ave",
            city="Austin",
            state="TX",
            postal_code="78701",
            payer_id=payer_id,
            site=site,
        )
        session.add(patient)
        session.commit()
        return patient.id
    finally:
        session.close()


def make_template(
    database: Database,
    lines: Sequence[tuple[int, int]] = (),
    equipment: Sequence[tuple[int, int]] = (),
    hcpcs: str = "S9357",
) -> int:
    """A kit template: ``lines`` are (supply item id, quantity per day), ``equipment`` are
    (pump or pole item id, quantity per course)."""
    session = database.session()
    try:
        template = KitTemplate(name=unique("Template"), hcpcs=hcpcs)
        session.add(template)
        session.flush()
        session.add_all(
            [
                TemplateLine(template_id=template.id, item_id=item_id, quantity_per_day=quantity)
                for item_id, quantity in lines
            ]
            + [
                TemplateEquipment(template_id=template.id, item_id=item_id, quantity=quantity)
                for item_id, quantity in equipment
            ]
        )
        session.commit()
        return template.id
    finally:
        session.close()


def set_day_status(database: Database, day_id: int, status: InfusionDayStatus) -> None:
    """Put an infusion day in a status no endpoint here can reach (packed, delivered)."""
    session = database.session()
    try:
        day = session.get(InfusionDay, day_id)
        assert day is not None
        day.status = status
        session.commit()
    finally:
        session.close()


def set_pm_due(database: Database, item_id: int, serial: str, pm_due: date | None) -> None:
    """Set a serial unit's preventive-maintenance due date."""
    session = database.session()
    try:
        unit = session.scalars(
            select(SerialUnit).where(SerialUnit.item_id == item_id, SerialUnit.serial == serial)
        ).one()
        unit.pm_due = pm_due
        session.commit()
    finally:
        session.close()


def serial_status(database: Database, item_id: int, serial: str) -> str:
    """A serial unit's equipment status (there is no equipment endpoint to ask yet)."""
    session = database.session()
    try:
        unit = session.scalars(
            select(SerialUnit).where(SerialUnit.item_id == item_id, SerialUnit.serial == serial)
        ).one()
        return unit.status.value
    finally:
        session.close()
