"""The correctness bar: one month (March 2026) computed by hand, every figure to the cent.

The month is built by ``finance_builders.run_march`` (read its docstring). The hand computation:

Unit costs: flush 1.2345, administration set 10.0000; pump daily rate 15.5000.

Patient A (Acme, dose_day, S9357, no modifier)
  Kit A1, days 10 and 11 March, delivered 9 March: 6 flushes and 2 sets.
    flush line: 6 x 1.2345 = 7.4070 -> 741 cents; 741 // 2 = 370 on the 10th, 371 on the 11th
    set line:   2 x 10.00  = 20.00  -> 2000 cents; 1000 and 1000
    -> 10 March 13.70, 11 March 13.71
  Kit A2, day 20 March, delivered 19 March: 3 x 1.2345 = 3.7035 -> 3.70; + 10.00 = 13.70
  Returned 12 March from kit A1: 2 flushes unopened -> credit 2.4690 -> 2.47;
                                  1 flush opened    -> waste  1.2345 -> 1.23
  supply 13.70 + 13.71 + 13.70 = 41.11; credit 2.47; waste 1.23; equipment 0
  total cost = 41.11 - 2.47 + 0 = 38.64 (waste is part of the supply cost, not added again)
  units: delivered days 10, 11, 20 March = 3
  revenue: 10 and 11 March at 400.00, 20 March at 420.00 (rate change on the 16th) = 1220.00
  margin 1220.00 - 38.64 = 1181.36; cost per unit 38.64 / 3 = 12.88

Patient B (Acme, dose_day, S9357 with SH at 50 %)
  Kit B1, day 17 March, delivered 16 March: 13.70
  units 1; revenue 420.00 x 0.5 = 210.00; margin 196.30; cost per unit 13.70

Patient C (Blue, calendar_day, S9500 at 60.00), therapy 21 to 30 March
  Kit C1, day 21 March, delivered 21 March: supplies 13.70, and the pump
  pump at home 21 March until it came back on 31 March: 21..30 = 10 days x 15.50 = 155.00
  units: every day 21..30 March = 10; revenue 10 x 60.00 = 600.00
  total cost 13.70 + 155.00 = 168.70; margin 431.30; cost per unit 16.87

Totals: units 14; supply 68.51; credit 2.47; waste 1.23; equipment 155.00;
  total cost 68.51 - 2.47 + 155.00 = 221.04; revenue 1220 + 210 + 600 = 2030.00;
  margin 1808.96; cost per unit 221.04 / 14 = 15.788... -> 15.79
By payer: Acme (A + B) units 4, supply 54.81, credit 2.47, waste 1.23, total 52.34,
  revenue 1430.00, margin 1377.66, cost per unit 52.34 / 4 = 13.085 -> 13.09 (half-up);
  Blue = C.
"""

from __future__ import annotations

import csv
import io
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from inventory.care.models import Patient
from inventory.finance import costing
from tests.api.finance_builders import clock, march, run_march
from tests.builders import ok

MARCH = {"from": "2026-03-01", "to": "2026-03-31"}
FIGURES = (
    "per_diem_units",
    "supply_cost",
    "return_credit",
    "waste_cost",
    "equipment_cost",
    "total_cost",
    "cost_per_unit",
    "expected_revenue",
    "margin",
)


def figures(
    units: int,
    supply: str,
    credit: str,
    waste: str,
    equipment: str,
    total: str,
    per_unit: str | None,
    revenue: str,
    margin: str,
) -> dict[str, Any]:
    return dict(
        zip(
            FIGURES,
            (units, supply, credit, waste, equipment, total, per_unit, revenue, margin),
            strict=True,
        )
    )


