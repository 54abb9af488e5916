"""Validation messages become a flat map from dotted field paths to messages."""

from __future__ import annotations

from inventory.problems import flatten_messages, validation_errors


def test_a_nested_line_error_becomes_a_dotted_path_with_its_index():
    messages = {"lines": {0: {"quantity": ["Must be at least 1."]}}}
    assert flatten_messages(messages) == {"lines.0.quantity": ["Must be at least 1."]}


def test_several_lines_and_fields_each_keep_their_own_path():
    messages = {
        "reference": ["Missing data for required field."],
        "lines": {
            0: {"item_id": ["Not a valid integer."]},
            3: {"quantity": ["Too big."], "lot": ["Too long.", "Bad characters."]},
        },
    }
    assert flatten_messages(messages) == {
        "reference": ["Missing data for required field."],
        "lines.0.item_id": ["Not a valid integer."],
        "lines.3.quantity": ["Too big."],
        "lines.3.lot": ["Too long.", "Bad characters."],
    }


def test_a_list_of_per_element_dicts_is_indexed_by_position():
    messages = {"serials": [{"value": ["Duplicate."]}, {"value": ["Too long."]}]}
    assert flatten_messages(messages) == {
        "serials.0.value": ["Duplicate."],
        "serials.1.value": ["Too long."],
    }


def test_messages_without_a_field_go_under_schema():
    assert flatten_messages(["Whole body is wrong."]) == {"_schema": ["Whole body is wrong."]}
    assert flatten_messages("plain") == {"_schema": ["plain"]}


def test_a_non_string_message_is_turned_into_text():
    assert flatten_messages({"limit": 5}) == {"limit": ["5"]}


def test_validation_errors_drop_the_webargs_location_level():
    messages = {
        "json": {"lines": {1: {"quantity": ["Not a valid integer."]}}},
        "query": {"limit": ["Must be between 1 and 500."]},
    }
    assert validation_errors(messages) == {
        "lines.1.quantity": ["Not a valid integer."],
        "limit": ["Must be between 1 and 500."],
    }


def test_validation_errors_keep_a_top_level_key_that_is_not_a_location():
    messages = {"Idempotency-Key": ["must be 1 to 255 printable characters"]}
    assert validation_errors(messages) == {
        "Idempotency-Key": ["must be 1 to 255 printable characters"]
    }


def test_validation_errors_accept_a_bare_list():
    assert validation_errors(["Invalid body."]) == {"_schema": ["Invalid body."]}


def test_a_schema_level_error_under_json_stays_under_schema():
    messages = {"json": {"_schema": ["Send either barcode or item_id."]}}
    assert validation_errors(messages) == {"_schema": ["Send either barcode or item_id."]}
