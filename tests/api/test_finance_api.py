"""The finance API: per diem reports and their formats, the drill-down, reconciliation of billed
claims (JSON and CSV upload), closing a month, and who may call what.

The month of data is built by ``finance_builders.run_march`` (read its docstring); its figures,
computed by hand, are in ``test_per_diem_month.py``, from which the totals below are copied.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import uuid
from collections import Counter
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import openpyxl
import pytest
from flask import Flask
from werkzeug.test import TestResponse

from inventory import create_app
from inventory.db import Database
from inventory.users.models import Role
from tests.api.finance_builders import (
    Month,
    clock,
    days_of,
    deliver,
    march,
    packed_kit,
    patient,
    run_march,
    therapy,
)
from tests.builders import Api, Catalog, ok, problem, token_for, unique
from tests.conftest import Backend

MARCH: dict[str, Any] = {"from": "2026-03-01", "to": "2026-03-31"}
APRIL_2 = date(2026, 4, 2)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
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
MONEY = FIGURES[1:]
TOTALS: dict[str, Any] = dict(
    zip(
        FIGURES,
        (14, "68.51", "2.47", "1.23", "155.00", "221.04", "15.79", "2030.00", "1808.96"),
        strict=True,
    )
)
REPORT = "/reports/per-diem"
DAYS = "/reports/per-diem/days"
CLAIM_HEADER = "external_ref,hcpcs,date_of_service,units,billed_amount"
# billed units, delivered units, billed amount, expected revenue, difference
Outcome = tuple[int, int, str, str, str]


# --- helpers ---------------------------------------------------------------------------------


def download(api: Api, path: str, accept: str | None = None, **params: Any) -> TestResponse:
    """A streamed download read to the end (and so closed) before the next request."""
    headers = {"Accept": accept} if accept else None
    response = api.get(path, headers=headers, **params)
    assert response.status_code == 200, response.data[:300]
    response.get_data()
    response.close()
    return response


def csv_rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))


def upload(api: Api, data: bytes, filename: str = "claims.csv", **form: str) -> TestResponse:
    """POST /reconciliations as a multipart upload of ``data`` in the field ``file``."""
    return api.client.post(
        "/api/v1/reconciliations",
        data={"file": (io.BytesIO(data), filename), **form},
        headers={"Authorization": f"Bearer {api.token}"},
        content_type="multipart/form-data",
    )


def claims_csv(claims: list[dict[str, Any]]) -> bytes:
    lines = [CLAIM_HEADER]
    lines += [
        ",".join(
            str(claim[name])
            for name in ("external_ref", "hcpcs", "date_of_service", "units", "billed_amount")
        )
        for claim in claims
    ]
    return ("\r\n".join(lines) + "\r\n").encode()


def claim(ref: str, hcpcs: str, day: int, units: int, amount: str) -> dict[str, Any]:
    return {
        "external_ref": ref,
        "hcpcs": hcpcs,
        "date_of_service": march(day).isoformat(),
        "units": units,
        "billed_amount": amount,
    }


def march_claims(month: Month) -> list[dict[str, Any]]:
    """A billed 10, 11 (right), 20 with 2 units (mismatch) and 15 (never delivered); C every day
    of its course but the 25th; nothing for B (its 17th goes unbilled)."""
    a, c = month.ref("A"), month.ref("C")
    claims = [
        claim(a, "S9357", 10, 1, "400.00"),
        claim(a, "S9357", 11, 1, "400.00"),
        claim(a, "S9357", 20, 2, "840.00"),
        claim(a, "S9357", 15, 1, "400.00"),
    ]
    claims += [claim(c, "S9500", day, 1, "60.00") for day in range(21, 31) if day != 25]
    return claims


def expected_reconciliation(month: Month) -> dict[str, dict[tuple[str, str, str], Outcome]]:
    """(ref, code, date) -> (billed units, delivered units, billed, expected, difference)."""
    a, b, c = month.ref("A"), month.ref("B"), month.ref("C")
    matched = {
        (a, "S9357", "2026-03-10"): (1, 1, "400.00", "400.00", "0.00"),
        (a, "S9357", "2026-03-11"): (1, 1, "400.00", "400.00", "0.00"),
    }
    for day in range(21, 31):
        if day != 25:
            matched[(c, "S9500", march(day).isoformat())] = (1, 1, "60.00", "60.00", "0.00")
    return {
        "matched_lines": matched,
        "unit_mismatches": {(a, "S9357", "2026-03-20"): (2, 1, "840.00", "420.00", "420.00")},
        "billed_not_delivered": {(a, "S9357", "2026-03-15"): (1, 0, "400.00", "0.00", "400.00")},
        "delivered_not_billed": {
            (b, "S9357", "2026-03-17"): (0, 1, "0.00", "210.00", "-210.00"),
            (c, "S9500", "2026-03-25"): (0, 1, "0.00", "60.00", "-60.00"),
        },
    }


def entries(result: dict[str, Any], bucket: str) -> dict[tuple[str, str, str], Outcome]:
    seen = {}
    for line in result[bucket]:
        key = (line["external_ref"], line["hcpcs"], line["date_of_service"])
        assert key not in seen, key
        seen[key] = (
            line["billed_units"],
            line["delivered_units"],
            line["billed_amount"],
            line["expected_revenue"],
            line["amount_difference"],
        )
    return seen


def assert_march_reconciliation(month: Month, result: dict[str, Any]) -> None:
    expected = expected_reconciliation(month)
    assert result["matched"] == 11
    for bucket, wanted in expected.items():
        assert entries(result, bucket) == wanted, bucket


def adjust_flush(month: Month, api: Api, occurred_at: str) -> TestResponse:
    """A count correction of one flush on the site's shelf, dated ``occurred_at``."""
    shelf = ok(month.warehouse.get("/locations", site=month.site, kind="storage"))["items"][0]
    flush = month.items["flush"]
    stock = ok(month.warehouse.get("/stock", item_id=flush["id"], location_id=shelf["id"]))
    return api.post(
        "/adjustments",
        {
            "reason": "count",
            "note": "late count correction",
            "occurred_at": occurred_at,
            "lines": [
                {
                    "item_id": flush["id"],
                    "lot": stock["items"][0]["lot"],
                    "location_id": shelf["id"],
                    "quantity_delta": -1,
                }
            ],
        },
    )


