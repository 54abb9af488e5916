"""Reading GS1 barcodes: element strings, bracketed text and Digital Link URIs."""

from __future__ import annotations

from datetime import date

import pytest

from inventory.catalog.gs1 import FNC1, BarcodeError, Scan, normalize_gtin, parse_barcode

GTIN = "00361234000014"  # valid GS1 check digit (4)
BAD_CHECK_GTIN = "00361234000015"


def test_a_raw_element_string_with_fnc1_separators_yields_gtin_expiry_lot_and_serial():
    raw = f"01{GTIN}17271231" + f"10L24A117{FNC1}21SN-0042"
    assert parse_barcode(raw) == Scan(
        gtin=GTIN, lot="L24A117", expiry=date(2027, 12, 31), serial="SN-0042"
    )


def test_a_variable_length_lot_ends_at_the_fnc1_separator_not_at_the_end_of_the_scan():
    raw = f"01{GTIN}10ABC{FNC1}17260115"
    scan = parse_barcode(raw)
    assert scan.lot == "ABC"
    assert scan.expiry == date(2026, 1, 15)


def test_bracketed_gs1_128_text_yields_gtin_expiry_and_lot():
    scan = parse_barcode(f"(01){GTIN}(17)260315(10)LOT-7")
    assert scan == Scan(gtin=GTIN, lot="LOT-7", expiry=date(2026, 3, 15), serial=None)


def test_a_gs1_digital_link_uri_yields_gtin_lot_serial_and_the_expiry_query_parameter():
    scan = parse_barcode(f"https://id.gs1.org/01/{GTIN}/10/LOT7/21/SER9?17=280310")
    assert scan == Scan(gtin=GTIN, lot="LOT7", expiry=date(2028, 3, 10), serial="SER9")


def test_surrounding_whitespace_from_a_scanner_is_ignored():
    assert parse_barcode(f"  (01){GTIN}(10)X1 \n").lot == "X1"


@pytest.mark.parametrize(
    ("yymmdd", "expected"),
    [
        ("271200", date(2027, 12, 31)),
        ("250400", date(2025, 4, 30)),
        ("250200", date(2025, 2, 28)),
        ("240200", date(2024, 2, 29)),  # leap year
    ],
)
def test_expiry_day_00_means_the_last_day_of_that_month(yymmdd, expected):
    assert parse_barcode(f"(01){GTIN}(17){yymmdd}(10)L1").expiry == expected


def test_a_serial_is_read_from_ai_21():
    scan = parse_barcode(f"(01){GTIN}(21)PUMP-0001")
    assert scan.serial == "PUMP-0001"
    assert scan.lot is None
    assert scan.expiry is None


@pytest.mark.parametrize(
    "barcode",
    [
        f"(01){BAD_CHECK_GTIN}(10)L1",
        f"01{BAD_CHECK_GTIN}10L1",
        f"https://id.gs1.org/01/{BAD_CHECK_GTIN}/10/L1",
        BAD_CHECK_GTIN,
    ],
)
def test_a_gtin_with_a_bad_check_digit_is_refused(barcode):
    with pytest.raises(BarcodeError, match="check digit"):
        parse_barcode(barcode)


def test_a_bare_ean_13_with_a_bad_check_digit_is_refused():
    # biip also reads 13 digits as an element string (AI 400), so the message names no GTIN.
    with pytest.raises(BarcodeError):
        parse_barcode("4006381333932")


@pytest.mark.parametrize(
    "barcode",
    [
        "hello",
        "(01)abc",
        "(01)",
        "(10)LOT-WITHOUT-GTIN",
        f"(01){GTIN}(17)241300",  # month 13
        "https://id.gs1.org/10/LOT-ONLY",
        "]",  # a lone symbology-identifier flag
        f"https://[x/01/{GTIN}",  # not a URL at all
        "http://a/01/",  # a Digital Link with an empty GTIN
    ],
)
def test_garbage_is_refused_with_a_barcode_error(barcode):
    with pytest.raises(BarcodeError):
        parse_barcode(barcode)


@pytest.mark.parametrize("barcode", ["", "   ", "\t\n"])
def test_an_empty_barcode_is_refused(barcode):
    with pytest.raises(BarcodeError, match="empty"):
        parse_barcode(barcode)


@pytest.mark.parametrize(
    ("short", "fourteen"),
    [
        ("4006381333931", "04006381333931"),  # GTIN-13
        ("012345678905", "00012345678905"),  # GTIN-12 (UPC-A)
        ("96385074", "00000096385074"),  # GTIN-8
        (GTIN, GTIN),  # already 14
    ],
)
def test_shorter_gtins_are_normalized_to_fourteen_digits(short, fourteen):
    assert normalize_gtin(short) == fourteen


@pytest.mark.parametrize(
    ("short", "fourteen"),
    [("4006381333931", "04006381333931"), ("96385074", "00000096385074")],
)
def test_a_bare_ean_or_upc_scan_reads_as_its_fourteen_digit_gtin(short, fourteen):
    assert parse_barcode(short) == Scan(gtin=fourteen, lot=None, expiry=None, serial=None)


@pytest.mark.parametrize(
    "value", ["4006381333932", "00361234000015", "abc", "123", "123456789", "4006381333931x", ""]
)
def test_normalize_gtin_refuses_bad_check_digits_and_wrong_lengths(value):
    with pytest.raises(BarcodeError):
        normalize_gtin(value)


def test_an_all_zero_gtin_is_not_a_gtin():
    with pytest.raises(BarcodeError, match="zeros"):
        normalize_gtin("00000000")
