"""Shared input fields (money, integers, text), list cursors and the Money column type."""

from __future__ import annotations

import re
from decimal import Decimal

import pytest
from marshmallow import ValidationError
from sqlalchemy.dialects import postgresql, sqlite

from inventory.db import Money
from inventory.errors import InvalidInput
from inventory.schemas import (
    MAX_INT,
    NON_BLANK_TEXT_PATTERN,
    TEXT_PATTERN,
    Code,
    MoneyField,
    StrictBool,
    StrictInt,
    Text,
    decode_cursor,
    encode_cursor,
)

# --- MoneyField ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("12.5", Decimal("12.5")), ("0", Decimal("0")), ("3", Decimal("3")), ("99999999.9999", None)],
)
def test_money_accepts_decimal_strings(raw, expected):
    value = MoneyField().deserialize(raw)
    assert isinstance(value, Decimal)
    assert value == (expected if expected is not None else Decimal(raw))


@pytest.mark.parametrize(
    "raw",
    [
        # floats, booleans and bare numbers: money travels as a string
        12.5,
        0.0,
        3.0,
        3,
        10**12,
        -1,
        True,
        False,
        [],
        {"amount": "1"},
        # not a plain decimal: exponents, signs, separators, non-ASCII digits, NaN
        "1e2",
        "1E+3",
        "1E-5",
        "1E+9",
        "-0",
        "-5",
        "-0.0001",
        "+1",
        "1_000",
        "١٢",
        "NaN",
        "nan",
        "sNaN",
        "Infinity",
        "-Infinity",
        "inf",
        "twelve",
        "",
        " 1",
        "1.",
        ".5",
        "1.2.3",
        "12,50",
        # more than 4 decimal places, or more than 8 whole digits
        "1.00001",
        "0.12345",
        "100000000",
        "99999999.99995",
    ],
)
def test_money_refuses_anything_but_a_plain_decimal_string_that_fits(raw):
    with pytest.raises(ValidationError, match="decimal string"):
        MoneyField().deserialize(raw)


@pytest.mark.parametrize(
    ("value", "text"),
    [(Decimal("12.5"), "12.5000"), (Decimal("0"), "0.0000"), (3, "3.0000"), ("7.1", "7.1000")],
)
def test_money_serializes_with_exactly_four_decimal_places(value, text):
    assert MoneyField().serialize("amount", {"amount": value}) == text


def test_missing_money_serializes_as_null():
    assert MoneyField(allow_none=True).serialize("amount", {"amount": None}) is None


# --- StrictInt ----------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [0, 1, 42, MAX_INT])
def test_strict_int_accepts_json_integers_within_range(raw):
    assert StrictInt().deserialize(raw) == raw


@pytest.mark.parametrize("raw", [True, False, 1.0, 2.5, "3", None, [1]])
def test_strict_int_refuses_booleans_floats_and_strings(raw):
    with pytest.raises(ValidationError):
        StrictInt().deserialize(raw)


@pytest.mark.parametrize("raw", [-1, MAX_INT + 1, 2**63])
def test_strict_int_refuses_values_out_of_range(raw):
    with pytest.raises(ValidationError):
        StrictInt().deserialize(raw)


def test_strict_int_honours_its_own_bounds():
    field = StrictInt(minimum=1, maximum=10)
    assert field.deserialize(10) == 10
    for raw in (0, 11):
        with pytest.raises(ValidationError):
            field.deserialize(raw)


# --- Text ---------------------------------------------------------------------------------


def test_text_keeps_tabs_and_newlines_and_strips_the_ends():
    assert Text(max_length=50).deserialize("  line one\n\tline two  ") == "line one\n\tline two"


@pytest.mark.parametrize("raw", ["nul\x00byte", "bell\x07", "esc\x1b[31m", "del\x7f", "\x1d"])
def test_text_refuses_nul_and_control_characters(raw):
    with pytest.raises(ValidationError, match="Control characters"):
        Text(max_length=50).deserialize(raw)


@pytest.mark.parametrize("raw", ["\ud800", "a\udfffb"])
def test_text_refuses_lone_surrogates(raw):
    with pytest.raises(ValidationError, match="Unicode"):
        Text(max_length=50).deserialize(raw)


def test_text_accepts_real_non_ascii_characters():
    assert Text(max_length=50).deserialize("Filtre 0,2 µm, 😀") == "Filtre 0,2 µm, 😀"


@pytest.mark.parametrize("raw", ["", "   ", "x" * 11])
def test_text_refuses_empty_blank_or_overlong_values(raw):
    with pytest.raises(ValidationError):
        Text(max_length=10).deserialize(raw)


def test_text_bounds_the_string_as_sent_as_the_specs_max_length_says():
    with pytest.raises(ValidationError, match="maximum length 5"):
        Text(max_length=5).deserialize("abc   ")


