"""Care use cases: payers and their fee schedules, patients, kit templates.

A patient's name, address and phone are protected health information. Nothing here puts them
into an error message or a log record: patients are named by their internal id only.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload
from sqlalchemy.orm.attributes import flag_modified

from inventory.care.models import (
    DEFAULT_MODIFIER_MULTIPLIERS,
    Counting,
    KitTemplate,
    Patient,
    Payer,
    PayerRate,
    TemplateEquipment,
    TemplateLine,
)
from inventory.care.rules import rate_in_force
from inventory.catalog.models import Item
from inventory.errors import Conflict, InvalidInput, NotFound
from inventory.schemas import paginate
from inventory.therapies.models import Therapy

# --- payers -------------------------------------------------------------------------------


def get_payer(session: Session, payer_id: int) -> Payer:
    payer = session.get(Payer, payer_id)
    if payer is None:
        raise NotFound(f"No payer {payer_id}.")
    return payer


def _check_payer_name(session: Session, payer: Payer | None, name: str | None) -> None:
    if name is None:
        return
    other = session.scalars(select(Payer).where(Payer.name == name)).first()
    if other is not None and other is not payer:
        raise Conflict(f"The payer name is already used by payer {other.id}.")


def _multipliers(raw: Mapping[str, Any]) -> dict[str, str]:
    return {key: f"{Decimal(str(value)):.4f}" for key, value in sorted(raw.items())}


def _upsert_rates(payer: Payer, rates: Iterable[Mapping[str, Any]]) -> bool:
    """Add or update rates by (hcpcs, effective_from); never delete. True if anything changed."""
    existing = {(rate.hcpcs, rate.effective_from): rate for rate in payer.rates}
    changed = False
    for fields in rates:
        amount = Decimal(str(fields["rate"]))
        counting = Counting(fields["counting"])
        key = (fields["hcpcs"], fields["effective_from"])
        rate = existing.get(key)
        if rate is None:
            rate = PayerRate(hcpcs=key[0], effective_from=key[1], rate=amount, counting=counting)
            payer.rates.append(rate)
            existing[key] = rate
            changed = True
        elif rate.rate != amount or rate.counting is not counting:
            rate.rate, rate.counting = amount, counting
            changed = True
    return changed


def create_payer(session: Session, fields: Mapping[str, Any]) -> Payer:
    """Add a payer with its fee schedule and modifier multipliers (default SH 0.5, SJ 0)."""
    _check_payer_name(session, None, fields["name"])
    multipliers = fields.get("modifier_multipliers")
    payer = Payer(
        name=fields["name"],
        modifier_multipliers=_multipliers(
            DEFAULT_MODIFIER_MULTIPLIERS if multipliers is None else multipliers
        ),
    )
    session.add(payer)
    _upsert_rates(payer, fields.get("rates") or ())
    session.flush()
    session.expire(payer, ["rates"])  # reload in (hcpcs, effective_from) order
    return payer


def update_payer(session: Session, payer: Payer, changes: Mapping[str, Any]) -> Payer:
    """Rename, replace the modifier map, and upsert rates by (hcpcs, effective_from).

    Rates already in the schedule get the new rate and counting, new ones are added, and none
    is deleted: past claims were priced with them.
    """
    if "name" in changes:
        _check_payer_name(session, payer, changes["name"])
        payer.name = changes["name"]
    if "modifier_multipliers" in changes:
        payer.modifier_multipliers = _multipliers(changes["modifier_multipliers"])
    if "rates" in changes and _upsert_rates(payer, changes["rates"]):
        # The rates live in their own table: touch the payer so its version (ETag) moves.
        flag_modified(payer, "modifier_multipliers")
    session.flush()
    session.expire(payer, ["rates"])
    return payer


def list_payers(session: Session, args: Mapping[str, Any]) -> dict[str, Any]:
    query = select(Payer).options(selectinload(Payer.rates))
    if args.get("name") is not None:
        query = query.where(Payer.name == args["name"])
    return paginate(session, query, Payer.id, args)


def rate_for(payer: Payer, hcpcs: str, day: date) -> PayerRate:
    """The payer's rate for ``hcpcs`` in force on ``day``; 404 when the schedule has none."""
    rate = rate_in_force(payer.rates, hcpcs, day)
    if rate is None:
        raise NotFound(f"Payer {payer.id} has no {hcpcs} rate in force on {day.isoformat()}.")
    return rate


# --- patients -----------------------------------------------------------------------------


def get_patient(session: Session, patient_id: int) -> Patient:
    patient = session.get(Patient, patient_id)
    if patient is None:
        raise NotFound(f"No patient {patient_id}.")
    return patient


def _check_payer_exists(session: Session, payer_id: int) -> None:
    if session.get(Payer, payer_id) is None:
        raise InvalidInput.field("payer_id", f"no payer {payer_id}")


def _check_external_ref(session: Session, patient: Patient | None, external_ref: str) -> None:
    other = session.scalars(select(Patient).where(Patient.external_ref == external_ref)).first()
    if other is not None and other is not patient:
        raise Conflict(f"external_ref is already used by patient {other.id}.")


