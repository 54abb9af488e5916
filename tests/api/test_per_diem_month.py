"""The correctness bar: one month computed by hand, every figure to the cent."""

from __future__ import annotations

import json

from tests.api.finance_builders import run_march


def test_debug(as_role, app) -> None:  # type: ignore[no-untyped-def]
    month = run_march(as_role, app)
    print(json.dumps(month.report(**{"from": "2026-03-01", "to": "2026-03-31"}), indent=1))
    for row in month.days(**{"from": "2026-03-01", "to": "2026-03-31"}):
        print(row["day"], row["external_ref"][-4:], row["per_diem_units"], row["supply_cost"], row["return_credit"], row["waste_cost"], row["equipment_cost"], row["expected_revenue"], row["kit_ids"])