def test_a_code_is_matched_as_sent_so_surrounding_spaces_are_refused_as_the_pattern_says():
    assert Code(max_length=10).deserialize("AB-1") == "AB-1"
    for raw in (" AB-1", "AB-1 "):
        with pytest.raises(ValidationError, match="letters, digits"):
            Code(max_length=10).deserialize(raw)


@pytest.mark.parametrize(
    "raw", ["x", " a ", "line one\n\tline two", "Filtre 0,2 µm", "\x85a", "\x80"]
)
def test_the_spec_pattern_of_text_accepts_what_text_accepts(raw):
    Text(max_length=50).deserialize(raw)
    assert re.search(NON_BLANK_TEXT_PATTERN, raw)


@pytest.mark.parametrize("raw", ["", "   ", "\t\n", "\u2003", "nul\x00", "esc\x1b", "del\x7f"])
def test_the_spec_pattern_of_text_refuses_what_text_refuses(raw):
    with pytest.raises(ValidationError):
        Text(max_length=50).deserialize(raw)
    assert not re.search(NON_BLANK_TEXT_PATTERN, raw)


def test_text_states_its_pattern_in_the_spec_unless_a_regex_restricts_it_already():
    assert Text(max_length=5).metadata["pattern"] == NON_BLANK_TEXT_PATTERN
    assert Text(max_length=5, min_length=0).metadata["pattern"] == TEXT_PATTERN
    assert "pattern" not in Code(max_length=5).metadata


def test_money_keeps_its_type_and_pattern_beside_a_description():
    metadata = MoneyField(metadata={"description": "Cost per day"}).metadata
    assert metadata["type"] == "string"
    assert metadata["pattern"].startswith("^[0-9]")
    assert metadata["description"] == "Cost per day"


# --- StrictBool -------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [True, False])
def test_strict_bool_accepts_json_booleans(raw):
    assert StrictBool().deserialize(raw) is raw


@pytest.mark.parametrize("raw", [0, 1, "true", "yes", "", None, [True]])
def test_strict_bool_refuses_what_is_not_a_json_boolean(raw):
    with pytest.raises(ValidationError):
        StrictBool().deserialize(raw)


# --- Cursors ------------------------------------------------------------------------------


@pytest.mark.parametrize("last_id", [0, 1, 42, 2**31 - 1, 2**40])
def test_a_cursor_decodes_to_the_id_it_was_made_from(last_id):
    cursor = encode_cursor(last_id)
    assert "=" not in cursor
    assert decode_cursor(cursor) == last_id


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_means_from_the_start(cursor):
    assert decode_cursor(cursor) is None


def _b64(text: str) -> str:
    import base64

    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "garbage!",
        "abc",
        encode_cursor(5)[:-3] + "zzz",
        _b64("not json"),
        _b64('{"before": 5}'),
        _b64('{"after": "5"}'),
        _b64('{"after": true}'),
        _b64('{"after": -1}'),
        _b64('{"after": 1.5}'),
        _b64("[1, 2]"),
        _b64('{"after": 99999999999999999999999}'),
    ],
)
def test_a_tampered_cursor_is_invalid_input_on_the_cursor_field(cursor):
    with pytest.raises(InvalidInput) as raised:
        decode_cursor(cursor)
    assert raised.value.status == 422
    assert set(raised.value.errors or {}) == {"cursor"}


# --- Money column type --------------------------------------------------------------------


@pytest.mark.parametrize("dialect", [sqlite.dialect(), postgresql.dialect()], ids=["sqlite", "pg"])
@pytest.mark.parametrize(
    ("amount", "stored"),
    [
        (Decimal("12.5"), 125_000),
        (Decimal("0"), 0),
        (Decimal("0.0001"), 1),
        (Decimal("99999999.9999"), 999_999_999_999),
    ],
)
def test_money_is_stored_as_ten_thousandths_and_read_back_exactly(dialect, amount, stored):
    column = Money()
    bound = column.process_bind_param(amount, dialect)
    assert bound == stored
    assert isinstance(bound, int)
    back = column.process_result_value(bound, dialect)
    assert back == amount
    assert str(back) == f"{amount:.4f}"


def test_money_rounds_a_fifth_decimal_half_to_even_when_bound():
    column = Money()
    assert column.process_bind_param(Decimal("0.00005"), sqlite.dialect()) == 0
    assert column.process_bind_param(Decimal("0.00015"), sqlite.dialect()) == 2


def test_money_null_stays_null_both_ways():
    column = Money()
    assert column.process_bind_param(None, sqlite.dialect()) is None
    assert column.process_result_value(None, sqlite.dialect()) is None


@pytest.mark.parametrize("amount", [12.5, 0.1, 3, "12.5"])
def test_the_money_column_refuses_anything_but_a_decimal(amount):
    with pytest.raises(TypeError, match="Decimal"):
        Money().process_bind_param(amount, sqlite.dialect())
