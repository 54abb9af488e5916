"""Idempotency keys without a database: fingerprints, key bounds and replay decisions."""

from __future__ import annotations

import json

import pytest

from inventory.errors import InvalidInput
from inventory.idempotency import (
    MAX_KEY_LENGTH,
    IdempotencyRecord,
    StoredResponse,
    replay,
    request_fingerprint,
    validate_key,
)


def test_the_same_json_with_other_spacing_and_key_order_has_the_same_fingerprint():
    first = request_fingerprint("POST", "/api/v1/receipts", b'{"reference":"PO-1","lines":[1,2]}')
    second = request_fingerprint(
        "POST", "/api/v1/receipts", b'{\n  "lines": [1, 2],\n  "reference": "PO-1"\n}'
    )
    assert first == second
    assert len(first) == 64
    assert all(ch in "0123456789abcdef" for ch in first)


def test_a_different_path_gives_a_different_fingerprint():
    body = b'{"label": "station 2"}'
    assert request_fingerprint("POST", "/api/v1/users/1/tokens", body) != request_fingerprint(
        "POST", "/api/v1/users/2/tokens", body
    )


def test_a_different_method_gives_a_different_fingerprint():
    assert request_fingerprint("POST", "/a", b"{}") != request_fingerprint("PUT", "/a", b"{}")


def test_a_different_body_gives_a_different_fingerprint():
    assert request_fingerprint("POST", "/a", b'{"quantity": 1}') != request_fingerprint(
        "POST", "/a", b'{"quantity": 2}'
    )


def test_list_order_in_the_body_matters():
    assert request_fingerprint("POST", "/a", b"[1, 2]") != request_fingerprint(
        "POST", "/a", b"[2, 1]"
    )


def test_a_body_that_is_not_json_is_compared_byte_for_byte():
    assert request_fingerprint("POST", "/a", b"not json") == request_fingerprint(
        "POST", "/a", b"not json"
    )
    assert request_fingerprint("POST", "/a", b"not json") != request_fingerprint(
        "POST", "/a", b"not  json"
    )
    assert request_fingerprint("POST", "/a", b"\xff\xfe") != request_fingerprint(
        "POST", "/a", b"\xff\xfd"
    )


def test_the_parts_cannot_run_into_each_other():
    assert request_fingerprint("POST", "/ab", b"c") != request_fingerprint("POST", "/a", b"bc")


@pytest.mark.parametrize("key", ["k", "8d3f0b1e-2c4a-4f7e-9a57-2f1c6f2b7c10", "x" * MAX_KEY_LENGTH])
def test_a_printable_key_up_to_the_limit_is_accepted(key):
    assert validate_key(key) == key


@pytest.mark.parametrize("key", ["", "x" * (MAX_KEY_LENGTH + 1), "tab\there", "new\nline", "\x00"])
def test_an_empty_overlong_or_unprintable_key_is_refused(key):
    with pytest.raises(InvalidInput) as raised:
        validate_key(key)
    assert raised.value.status == 422
    assert set(raised.value.errors or {}) == {"Idempotency-Key"}


def _record(**fields: object) -> IdempotencyRecord:
    values: dict[str, object] = {
        "user_id": 1,
        "key": "k-1",
        "request_hash": request_fingerprint("POST", "/api/v1/items", b'{"sku": "A"}'),
        "status_code": 201,
        "response_body": '{"id": 7, "sku": "A"}',
        "response_headers": json.dumps({"ETag": '"item-7-v1"'}),
    }
    values.update(fields)
    return IdempotencyRecord(**values)


def test_replaying_the_same_request_returns_the_stored_response():
    record = _record()
    stored = replay(record, request_fingerprint("POST", "/api/v1/items", b'{ "sku" : "A" }'))
    assert stored == StoredResponse(201, '{"id": 7, "sku": "A"}', {"ETag": '"item-7-v1"'})


def test_replaying_with_a_different_body_is_invalid_input_on_the_key():
    record = _record()
    with pytest.raises(InvalidInput) as raised:
        replay(record, request_fingerprint("POST", "/api/v1/items", b'{"sku": "B"}'))
    assert raised.value.status == 422
    assert "Idempotency-Key" in (raised.value.errors or {})


def test_replaying_on_a_different_path_is_invalid_input_on_the_key():
    record = _record()
    with pytest.raises(InvalidInput):
        replay(record, request_fingerprint("POST", "/api/v1/locations", b'{"sku": "A"}'))


def test_a_claimed_key_without_a_stored_response_has_nothing_to_replay():
    record = _record(status_code=None, response_body=None, response_headers=None)
    assert replay(record, record.request_hash) is None


def test_a_stored_response_without_headers_replays_with_none():
    record = _record(response_headers=None)
    stored = replay(record, record.request_hash)
    assert stored is not None
    assert stored.headers == {}
