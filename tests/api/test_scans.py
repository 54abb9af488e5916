"""POST /scans/parse: a GS1 barcode in any of its three forms, matched to the catalog."""

from __future__ import annotations

import pytest

from tests.builders import Api, Catalog, ok, problem

FNC1 = "\x1d"
GTIN = "00361234000014"  # valid check digit
UNKNOWN_GTIN = "04006381333931"  # valid, but in no test's catalog


@pytest.fixture
def known_item(catalog: Catalog) -> dict:
    return catalog.item(tracking="lot", gtin=GTIN)


@pytest.mark.parametrize(
    "barcode",
    [
        f"(01){GTIN}(17)270415(10)L24A117(21)SN-9",
        f"01{GTIN}17270415" + f"10L24A117{FNC1}21SN-9",
        f"https://id.gs1.org/01/{GTIN}/10/L24A117/21/SN-9?17=270415",
    ],
    ids=["bracketed", "fnc1-raw", "digital-link"],
)
def test_each_barcode_form_reads_gtin_lot_expiry_serial_and_the_matching_item(
    warehouse: Api, known_item, barcode
):
    scan = ok(warehouse.post("/scans/parse", {"barcode": barcode}))
    assert scan["gtin"] == GTIN
    assert scan["item_id"] == known_item["id"]
    assert scan["sku"] == known_item["sku"]
    assert scan["lot"] == "L24A117"
    assert scan["expiry"] == "2027-04-15"
    assert scan["serial"] == "SN-9"


def test_a_gtin_13_on_the_item_matches_a_gtin_14_in_the_barcode(warehouse: Api, catalog: Catalog):
    item = catalog.item(gtin="4006381333931")
    scan = ok(warehouse.post("/scans/parse", {"barcode": "(01)04006381333931(10)A"}))
    assert scan["item_id"] == item["id"]


def test_a_gtin_no_item_carries_reads_with_a_null_item(warehouse: Api, known_item):
    scan = ok(warehouse.post("/scans/parse", {"barcode": f"(01){UNKNOWN_GTIN}(10)X1"}))
    assert scan == {
        "gtin": UNKNOWN_GTIN,
        "item_id": None,
        "sku": None,
        "lot": "X1",
        "expiry": None,
        "serial": None,
    }


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [("271200", "2027-12-31"), ("280200", "2028-02-29"), ("270200", "2027-02-28")],
)
def test_expiry_day_00_reads_as_the_last_day_of_the_month(warehouse: Api, yymmdd, expected):
    scan = ok(warehouse.post("/scans/parse", {"barcode": f"(01){GTIN}(17){yymmdd}(10)L1"}))
    assert scan["expiry"] == expected


def test_a_bad_check_digit_is_422_on_the_barcode_field(warehouse: Api, known_item):
    body = problem(warehouse.post("/scans/parse", {"barcode": "(01)00361234000015(10)L1"}), 422)
    assert list(body["errors"]) == ["barcode"]
    assert "check digit" in body["errors"]["barcode"][0]


@pytest.mark.parametrize(
    "barcode",
    ["hello world", "(01)abc", "(10)LOT-ONLY", f"(01){GTIN}(17)271399", "]", "https://[x/01/1"],
)
def test_garbage_is_422_on_the_barcode_field(warehouse: Api, barcode):
    body = problem(warehouse.post("/scans/parse", {"barcode": barcode}), 422)
    assert list(body["errors"]) == ["barcode"]


@pytest.mark.parametrize("barcode", ["", "   "])
def test_an_empty_barcode_is_422_on_the_barcode_field(warehouse: Api, barcode):
    body = problem(warehouse.post("/scans/parse", {"barcode": barcode}), 422)
    assert list(body["errors"]) == ["barcode"]


@pytest.mark.parametrize("body", [{}, {"barcode": None}, {"barcode": 361234000014}])
def test_a_missing_or_non_text_barcode_is_422(warehouse: Api, body):
    errors = problem(warehouse.post("/scans/parse", body), 422)["errors"]
    assert list(errors) == ["barcode"]
