"""Builders for payers, patients and kit templates, through the API as a coordinator would.

Call them with an ``Api`` whose role may write care data (admin or coordinator)::

    payer = make_payer(admin)
    patient = make_patient(admin, payer["id"], site="SITE1")
    template = make_template(admin, lines=[(flush["id"], 4)], equipment=[(pump["id"], 1)])
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.builders import Api, ok, unique

DEFAULT_RATE = {
    "hcpcs": "S9357",
    "rate": "212.5000",
    "counting": "dose_day",
    "effective_from": "2026-01-01",
}


def payer_body(**overrides: Any) -> dict[str, Any]:
    return {"name": unique("Payer"), "rates": [dict(DEFAULT_RATE)], **overrides}


def make_payer(api: Api, **overrides: Any) -> dict[str, Any]:
    """A payer with one S9357 dose-day rate from 2026-01-01 unless ``rates`` says otherwise."""
    return ok(api.post("/payers", payer_body(**overrides)), 201)


def address(**overrides: Any) -> dict[str, Any]:
    return {
        "line1": "100 Congress Ave",
        "city": "Austin",
        "state": "TX",
        "postal_code": "78701",
        **overrides,
    }


def patient_body(payer_id: int, site: str = "SITE1", **overrides: Any) -> dict[str, Any]:
    return {
        "external_ref": unique("MRN"),
        "name": "Test Patient",
        "address": address(),
        "payer_id": payer_id,
        "site": site,
        **overrides,
    }


def make_patient(api: Api, payer_id: int, site: str = "SITE1", **overrides: Any) -> dict[str, Any]:
    return ok(api.post("/patients", patient_body(payer_id, site, **overrides)), 201)


def template_body(
    lines: Sequence[tuple[int, int]],
    equipment: Sequence[tuple[int, int]] = (),
    **overrides: Any,
) -> dict[str, Any]:
    return {
        "name": unique("Template"),
        "hcpcs": "S9357",
        "lines": [{"item_id": item_id, "quantity_per_day": qty} for item_id, qty in lines],
        "equipment": [{"item_id": item_id, "quantity": qty} for item_id, qty in equipment],
        **overrides,
    }


def make_template(
    api: Api,
    lines: Sequence[tuple[int, int]],
    equipment: Sequence[tuple[int, int]] = (),
    **overrides: Any,
) -> dict[str, Any]:
    """A kit template: ``lines`` are (supply item id, quantity per day), ``equipment`` are
    (pump or pole item id, quantity per course)."""
    return ok(api.post("/kit-templates", template_body(lines, equipment, **overrides)), 201)


def kit_for_tomorrow(
    coordinator: Api, warehouse: Api, lines: Sequence[tuple[int, int]], site: str = "SITE1"
) -> tuple[dict[str, Any], dict[str, Any]]:
    """A patient whose therapy (template ``lines``) has one infusion day, tomorrow, planned,
    and an open kit built for it: (patient, kit)."""
    today = datetime.now(UTC).date()  # the service's today, whatever the machine's time zone
    tomorrow = (today + timedelta(days=1)).isoformat()
    patient = make_patient(coordinator, make_payer(coordinator)["id"], site=site)
    therapy = ok(
        coordinator.post(
            "/therapies",
            {
                "patient_id": patient["id"],
                "template_id": make_template(coordinator, lines=lines)["id"],
                "hcpcs": "S9357",
                "start_date": today.isoformat(),
                "schedule": {"dates": [tomorrow]},
            },
        ),
        201,
    )
    days = ok(coordinator.get(f"/therapies/{therapy['id']}/infusion-days"))["items"]
    assert len(days) == 1, days
    ok(coordinator.post("/planning/run", {"horizon_days": 14}))
    kit = ok(
        warehouse.post("/kits", {"patient_id": patient["id"], "infusion_day_ids": [days[0]["id"]]}),
        201,
    )
    return patient, kit