def _address_columns(address: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "address_line1": address["line1"],
        "address_line2": address.get("line2") or None,
        "city": address["city"],
        "state": address["state"],
        "postal_code": address["postal_code"],
    }


def create_patient(session: Session, fields: Mapping[str, Any]) -> Patient:
    """Add a patient: external reference, name, delivery address, phone, payer and site."""
    _check_payer_exists(session, fields["payer_id"])
    _check_external_ref(session, None, fields["external_ref"])
    patient = Patient(
        external_ref=fields["external_ref"],
        name=fields["name"],
        phone=fields.get("phone") or None,
        payer_id=fields["payer_id"],
        site=fields["site"],
        **_address_columns(fields["address"]),
    )
    session.add(patient)
    session.flush()
    return patient


def update_patient(session: Session, patient: Patient, changes: Mapping[str, Any]) -> Patient:
    """Edit a patient. The address is replaced as a whole; the site is fixed once a therapy
    exists, since every therapy, infusion day and kit belongs to the patient's site."""
    if "payer_id" in changes:
        _check_payer_exists(session, changes["payer_id"])
    if "external_ref" in changes:
        _check_external_ref(session, patient, changes["external_ref"])
    if "site" in changes and changes["site"] != patient.site:
        has_therapy = session.scalars(
            select(Therapy.id).where(Therapy.patient_id == patient.id).limit(1)
        ).first()
        if has_therapy is not None:
            raise Conflict(
                f"Patient {patient.id} has therapies at site {patient.site}; "
                "the site can no longer change."
            )
    for name in ("external_ref", "name", "payer_id", "site"):
        if name in changes:
            setattr(patient, name, changes[name])
    if "phone" in changes:
        patient.phone = changes["phone"] or None
    if "address" in changes:
        for column, value in _address_columns(changes["address"]).items():
            setattr(patient, column, value)
    session.flush()
    return patient


def list_patients(session: Session, args: Mapping[str, Any]) -> dict[str, Any]:
    query = select(Patient)
    for name in ("site", "payer_id", "external_ref"):
        if args.get(name) is not None:
            query = query.where(getattr(Patient, name) == args[name])
    return paginate(session, query, Patient.id, args)


# --- kit templates ------------------------------------------------------------------------


_TEMPLATE_CONTENTS = (
    selectinload(KitTemplate.lines).selectinload(TemplateLine.item),
    selectinload(KitTemplate.equipment).selectinload(TemplateEquipment.item),
)


def get_template(session: Session, template_id: int) -> KitTemplate:
    template = session.get(KitTemplate, template_id, options=_TEMPLATE_CONTENTS)
    if template is None:
        raise NotFound(f"No kit template {template_id}.")
    return template


def _template_errors(
    items: Mapping[int, Item],
    lines: list[Mapping[str, Any]],
    equipment: list[Mapping[str, Any]],
) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for group, entries, wants_equipment in (
        ("lines", lines, False),
        ("equipment", equipment, True),
    ):
        seen: dict[int, int] = {}
        for index, entry in enumerate(entries):
            field = f"{group}.{index}.item_id"
            item_id = entry["item_id"]
            item = items.get(item_id)
            if item is None:
                errors[field] = [f"No item {item_id}."]
            elif item_id in seen:
                errors[field] = [f"Item {item_id} is already on {group}.{seen[item_id]}."]
            elif item.is_equipment and not wants_equipment:
                errors[field] = [
                    f"Item {item_id} is equipment ({item.category.value}); list it under equipment."
                ]
            elif wants_equipment and not item.is_equipment:
                errors[field] = [
                    f"Item {item_id} is not equipment (pump or pole); list it under lines."
                ]
            seen.setdefault(item_id, index)
    return errors


def create_template(session: Session, fields: Mapping[str, Any]) -> KitTemplate:
    """Add a kit template: supplies per infusion day and equipment per course."""
    lines = list(fields["lines"])
    equipment = list(fields.get("equipment") or ())
    ids = {entry["item_id"] for entry in [*lines, *equipment]}
    items = {item.id: item for item in session.scalars(select(Item).where(Item.id.in_(ids)))}
    errors = _template_errors(items, lines, equipment)
    if errors:
        raise InvalidInput("Some template lines name items that cannot be used.", errors=errors)
    other = session.scalars(select(KitTemplate).where(KitTemplate.name == fields["name"])).first()
    if other is not None:
        raise Conflict(f"The template name is already used by kit template {other.id}.")
    template = KitTemplate(name=fields["name"], hcpcs=fields["hcpcs"])
    session.add(template)
    for line in lines:
        template.lines.append(
            TemplateLine(item_id=line["item_id"], quantity_per_day=line["quantity_per_day"])
        )
    for entry in equipment:
        template.equipment.append(
            TemplateEquipment(item_id=entry["item_id"], quantity=entry["quantity"])
        )
    session.flush()
    session.expire(template, ["lines", "equipment"])
    return template


def list_templates(session: Session, args: Mapping[str, Any]) -> dict[str, Any]:
    query = select(KitTemplate).options(*_TEMPLATE_CONTENTS)
    for name in ("hcpcs", "name"):
        if args.get(name) is not None:
            query = query.where(getattr(KitTemplate, name) == args[name])
    return paginate(session, query, KitTemplate.id, args)