def change_acme_rate(month: Month) -> None:
    """A rate for S9357 from 2026-03-01, counting calendar days: March would change if open."""
    rate = {
        "hcpcs": "S9357",
        "rate": "999.0000",
        "counting": "calendar_day",
        "effective_from": "2026-03-01",
    }
    ok(month.coordinator.patch(f"/payers/{month.acme['id']}", {"rates": [rate]}))


@pytest.fixture
def finance(as_role: Callable[..., Api]) -> Api:
    return as_role(Role.FINANCE)


# --- 1. bad input on the reports ------------------------------------------------------------


@pytest.mark.parametrize("path", [REPORT, DAYS])
@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-03-31", "to": "2026-03-01"}, "to"),
        ({"from": "2025-01-01", "to": "2026-01-02"}, "to"),  # 367 days
        ({"to": "2026-03-31"}, "from"),
        ({"from": "2026-03-01"}, "to"),
        ({"from": "2026-03-01", "to": "2026-02-30"}, "to"),
        ({"from": "yesterday", "to": "2026-03-31"}, "from"),
        ({**MARCH, "format": "pdf"}, "format"),
        ({**MARCH, "site": "S" * 33}, "site"),
    ],
)
def test_a_report_with_bad_query_is_422_naming_the_field(
    finance: Api, path: str, params: dict[str, Any], field: str
) -> None:
    body = problem(finance.get(path, **params), 422)
    assert field in body["errors"], body


@pytest.mark.parametrize("path", [REPORT, DAYS])
def test_a_report_without_from_and_to_names_both(finance: Api, path: str) -> None:
    body = problem(finance.get(path), 422)
    assert {"from", "to"} <= set(body["errors"]), body


@pytest.mark.parametrize("path", [REPORT, DAYS])
def test_a_period_of_366_days_is_allowed_and_367_is_not(finance: Api, path: str) -> None:
    first = date(2027, 1, 1)
    longest = first + timedelta(days=365)  # 366 days, from and to included
    assert (longest - first).days + 1 == 366
    longest_period: dict[str, Any] = {"from": first.isoformat(), "to": longest.isoformat()}
    ok(finance.get(path, **longest_period))
    too_long = {**longest_period, "to": (longest + timedelta(days=1)).isoformat()}
    assert "to" in problem(finance.get(path, **too_long), 422)["errors"]
    # A leap year's 366 days, Feb 29 included, is one period too.
    leap_year: dict[str, Any] = {"from": "2028-01-01", "to": "2028-12-31"}
    ok(finance.get(path, **leap_year))


@pytest.mark.parametrize("group_by", ["site", "PATIENT", "", "day"])
def test_a_report_by_an_unknown_grouping_is_422(finance: Api, group_by: str) -> None:
    body = problem(finance.get(REPORT, **MARCH, group_by=group_by), 422)
    assert "group_by" in body["errors"], body


@pytest.mark.parametrize("cursor", ["abc", "-3", "1.5", "9" * 19, "MTA="])
def test_the_drill_down_refuses_a_cursor_it_did_not_issue(finance: Api, cursor: str) -> None:
    body = problem(finance.get(DAYS, **MARCH, cursor=cursor), 422)
    assert "cursor" in body["errors"], body


@pytest.mark.parametrize("limit", ["0", "501", "ten", "-1"])
def test_the_drill_down_refuses_a_bad_limit(finance: Api, limit: str) -> None:
    body = problem(finance.get(DAYS, **MARCH, limit=limit), 422)
    assert "limit" in body["errors"], body


def test_the_drill_down_refuses_a_format_it_cannot_give(finance: Api) -> None:
    """The drill-down is JSON or CSV: asking for a spreadsheet by name must not answer JSON."""
    response = finance.get(DAYS, **MARCH, format="xlsx")
    body = problem(response, 422)
    assert "format" in body["errors"], body


def test_unknown_query_parameters_are_refused(finance: Api) -> None:
    body = problem(finance.get(REPORT, **MARCH, grouping="payer"), 422)
    assert "grouping" in json.dumps(body)


# --- 2. formats and the drill-down ----------------------------------------------------------