A = figures(3, "41.11", "2.47", "1.23", "0.00", "38.64", "12.88", "1220.00", "1181.36")
B = figures(1, "13.70", "0.00", "0.00", "0.00", "13.70", "13.70", "210.00", "196.30")
C = figures(10, "13.70", "0.00", "0.00", "155.00", "168.70", "16.87", "600.00", "431.30")
TOTALS = figures(14, "68.51", "2.47", "1.23", "155.00", "221.04", "15.79", "2030.00", "1808.96")
ACME = figures(4, "54.81", "2.47", "1.23", "0.00", "52.34", "13.09", "1430.00", "1377.66")


def only_figures(row: dict[str, Any]) -> dict[str, Any]:
    return {name: row[name] for name in FIGURES}


def test_a_month_by_patient_matches_the_hand_computation(as_role, app) -> None:  # type: ignore[no-untyped-def]
    month = run_march(as_role, app)
    report = month.report(**MARCH, group_by="patient")
    rows = {row["external_ref"]: only_figures(row) for row in report["rows"]}
    assert rows == {month.ref("A"): A, month.ref("B"): B, month.ref("C"): C}
    assert report["totals"] == TOTALS
    assert report["closed_months"] == []


def test_the_month_is_the_same_computed_one_patient_at_a_time(as_role, app, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Reports are computed a batch of patients at a time; the batches' bounds change
    nothing, in any grouping or in the day drill-down."""
    month = run_march(as_role, app)
    whole = {
        group_by: month.report(**MARCH, group_by=group_by)
        for group_by in ("patient", "payer", "hcpcs", "therapy")
    }
    days = ok(month.finance.get("/reports/per-diem/days", site=month.site, **MARCH))
    monkeypatch.setattr(costing, "BATCH_PATIENT_DAYS", 1)
    for group_by, report in whole.items():
        assert month.report(**MARCH, group_by=group_by) == report
    assert ok(month.finance.get("/reports/per-diem/days", site=month.site, **MARCH)) == days
    rows = {row["external_ref"]: only_figures(row) for row in whole["patient"]["rows"]}
    assert rows == {month.ref("A"): A, month.ref("B"): B, month.ref("C"): C}


def test_whoever_takes_the_drill_downs_rows_may_use_the_session_between_them(  # type: ignore[no-untyped-def]
    as_role, app, database, monkeypatch
) -> None:
    """A batch's rows are handed out only once nothing sent ahead is pending, so a consumer
    (the period close writes its snapshot as rows come) can run its own statements."""
    month = run_march(as_role, app)
    monkeypatch.setattr(costing, "BATCH_PATIENT_DAYS", 1)
    session = database.session()
    try:
        scope = costing.scope_for(session, march(1), march(31), None)
        refs = []
        for row in costing.day_rows(session, scope):
            refs.append(
                session.execute(
                    select(Patient.external_ref).where(Patient.id == row.subject.patient_id)
                ).scalar_one()
            )
    finally:
        session.close()
    assert set(refs) == {month.ref("A"), month.ref("B"), month.ref("C")}


def test_a_long_period_adds_up_to_its_months(as_role, app) -> None:  # type: ignore[no-untyped-def]
    """A period of two months or more is read another way (whole scans, on PostgreSQL with
    hash joins); February to May still gives exactly the sum of its months, March being the
    hand-computed one."""
    month = run_march(as_role, app)
    months = [("2026-02-01", "2026-02-28"), ("2026-03-01", "2026-03-31")]
    months += [("2026-04-01", "2026-04-30"), ("2026-05-01", "2026-05-31")]
    additive = [name for name in FIGURES if name != "cost_per_unit"]
    summed: dict[str, Decimal] = {}
    for first, last in months:
        totals = month.report(**{"from": first, "to": last})["totals"]
        for name in additive:
            summed[name] = summed.get(name, Decimal(0)) + Decimal(str(totals[name]))
    long = month.report(**{"from": "2026-02-01", "to": "2026-05-31"}, group_by="patient")
    assert {name: Decimal(str(long["totals"][name])) for name in additive} == summed
    assert month.report(**MARCH)["totals"] == TOTALS


def test_the_same_month_by_payer_code_and_therapy(as_role, app) -> None:  # type: ignore[no-untyped-def]
    month = run_march(as_role, app)
    by_payer = {
        row["payer_name"]: only_figures(row)
        for row in month.report(**MARCH, group_by="payer")["rows"]
    }
    assert by_payer == {month.acme["name"]: ACME, month.blue["name"]: C}
    by_code = {
        (row["hcpcs"], row["modifier"]): only_figures(row)
        for row in month.report(**MARCH, group_by="hcpcs")["rows"]
    }
    assert by_code == {("S9357", None): A, ("S9357", "SH"): B, ("S9500", None): C}
    by_therapy = {
        row["therapy_id"]: only_figures(row)
        for row in month.report(**MARCH, group_by="therapy")["rows"]
    }
    therapy = {name: month.therapies[name]["id"] for name in "ABC"}
    assert by_therapy == {therapy["A"]: A, therapy["B"]: B, therapy["C"]: C}
    for group_by in ("payer", "hcpcs", "therapy"):
        assert month.report(**MARCH, group_by=group_by)["totals"] == TOTALS


def day(
    units: int, supply: str, credit: str, waste: str, equipment: str, revenue: str
) -> tuple[Any, ...]:
    return (units, supply, credit, waste, equipment, revenue)


def test_the_drill_down_shows_each_day_and_the_kits_behind_it(as_role, app) -> None:  # type: ignore[no-untyped-def]
    month = run_march(as_role, app)
    kit = {name: month.kits[name]["id"] for name in ("A1", "A2", "B1", "C1")}
    rows = month.days(**MARCH)
    seen = {
        (row["external_ref"], row["day"]): (
            day(
                row["per_diem_units"],
                row["supply_cost"],
                row["return_credit"],
                row["waste_cost"],
                row["equipment_cost"],
                row["expected_revenue"],
            ),
            row["kit_ids"],
            row["rate"],
        )
        for row in rows
    }
    a, b, c = month.ref("A"), month.ref("B"), month.ref("C")
    expected = {
        (a, "2026-03-10"): (
            day(1, "13.70", "0.00", "0.00", "0.00", "400.00"),
            [kit["A1"]],
            "400.0000",
        ),
        (a, "2026-03-11"): (
            day(1, "13.71", "0.00", "0.00", "0.00", "400.00"),
            [kit["A1"]],
            "400.0000",
        ),
        (a, "2026-03-12"): (day(0, "0.00", "2.47", "1.23", "0.00", "0.00"), [kit["A1"]], None),
        (a, "2026-03-20"): (
            day(1, "13.70", "0.00", "0.00", "0.00", "420.00"),
            [kit["A2"]],
            "420.0000",
        ),
        (b, "2026-03-17"): (
            day(1, "13.70", "0.00", "0.00", "0.00", "210.00"),
            [kit["B1"]],
            "420.0000",
        ),
        (c, "2026-03-21"): (
            day(1, "13.70", "0.00", "0.00", "15.50", "60.00"),
            [kit["C1"]],
            "60.0000",
        ),
    }
    for offset in range(22, 31):
        expected[(c, f"2026-03-{offset}")] = (
            day(1, "0.00", "0.00", "0.00", "15.50", "60.00"),
            [kit["C1"]],
            "60.0000",
        )
    assert seen == expected
    # The rows are ordered by patient, then date, and add up to the report.
    order = [(row["patient_id"], row["day"]) for row in rows]
    assert order == sorted(order)
    for name in FIGURES:
        if name == "cost_per_unit":
            continue
        total = sum(Decimal(str(row[name])) for row in rows)
        assert total == Decimal(str(TOTALS[name])), name


def download(api: Any, path: str, **params: Any) -> bytes:
    """A streamed CSV, read to the end at once (and so closed) before the next request."""
    response = api.get(path, headers={"Accept": "text/csv"}, **params)
    assert response.status_code == 200, response.data[:300]
    assert response.mimetype == "text/csv"
    data: bytes = response.data
    response.close()
    return data


@pytest.mark.parametrize("batches", ["one batch", "one patient at a time"])
def test_a_closed_month_keeps_its_figures_byte_for_byte(as_role, app, monkeypatch, batches) -> None:  # type: ignore[no-untyped-def]
    """Also computed one patient at a time: the close then writes its snapshot while the
    next batch's shipments have been sent to the database ahead (on PostgreSQL)."""
    month = run_march(as_role, app)
    if batches == "one patient at a time":
        monkeypatch.setattr(costing, "BATCH_PATIENT_DAYS", 1)
    with clock(march(31).replace(month=4, day=2)):
        before = download(month.finance, "/reports/per-diem", site=month.site, **MARCH)
        days_before = download(month.finance, "/reports/per-diem/days", site=month.site, **MARCH)
        straddling = {"from": "2026-03-15", "to": "2026-04-05"}  # half closed, half open
        straddling_before = month.report(**straddling)["totals"]
        ok(month.finance.post("/periods/2026-03/close", {"note": "March books"}), 201)
        # Things that would change March if it were open: the fee schedule, a patient's payer.
        changed = {"hcpcs": "S9357", "rate": "999.0000", "counting": "calendar_day"}
        ok(
            month.coordinator.patch(
                f"/payers/{month.acme['id']}",
                {"rates": [{**changed, "effective_from": "2026-03-01"}]},
            )
        )
        after = download(month.finance, "/reports/per-diem", site=month.site, **MARCH)
        days_after = download(month.finance, "/reports/per-diem/days", site=month.site, **MARCH)
        straddling_after = month.report(**straddling)
    assert before == after
    assert straddling_after["closed_months"] == ["2026-03"]
    assert straddling_after["totals"] == straddling_before
    assert straddling_before["per_diem_units"] == 12  # A on the 20th, B on the 17th, C's 10
    assert days_before == days_after
    totals = list(csv.reader(io.StringIO(after.decode())))[-1]
    assert totals[0] == "TOTAL"
    assert totals[-len(FIGURES) :] == [str(TOTALS[name]) for name in FIGURES]
    report = month.report(**MARCH)
    assert report["closed_months"] == ["2026-03"]
    assert report["totals"] == TOTALS


def test_a_closed_month_refuses_movements_and_corrections_land_in_the_open_one(
    as_role, app
) -> None:  # type: ignore[no-untyped-def]
    month = run_march(as_role, app)
    shelf = ok(month.warehouse.get("/locations", site=month.site, kind="storage"))["items"][0]
    flush = month.items["flush"]
    lot = ok(month.warehouse.get("/stock", item_id=flush["id"], location_id=shelf["id"]))["items"][
        0
    ]["lot"]

    def adjustment(occurred_at: str) -> Any:
        return month.warehouse.post(
            "/adjustments",
            {
                "reason": "count",
                "note": "late count correction",
                "occurred_at": occurred_at,
                "lines": [
                    {
                        "item_id": flush["id"],
                        "lot": lot,
                        "location_id": shelf["id"],
                        "quantity_delta": -1,
                    }
                ],
            },
        )

    with clock(march(31).replace(month=4, day=2)):
        ok(month.finance.post("/periods/2026-03/close", {}), 201)
        refused = adjustment("2026-03-30T12:00:00+00:00")
        assert refused.status_code == 409, refused.get_json()
        body = refused.get_json()
        assert body["type"].endswith("/period-closed")
        assert body["period"] == "2026-03"
        assert refused.content_type == "application/problem+json"
        assert adjustment("2026-04-01T12:00:00+00:00").status_code == 201
        again = month.finance.post("/periods/2026-03/close", {})
        assert again.status_code == 409
        assert month.finance.post("/adjustments", {}).status_code == 403
    assert month.report(**MARCH)["totals"] == TOTALS
