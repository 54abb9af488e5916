"""The printable pick list and delivery ticket: one HTML page, the kit number as Code 128."""

from __future__ import annotations

import base64
import io
from typing import Any

from barcode import Code128
from barcode.writer import SVGWriter
from flask import render_template
from sqlalchemy.orm import Session

from inventory.care.models import Patient
from inventory.kits import service
from inventory.kits.models import Kit, KitStatus


def code128_svg(text: str) -> str:
    """The text as a Code 128 barcode, an SVG data URI (python-barcode draws it)."""
    buffer = io.BytesIO()
    Code128(text, writer=SVGWriter()).write(
        buffer,
        options={
            "module_width": 0.4,
            "module_height": 14.0,
            "quiet_zone": 6.0,
            "write_text": False,
        },
    )
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def render(session: Session, kit: Kit) -> str:
    """The pick list while the kit is open; once packed, the delivery ticket (a signature
    line added). The patient's name and address are on it: it is the parcel's label."""
    picking = service.pick_list(session, kit)
    patient = session.get(Patient, kit.patient_id)
    assert patient is not None
    context: dict[str, Any] = {
        "kit": kit,
        "ticket": kit.status not in (KitStatus.OPEN, KitStatus.CANCELLED),
        "barcode": code128_svg(kit.number),
        "patient": patient,
        "address": {
            "line1": patient.address_line1,
            "line2": patient.address_line2,
            "city": patient.city,
            "state": patient.state,
            "postal_code": patient.postal_code,
        },
        "days": picking["days"],
        "lines": picking["lines"],
        "missing": picking["missing"],
    }
    return render_template("pick_list.html", **context)