def test_the_report_as_csv_and_xlsx_carries_the_same_figures_as_json(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    api = month.finance
    params = {**MARCH, "site": month.site, "group_by": "patient"}
    report = month.report(**MARCH, group_by="patient")
    assert report["totals"] == TOTALS
    columns = ["patient_id", "external_ref", *FIGURES]

    # CSV by the Accept header, and the same bytes by format=csv.
    by_accept = download(api, REPORT, "text/csv", **params)
    assert by_accept.mimetype == "text/csv"
    assert "attachment" in by_accept.headers["Content-Disposition"]
    assert ".csv" in by_accept.headers["Content-Disposition"]
    by_format = download(api, REPORT, None, **params, format="csv")
    assert by_format.data == by_accept.data
    rows = csv_rows(by_accept.data)
    assert rows[0] == columns
    body, total = rows[1:-1], rows[-1]
    assert len(body) == len(report["rows"]) == 3
    json_rows = {
        str(row["patient_id"]): [str(row[c]) if row[c] is not None else "" for c in columns]
        for row in report["rows"]
    }
    assert {row[0]: row for row in body} == json_rows
    assert total[0] == "TOTAL"
    assert dict(zip(columns, total, strict=True)) == {
        "patient_id": "TOTAL",
        "external_ref": "",
        **{name: str(TOTALS[name]) for name in FIGURES},
    }

    # XLSX by the Accept header, the same bytes by format=xlsx and at any other time.
    with clock(APRIL_2):
        first = download(api, REPORT, XLSX, **params)
    with clock(date(2026, 5, 17), hour=15):
        second = download(api, REPORT, XLSX, **params)
        by_name = download(api, REPORT, None, **params, format="xlsx")
    assert first.mimetype == XLSX
    assert ".xlsx" in first.headers["Content-Disposition"]
    assert first.data[:2] == b"PK"
    assert first.data == second.data == by_name.data

    sheet = openpyxl.load_workbook(io.BytesIO(first.data), data_only=True).active
    assert sheet is not None
    assert sheet.freeze_panes == "A2"
    values = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert values[0] == columns
    assert len(values) == 1 + 3 + 1, values  # header, a row per patient, totals
    for index, column in enumerate(columns, start=1):
        for row in range(2, 5):
            cell = sheet.cell(row=row, column=index)
            if column in MONEY:
                assert cell.number_format == "#,##0.00", (column, cell.number_format)
                assert isinstance(cell.value, int | float), (column, cell.value)
    by_patient = {row[0]: row for row in values[1:4]}
    for row in report["rows"]:
        sheet_row = dict(zip(columns, by_patient[row["patient_id"]], strict=True))
        assert sheet_row["external_ref"] == row["external_ref"]
        assert sheet_row["per_diem_units"] == row["per_diem_units"]
        for name in MONEY:
            assert Decimal(str(sheet_row[name])).quantize(Decimal("0.01")) == Decimal(row[name])
    totals = dict(zip(columns, values[4], strict=True))
    assert str(totals["patient_id"]).lower() == "total"
    assert totals["per_diem_units"] == TOTALS["per_diem_units"]
    for name in MONEY:
        assert Decimal(str(totals[name])).quantize(Decimal("0.01")) == Decimal(TOTALS[name]), name
        cell = sheet.cell(row=5, column=columns.index(name) + 1)
        assert cell.number_format == "#,##0.00", (name, cell.number_format)
    # The sums are formulas over the rows above, their cached values the figures.
    formulas = openpyxl.load_workbook(io.BytesIO(first.data)).active
    assert formulas is not None
    units = formulas.cell(row=5, column=columns.index("per_diem_units") + 1).value
    assert str(units).upper().startswith("=SUM(")


def test_the_report_grouped_other_ways_has_a_total_line_equal_to_the_json(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    expected_keys = {
        "payer": ["payer_id", "payer_name"],
        "hcpcs": ["hcpcs", "modifier"],
        "therapy": ["therapy_id", "patient_id", "external_ref", "hcpcs", "modifier"],
    }
    for group_by, keys in expected_keys.items():
        report = month.report(**MARCH, group_by=group_by)
        rows = csv_rows(
            download(
                month.finance, REPORT, "text/csv", **MARCH, site=month.site, group_by=group_by
            ).data
        )
        assert rows[0] == [*keys, *FIGURES], group_by
        assert len(rows) == 1 + len(report["rows"]) + 1, group_by
        assert rows[-1][0] == "TOTAL"
        assert rows[-1][len(keys) :] == [str(report["totals"][name]) for name in FIGURES]
        assert report["totals"] == TOTALS, group_by


def test_the_drill_down_pages_walk_every_row_once_and_add_up_to_the_report(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    report = month.report(**MARCH)
    seen: list[dict[str, Any]] = []
    cursor = None
    pages = 0
    while True:
        extra: dict[str, Any] = {"cursor": cursor} if cursor else {}
        page = ok(month.finance.get(DAYS, **MARCH, site=month.site, limit=3, **extra))
        pages += 1
        assert len(page["items"]) <= 3
        seen.extend(page["items"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["items"]) == 3
        assert pages < 50, "the cursor never ends"
    assert len(seen) == 15
    assert pages == 5
    keys = [(row["patient_id"], row["therapy_id"], row["day"]) for row in seen]
    assert len(set(keys)) == len(keys), "a row came twice"
    assert [(p, d) for p, _, d in keys] == sorted((p, d) for p, _, d in keys)
    for name in FIGURES:
        if name == "cost_per_unit":
            continue
        total = sum(Decimal(str(row[name])) for row in seen)
        assert total == Decimal(str(report["totals"][name])), name
    assert seen == month.days(**MARCH)  # the same rows as one big page

    data = download(month.finance, DAYS, "text/csv", **MARCH, site=month.site).data
    rows = csv_rows(data)
    assert rows[0][:3] == ["day", "patient_id", "external_ref"]
    assert len(rows) - 1 == len(seen)
    assert download(month.finance, DAYS, None, **MARCH, site=month.site, format="csv").data == data
    by_patient = [
        r for r in rows[1:] if r[rows[0].index("patient_id")] == str(month.patients["C"]["id"])
    ]
    assert len(by_patient) == 10
    only_c = ok(
        month.finance.get(
            DAYS, **MARCH, site=month.site, patient_id=month.patients["C"]["id"], limit=500
        )
    )
    assert len(only_c["items"]) == 10
    assert only_c["next_cursor"] is None


def test_an_empty_period_is_an_empty_report_with_zero_totals(finance: Api) -> None:
    site = unique("EMPTY")
    report = ok(finance.get(REPORT, **MARCH, site=site))
    assert report["rows"] == []
    assert report["totals"]["per_diem_units"] == 0
    assert report["totals"]["total_cost"] == "0.00"
    assert report["totals"]["cost_per_unit"] is None
    rows = csv_rows(download(finance, REPORT, "text/csv", **MARCH, site=site).data)
    assert rows[0] == ["patient_id", "external_ref", *FIGURES]
    assert rows[1][0] == "TOTAL" and len(rows) == 2
    data = download(finance, REPORT, XLSX, **MARCH, site=site).data
    sheet = openpyxl.load_workbook(io.BytesIO(data), data_only=True).active
    assert sheet is not None
    assert sheet.max_row == 2
    page = ok(finance.get(DAYS, **MARCH, site=site))
    assert page == {"items": [], "next_cursor": None}


# --- 3. reconciliation ----------------------------------------------------------------------


def test_claims_sent_as_json_are_reconciled_and_kept(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    claims = march_claims(month)
    body = {"claims": claims, "site": month.site, **MARCH}
    result = ok(month.finance.post("/reconciliations", body), 201)
    assert result["source"] == "json"
    assert result["claim_lines"] == len(claims) == 13
    assert_march_reconciliation(month, result)
    again = ok(month.finance.get(f"/reconciliations/{result['id']}"))
    assert again == result
    # Another site delivered none of this: every claim is billed, not delivered.
    elsewhere = ok(month.finance.post("/reconciliations", {**body, "site": unique("FIN")}), 201)
    assert elsewhere["matched"] == 0
    assert elsewhere["delivered_not_billed"] == []
    assert len(elsewhere["billed_not_delivered"]) == 13
    # The period reconciled, as documented (ReconciliationOut: from, to, site).
    assert (result["to"], result["site"]) == ("2026-03-31", month.site)
    assert result.get("from") == "2026-03-01", sorted(result)


def test_a_claims_csv_upload_is_reconciled_kept_and_read_back_as_csv(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    claims = march_claims(month)
    response = upload(month.finance, claims_csv(claims), site=month.site)
    result = ok(response, 201)
    assert result["source"] == "csv"
    assert result["claim_lines"] == 13
    assert_march_reconciliation(month, result)
    # Each entry names the CSV lines behind it (the header is line 1).
    line_of = {
        (c["external_ref"], c["hcpcs"], c["date_of_service"]): number
        for number, c in enumerate(claims, start=2)
    }
    for bucket in ("matched_lines", "unit_mismatches", "billed_not_delivered"):
        for line in result[bucket]:
            key = (line["external_ref"], line["hcpcs"], line["date_of_service"])
            assert line["claim_lines"] == [line_of[key]], (bucket, key)
    assert all(line["claim_lines"] == [] for line in result["delivered_not_billed"])

    path = f"/reconciliations/{result['id']}"
    assert ok(month.finance.get(path)) == result
    as_csv = download(month.finance, path, "text/csv")
    assert as_csv.mimetype == "text/csv"
    assert download(month.finance, path, None, format="csv").data == as_csv.data
    rows = csv_rows(as_csv.data)
    header = rows[0]
    assert header[0] == "outcome"
    assert {"external_ref", "hcpcs", "date_of_service", "billed_units"} <= set(header)
    lines = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    assert len(lines) == 15
    assert Counter(line["outcome"] for line in lines) == {
        "matched": 11,
        "unit_mismatch": 1,
        "billed_not_delivered": 1,
        "delivered_not_billed": 2,
    }
    outcome_of = {
        (line["external_ref"], line["hcpcs"], line["date_of_service"]): line["outcome"]
        for line in lines
    }
    assert outcome_of[(month.ref("B"), "S9357", "2026-03-17")] == "delivered_not_billed"
    assert outcome_of[(month.ref("A"), "S9357", "2026-03-20")] == "unit_mismatch"
    assert outcome_of[(month.ref("A"), "S9357", "2026-03-15")] == "billed_not_delivered"
    # Without from/to the period is the claims' own span.
    assert result["to"] == "2026-03-30"
    assert result.get("from") == "2026-03-10", sorted(result)


def test_claim_lines_for_the_same_day_add_up(as_role: Callable[..., Api], app: Flask) -> None:
    month = run_march(as_role, app)
    a = month.ref("A")
    claims = [claim(a, "S9357", 10, 1, "400.00"), claim(a, "S9357", 10, 1, "400.00")]
    result = ok(upload(month.finance, claims_csv(claims), site=month.site), 201)
    [twice] = result["unit_mismatches"]
    assert (twice["billed_units"], twice["delivered_units"]) == (2, 1)
    assert twice["billed_amount"] == "800.00"
    assert twice["claim_lines"] == [2, 3]
    assert result["matched"] == 0


def test_an_unknown_reconciliation_is_404(finance: Api) -> None:
    problem(finance.get("/reconciliations/2147483647"), 404)
    problem(finance.get("/reconciliations/2147483647", headers={"Accept": "text/csv"}), 404)


def _a_reconciliation(finance: Api) -> int:
    claims = [claim(unique("MRN"), "S9357", 10, 1, "400.00")]
    return int(ok(upload(finance, claims_csv(claims)), 201)["id"])


def test_a_csv_missing_a_column_is_422_naming_it(finance: Api) -> None:
    before = _a_reconciliation(finance)
    data = b"external_ref,hcpcs,date_of_service,units\r\nMRN-1,S9357,2026-03-10,1\r\n"
    body = problem(upload(finance, data), 422)
    assert "billed_amount" in body["detail"]
    assert body["errors"] == {"file": ["missing column billed_amount"]}
    problem(finance.get(f"/reconciliations/{before + 1}"), 404)


def test_bad_rows_are_one_422_listing_each_by_line_and_nothing_is_stored(finance: Api) -> None:
    before = _a_reconciliation(finance)
    data = (
        f"{CLAIM_HEADER}\r\n"
        "MRN-1,S9357,2026-03-10,1,400.00\r\n"  # line 2: fine
        "MRN-1,S9357,2026-02-30,1,400.00\r\n"  # line 3: no such date
        "MRN-1,S9357,2026-03-11,-1,400.00\r\n"  # line 4: negative units
        "MRN-1,S9357,2026-03-12,1,four hundred\r\n"  # line 5: not an amount
        "MRN-1,S9357,2026-03-13,1,400.00\r\n"  # line 6: fine
    ).encode()
    body = problem(upload(finance, data), 422)
    assert set(body["errors"]) == {
        "line 3.date_of_service",
        "line 4.units",
        "line 5.billed_amount",
    }, body["errors"]
    assert [row["line"] for row in body["rows"]] == [3, 4, 5]
    assert "nothing was reconciled" in body["detail"]
    problem(finance.get(f"/reconciliations/{before + 1}"), 404)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("MRN-1,S9357,10/03/2026,1,400.00", "date_of_service"),
        ("MRN-1,S9357,2026-03-10,1.5,400.00", "units"),
        ("MRN-1,S9357,2026-03-10,,400.00", "units"),
        ("MRN-1,S9357,2026-03-10,1,-400.00", "billed_amount"),
        ("MRN-1,S9357,2026-03-10,1,400.001", "billed_amount"),
        ("MRN-1,S93,2026-03-10,1,400.00", "hcpcs"),
        (",S9357,2026-03-10,1,400.00", "external_ref"),
        ("MRN-1,S9357,2026-03-10,1,400.00,extra", "row"),
    ],
)
def test_each_kind_of_bad_row_is_named_by_its_line(finance: Api, row: str, field: str) -> None:
    data = f"{CLAIM_HEADER}\r\nMRN-1,S9357,2026-03-09,1,400.00\r\n{row}\r\n".encode()
    body = problem(upload(finance, data), 422)
    assert list(body["errors"]) == [f"line 3.{field}"], body["errors"]


def test_bad_json_claims_are_422_and_nothing_is_stored(finance: Api) -> None:
    before = _a_reconciliation(finance)
    bad = {
        "claims": [
            claim("MRN-1", "S9357", 10, 1, "400.00"),
            {**claim("MRN-1", "S9357", 11, 1, "400.00"), "units": -1},
            {**claim("MRN-1", "S9357", 12, 1, "400.00"), "date_of_service": "2026-02-30"},
        ]
    }
    body = problem(finance.post("/reconciliations", bad), 422)
    assert any(key.startswith("claims.1") and key.endswith("units") for key in body["errors"])
    assert any(key.startswith("claims.2") for key in body["errors"])
    problem(finance.get(f"/reconciliations/{before + 1}"), 404)


def test_a_file_that_is_not_utf8_is_422(finance: Api) -> None:
    data = f"{CLAIM_HEADER}\r\n".encode() + "MRN-é,S9357,2026-03-10,1,400.00\r\n".encode("latin-1")
    body = problem(upload(finance, data), 422)
    assert "file" in body["errors"]


def test_a_binary_file_is_422(finance: Api) -> None:
    body = problem(upload(finance, b"PK\x03\x04\x00\x00binary\x00", filename="claims.xlsx"), 422)
    assert "file" in body["errors"]


def test_an_upload_without_the_file_field_is_422(finance: Api) -> None:
    response = finance.client.post(
        "/api/v1/reconciliations",
        data={"claims": (io.BytesIO(claims_csv([])), "claims.csv"), "from": "2026-03-01"},
        headers={"Authorization": f"Bearer {finance.token}"},
        content_type="multipart/form-data",
    )
    assert "file" in problem(response, 422)["errors"]


def test_nothing_to_reconcile_is_422(finance: Api) -> None:
    assert "claims" in problem(finance.post("/reconciliations", {}), 422)["errors"]
    assert "claims" in problem(upload(finance, claims_csv([])), 422)["errors"]


def test_claims_outside_the_given_period_are_422(finance: Api) -> None:
    body = {"claims": [claim("MRN-1", "S9357", 10, 1, "1.00")], "from": "2026-04-01"}
    body["to"] = "2026-04-30"
    errors = problem(finance.post("/reconciliations", body), 422)["errors"]
    assert list(errors) == ["line 0.date_of_service"]


def test_an_upload_takes_its_period_from_the_form(finance: Api) -> None:
    claims = [claim("MRN-1", "S9357", 10, 1, "1.00")]
    result = ok(upload(finance, claims_csv(claims), to="2026-03-31"), 201)
    assert result["to"] == "2026-03-31"
    period = {"from": "2026-03-11", "to": "2026-03-31"}
    outside = problem(upload(finance, claims_csv(claims), **period), 422)
    assert list(outside["errors"]) == ["line 2.date_of_service"]
    bad_date = problem(upload(finance, claims_csv(claims), **{"from": "11/03/2026"}), 422)
    assert "from" in bad_date["errors"]
    backwards = {"from": "2026-03-31", "to": "2026-03-01"}
    assert "to" in problem(upload(finance, claims_csv([]), **backwards), 422)["errors"]


def _multipart(data: bytes, boundary: str) -> bytes:
    return (
        (
            f"--{boundary}\r\n"
            'Content-Disposition: form-data; name="file"; filename="claims.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )


def _post_multipart(api: Api, data: bytes, boundary: str, key: str) -> TestResponse:
    return api.client.post(
        "/api/v1/reconciliations",
        data=_multipart(data, boundary),
        headers={"Authorization": f"Bearer {api.token}", "Idempotency-Key": key},
        content_type=f"multipart/form-data; boundary={boundary}",
    )


def test_a_retried_upload_with_its_idempotency_key_is_reconciled_once(finance: Api) -> None:
    data = claims_csv([claim(unique("MRN"), "S9357", 10, 1, "400.00")])
    key = uuid.uuid4().hex
    first = ok(_post_multipart(finance, data, "boundary-one", key), 201)
    again = ok(_post_multipart(finance, data, "boundary-one", key), 201)
    assert again == first
    problem(finance.get(f"/reconciliations/{first['id'] + 1}"), 404)


def test_a_retried_upload_is_the_same_request_whatever_its_multipart_boundary(
    finance: Api,
) -> None:
    """An HTTP client picks a fresh random boundary for every request it sends (curl, requests,
    browsers), so the retry of a lost upload differs from the original only in the boundary.
    It is the same request: it must replay the stored answer, not refuse the key."""
    data = claims_csv([claim(unique("MRN"), "S9357", 10, 1, "400.00")])
    key = uuid.uuid4().hex
    first = ok(_post_multipart(finance, data, "a1b2c3d4e5", key), 201)
    retry = _post_multipart(finance, data, "f6a7b8c9d0", key)
    assert ok(retry, 201) == first
    problem(finance.get(f"/reconciliations/{first['id'] + 1}"), 404)


def _small_app(
    backend: Backend, database: Database, max_body_bytes: int, max_upload_bytes: int
) -> tuple[Flask, Api]:
    settings = dataclasses.replace(
        backend.settings, max_body_bytes=max_body_bytes, max_upload_bytes=max_upload_bytes
    )
    app = create_app(settings, database=database, TESTING=True)
    return app, Api(app.test_client(), token_for(database, Role.FINANCE))


def _claims_of_size(size: int) -> bytes:
    claims: list[dict[str, Any]] = []
    data = claims_csv(claims)
    while len(data) < size:
        claims.append(claim(unique("MRN"), "S9357", 10, 1, "400.00"))
        data = claims_csv(claims)
    return data


def test_an_upload_over_the_upload_limit_is_413(backend: Backend, database: Database) -> None:
    _, finance = _small_app(backend, database, max_body_bytes=1024, max_upload_bytes=4096)
    # Above the body limit but within the upload limit: taken.
    taken = _claims_of_size(3000)
    assert 1024 < len(taken) < 4096
    result = ok(upload(finance, taken), 201)
    assert len(result["billed_not_delivered"]) == result["claim_lines"] > 0
    # Above the upload limit: refused before anything is read.
    refused = problem(upload(finance, _claims_of_size(5000)), 413)
    assert "4096" in refused["detail"]
    problem(finance.get(f"/reconciliations/{result['id'] + 1}"), 404)


def test_a_json_body_over_the_body_limit_is_413(backend: Backend, database: Database) -> None:
    _, finance = _small_app(backend, database, max_body_bytes=1024, max_upload_bytes=65536)
    claims = [claim(unique("MRN"), "S9357", 10, 1, "400.00") for _ in range(30)]
    body = {"claims": claims}
    assert 1024 < len(json.dumps(body)) < 65536
    # The same app refuses a body that size elsewhere.
    problem(finance.post("/periods/2026-02/close", {"note": "n" * len(json.dumps(body))}), 413)
    response = finance.post("/reconciliations", body)
    assert response.status_code == 413, (response.status_code, response.get_json()["id"])
    refused = problem(response, 413)
    assert "1024" in refused["detail"]


# --- 4. closing a month ---------------------------------------------------------------------


@pytest.mark.parametrize("month", ["2026-13", "2026-00", "march", "2026-3", "26-03", "2026_03"])
def test_closing_a_badly_written_month_is_422(finance: Api, month: str) -> None:
    body = problem(finance.post(f"/periods/{month}/close", {}), 422)
    assert "month" in body["errors"]


def test_closing_a_month_that_is_not_over_is_409(finance: Api) -> None:
    with clock(march(20)):
        problem(finance.post("/periods/2026-03/close", {}), 409)
    with clock(march(31), hour=23):
        problem(finance.post("/periods/2026-03/close", {}), 409)
        problem(finance.post("/periods/2026-04/close", {}), 409)
    problem(finance.post("/periods/2099-01/close", {}), 409)
    assert ok(finance.get("/periods"))["items"] == []


def test_a_closed_month_is_listed_refuses_movements_and_closes_once(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    me = ok(month.finance.get("/me"))
    drill_down = month.days(**MARCH)
    assert len(drill_down) == 15
    with clock(APRIL_2):
        closed = ok(month.finance.post("/periods/2026-03/close", {"note": "March books"}), 201)
        assert closed["month"] == "2026-03"
        assert (closed["first_day"], closed["last_day"]) == ("2026-03-01", "2026-03-31")
        assert closed["closed_by"] == me["id"]
        assert closed["note"] == "March books"
        assert closed["rows"] == 15
        listed = ok(month.finance.get("/periods"))["items"]
        assert listed == [closed]
        again = problem(month.finance.post("/periods/2026-03/close", {}), 409)
        assert again["period"] == "2026-03"
        assert ok(month.admin.get("/periods"))["items"] == [closed]

        refused = problem(adjust_flush(month, month.warehouse, "2026-03-30T12:00:00+00:00"), 409)
        assert refused["type"].endswith("period-closed")
        assert refused["period"] == "2026-03"
        # The last instant of March is March; the first of April is open.
        problem(adjust_flush(month, month.warehouse, "2026-03-31T23:59:59+00:00"), 409)
        ok(adjust_flush(month, month.warehouse, "2026-04-01T00:00:00+00:00"), 201)
        ok(adjust_flush(month, month.warehouse, "2026-04-01T12:00:00+00:00"), 201)
        problem(adjust_flush(month, month.finance, "2026-04-01T12:00:00+00:00"), 403)
    report = month.report(**MARCH)
    assert report["closed_months"] == ["2026-03"]
    assert report["totals"] == TOTALS  # the April correction is not in March


def test_a_closed_month_report_is_frozen_byte_for_byte(
    as_role: Callable[..., Api], app: Flask
) -> None:
    month = run_march(as_role, app)
    params = {**MARCH, "site": month.site}

    def files() -> tuple[bytes, bytes, bytes]:
        return (
            download(month.finance, REPORT, "text/csv", **params).data,
            download(month.finance, REPORT, XLSX, **params).data,
            download(month.finance, DAYS, "text/csv", **params).data,
        )

    straddling = {"from": "2026-03-15", "to": "2026-04-15"}
    with clock(APRIL_2):
        assert month.report(**MARCH)["closed_months"] == []
        before = files()
        straddling_before = month.report(**straddling)
        ok(month.finance.post("/periods/2026-03/close", {}), 201)
        after_close = files()
        change_acme_rate(month)
        after_change = files()
        report = month.report(**MARCH)
        straddling_after = month.report(**straddling)
        c_days = month.days(**MARCH, patient_id=month.patients["C"]["id"])
        other_site = ok(month.finance.get(REPORT, **MARCH, site=unique("FIN")))
    assert before == after_close == after_change
    # A period reaching into the closed month reads that part from the close (15 March would
    # count a calendar day at 999.00 under the new rate if March were open).
    assert straddling_after["closed_months"] == ["2026-03"]
    assert straddling_after["rows"] == straddling_before["rows"]
    assert straddling_after["totals"] == straddling_before["totals"]
    assert straddling_after["totals"]["per_diem_units"] == 12  # A 20th, B 17th, C 21st..30th
    # The closed month's rows keep their site and patient.
    assert len(c_days) == 10
    assert {row["external_ref"] for row in c_days} == {month.ref("C")}
    assert other_site["rows"] == [] and other_site["closed_months"] == ["2026-03"]
    assert report["closed_months"] == ["2026-03"]
    assert report["totals"] == TOTALS
    total = csv_rows(after_change[0])[-1]
    assert total[0] == "TOTAL"
    assert total[-len(FIGURES) :] == [str(TOTALS[name]) for name in FIGURES]


def test_the_same_rate_change_moves_an_open_month(as_role: Callable[..., Api], app: Flask) -> None:
    """The control for the frozen month: while March is open, the new rate changes its report.

    From 1 March S9357 pays 999.00 a calendar day until 420.00 by dose day takes over on the
    16th: patient A counts 1..15 March (15 x 999.00) and the 20th (420.00) = 16 units,
    15405.00; the dose days 10 and 11 March fall under the calendar rule."""
    month = run_march(as_role, app)
    params = {**MARCH, "site": month.site}
    with clock(APRIL_2):
        before = download(month.finance, REPORT, "text/csv", **params).data
        change_acme_rate(month)
        after = download(month.finance, REPORT, "text/csv", **params).data
        report = month.report(**MARCH)
    assert before != after
    assert report["closed_months"] == []
    a = next(row for row in report["rows"] if row["external_ref"] == month.ref("A"))
    assert a["per_diem_units"] == 16
    assert a["expected_revenue"] == "15405.00"
    assert report["totals"] != TOTALS


# --- 5. who may call the finance endpoints -------------------------------------------------

ENDPOINTS: list[tuple[str, str, Any]] = [
    ("get", f"{REPORT}?from=2026-03-01&to=2026-03-31", None),
    ("get", f"{DAYS}?from=2026-03-01&to=2026-03-31", None),
    ("post", "/reconciliations", {"claims": [claim("MRN-1", "S9357", 10, 1, "1.00")]}),
    ("get", "/reconciliations/1", None),
    ("get", "/periods", None),
    ("post", "/periods/2026-03/close", {}),
]


@pytest.mark.parametrize("role", [Role.COORDINATOR, Role.WAREHOUSE, Role.DRIVER])
def test_other_roles_get_403_from_every_finance_endpoint(
    app: Flask, as_role: Callable[..., Api], role: Role
) -> None:
    token = as_role(role).token
    client = app.test_client()
    for method, path, body in ENDPOINTS:
        response = client.open(
            f"/api/v1{path}",
            method=method.upper(),
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        problem(response, 403)
    with clock(APRIL_2):
        response = client.post(
            "/api/v1/periods/2026-03/close", json={}, headers={"Authorization": f"Bearer {token}"}
        )
        problem(response, 403)
    response = upload(Api(client, token), claims_csv([claim("MRN-1", "S9357", 10, 1, "1.00")]))
    problem(response, 403)


@pytest.mark.parametrize("token", [None, "inv_not-a-real-token"])
def test_every_finance_endpoint_is_401_without_a_valid_token(app: Flask, token: str | None) -> None:
    client = app.test_client()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    for method, path, body in ENDPOINTS:
        response = client.open(f"/api/v1{path}", method=method.upper(), json=body, headers=headers)
        problem(response, 401)
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("role", [Role.ADMIN, Role.FINANCE])
def test_admin_and_finance_may_use_every_finance_endpoint(
    as_role: Callable[..., Api], role: Role
) -> None:
    api: Api = as_role(role)
    ok(api.get(REPORT, **MARCH))
    ok(api.get(DAYS, **MARCH))
    created = ok(
        api.post("/reconciliations", {"claims": [claim("MRN-1", "S9357", 10, 1, "1.00")]}), 201
    )
    ok(api.get(f"/reconciliations/{created['id']}"))
    ok(api.get("/periods"))
    with clock(APRIL_2):
        ok(api.post("/periods/2026-02/close", {}), 201)


# --- equipment at home outside its therapy's dates ----------------------------------------------


def test_a_pump_is_a_cost_from_the_day_it_arrives_before_the_therapy_to_the_day_it_comes_back(
    as_role: Callable[..., Api], app: Flask
) -> None:
    """Patient D's pump arrives on 1 April, the day before the therapy starts (2 to 5 April),
    and stays until it is picked up on 8 April: 1 to 7 April, 7 days at 15.50, all the
    therapy's, in any period that holds them, though units only count from 2 to 5 April."""
    month = run_march(as_role, app)
    april = [date(2026, 4, day) for day in range(1, 9)]
    with clock(april[0], hour=8):
        catalog = Catalog(month.warehouse, app)
        shelf = catalog.location(kind="storage", site=month.site)
        serial = unique("PUMP")[:20]
        catalog.receive(month.items["pump"], shelf, 1, unit_cost="2000.0000", serials=[serial])
        d = month.patients["D"] = patient(month, month.blue)
        month.therapies["D"] = therapy(
            month,
            d,
            month.templates["infusion"],
            hcpcs="S9500",
            start_date="2026-04-02",
            end_date="2026-04-05",
            schedule={"dates": ["2026-04-02"]},
        )
        ok(month.coordinator.post("/planning/run", {"horizon_days": 10, "site": month.site}))
        day = days_of(month, month.therapies["D"])["2026-04-02"]
        kit = packed_kit(month, d, [day])
        assert {line["serial"] for line in kit["lines"]} >= {serial}
    deliver(month, kit, april[0])
    with clock(april[7]) as now:
        pickup = {"item_id": month.items["pump"]["id"], "serial": serial, "quantity": 1}
        ok(
            month.admin.post(
                f"/kits/{kit['id']}/returns",
                {"occurred_at": now.isoformat(), "lines": [{**pickup, "condition": "opened"}]},
                headers={"Idempotency-Key": uuid.uuid4().hex},
            ),
            201,
        )

    def d_row(first: date, last: date) -> dict[str, Any] | None:
        report = month.report(
            **{"from": first.isoformat(), "to": last.isoformat()}, group_by="therapy"
        )
        rows = [row for row in report["rows"] if row["therapy_id"] == month.therapies["D"]["id"]]
        return rows[0] if rows else None

    before = d_row(april[0], april[0])  # the therapy has not started: no unit, one pump day
    assert before is not None
    assert (before["per_diem_units"], before["equipment_cost"]) == (0, "15.50")
    after = d_row(april[6], april[7])  # it ended on the 5th; the pump came back on the 8th
    assert after is not None
    assert (after["per_diem_units"], after["equipment_cost"]) == (0, "15.50")
    whole = d_row(april[0], april[7])
    assert whole is not None
    assert (whole["per_diem_units"], whole["equipment_cost"]) == (4, "108.50")  # 7 x 15.50
