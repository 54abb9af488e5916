"""Delivery rules without a database: the signature PNG a phone may send, when a confirmation
may say it happened, where returned goods go, and which delivered units a return takes back."""

from __future__ import annotations

import io
import random
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import ValidationError
from PIL import Image, ImageDraw

from inventory.deliveries.models import Condition, Disposition
from inventory.deliveries.rules import (
    MAX_SIGNATURE_BYTES,
    PNG_MAGIC,
    CostChunk,
    SignatureImage,
    SignatureRejected,
    check_signature,
    disposition,
    occurred_at_problem,
    take_back,
)
from inventory.deliveries.schemas import LATITUDE_PATTERN, LONGITUDE_PATTERN, Coordinate

# --- check_signature -----------------------------------------------------------------------------


def png(width: int = 240, height: int = 80, mode: str = "L") -> bytes:
    """A signature as a phone draws it: a white pad with a dark stroke."""
    image = Image.new(mode, (width, height), "white")
    ImageDraw.Draw(image).line(
        [(0, height - 1), (width // 3, 0), (2 * width // 3, height - 1), (width - 1, 0)],
        fill="black",
        width=2,
    )
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def noisy_png(width: int, height: int, seed: int = 0) -> bytes:
    """An incompressible PNG (random pixels), so its size grows with its area."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(width: int = 240, height: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "white").save(buffer, format="JPEG")
    return buffer.getvalue()


def rejected(data: bytes) -> SignatureRejected:
    with pytest.raises(SignatureRejected) as caught:
        check_signature(data)
    return caught.value


def test_a_valid_png_gives_its_width_and_height():
    assert check_signature(png(240, 80)) == SignatureImage(width=240, height=80)


@pytest.mark.parametrize("mode", ["1", "L", "LA", "RGB", "RGBA", "P"])
def test_a_png_is_accepted_in_any_colour_mode_a_phone_may_use(mode: str):
    assert check_signature(png(120, 40, mode=mode)) == SignatureImage(120, 40)


@pytest.mark.parametrize(
    "size", [(20, 20), (4000, 20), (20, 4000), (2000, 2000)], ids=lambda s: f"{s[0]}x{s[1]}"
)
def test_the_sides_and_pixel_count_at_their_limits_are_accepted(size: tuple[int, int]):
    assert check_signature(png(*size)) == SignatureImage(*size)


def test_bytes_without_the_png_magic_are_refused():
    error = rejected(b"GIF89a not a signature at all")
    assert "not a PNG" in str(error)
    assert error.too_large is False


def test_the_png_magic_followed_by_garbage_is_refused():
    error = rejected(PNG_MAGIC + b"\x00garbage that is no PNG chunk" * 10)
    assert "cannot be decoded" in str(error)
    assert error.too_large is False


@pytest.mark.parametrize("keep", [0.2, 0.5, 0.9])
def test_a_truncated_png_is_refused(keep: float):
    whole = noisy_png(120, 60)
    assert check_signature(whole) == SignatureImage(120, 60)
    error = rejected(whole[: int(len(whole) * keep)])
    assert error.too_large is False


def test_a_png_whose_image_data_is_corrupt_is_refused():
    whole = bytearray(noisy_png(120, 60))
    start = whole.index(b"IDAT") + 4
    for offset in range(start + 20, start + 60):
        whole[offset] ^= 0xFF
    assert rejected(bytes(whole)).too_large is False


def test_jpeg_bytes_are_refused():
    error = rejected(jpeg())
    assert "not a PNG" in str(error)
    assert error.too_large is False


@pytest.mark.parametrize(
    "size",
    [(10, 10), (19, 80), (240, 19), (5000, 20), (20, 5000), (4001, 40)],
    ids=lambda s: f"{s[0]}x{s[1]}",
)
def test_a_png_with_a_side_out_of_bounds_is_refused(size: tuple[int, int]):
    error = rejected(png(*size))
    assert f"{size[0]}x{size[1]}" in str(error)
    assert error.too_large is False


def test_a_png_with_sane_sides_but_too_many_pixels_is_refused():
    error = rejected(png(2001, 2000))
    assert "too many pixels" in str(error)
    assert error.too_large is False


def test_a_real_png_over_200_kb_is_refused_as_too_large():
    data = noisy_png(300, 300)
    assert len(data) > 200 * 1024
    error = rejected(data)
    assert error.too_large is True
    assert str(len(data)) in str(error)


def test_the_size_limit_is_200_kb_exactly():
    assert MAX_SIGNATURE_BYTES == 200 * 1024
    at_limit = PNG_MAGIC + b"\x00" * (MAX_SIGNATURE_BYTES - len(PNG_MAGIC))
    over = at_limit + b"\x00"
    assert rejected(at_limit).too_large is False  # refused, but not for its size
    assert rejected(over).too_large is True


def test_a_rejection_is_a_value_error():
    assert issubclass(SignatureRejected, ValueError)


# --- occurred_at_problem -------------------------------------------------------------------------

NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)
DISPATCHED = NOW - timedelta(hours=3)


def test_a_confirmation_now_is_fine():
    assert occurred_at_problem(NOW, NOW, DISPATCHED) is None


def test_exactly_five_minutes_ahead_of_the_server_is_tolerated():
    assert occurred_at_problem(NOW + timedelta(minutes=5), NOW, DISPATCHED) is None


@pytest.mark.parametrize(
    "ahead", [timedelta(minutes=5, seconds=1), timedelta(minutes=5, microseconds=1)]
)
def test_more_than_five_minutes_ahead_is_refused(ahead: timedelta):
    problem = occurred_at_problem(NOW + ahead, NOW, DISPATCHED)
    assert problem is not None
    assert "future" in problem


def test_the_tolerance_compares_instants_not_wall_clock_in_another_offset():
    berlin = timezone(timedelta(hours=1))
    five_ahead = (NOW + timedelta(minutes=5)).astimezone(berlin)
    assert occurred_at_problem(five_ahead, NOW, DISPATCHED) is None
    assert occurred_at_problem(five_ahead + timedelta(seconds=1), NOW, DISPATCHED) is not None


def test_before_the_dispatch_is_refused():
    problem = occurred_at_problem(DISPATCHED - timedelta(seconds=1), NOW, DISPATCHED)
    assert problem is not None
    assert "dispatched" in problem


def test_the_moment_of_dispatch_itself_is_fine():
    assert occurred_at_problem(DISPATCHED, NOW, DISPATCHED) is None


def test_a_phone_clock_behind_the_server_is_fine_as_long_as_it_is_after_the_dispatch():
    assert occurred_at_problem(NOW - timedelta(hours=2), NOW, DISPATCHED) is None


# --- disposition ---------------------------------------------------------------------------------

# Written out from the contract: unopened → quarantine; opened, damaged, expired → waste;
# returned equipment → cleaning, whatever its condition.
EXPECTED_DISPOSITION = {
    ("unopened", False): "quarantine",
    ("opened", False): "disposal",
    ("damaged", False): "disposal",
    ("expired", False): "disposal",
    ("unopened", True): "cleaning",
    ("opened", True): "cleaning",
    ("damaged", True): "cleaning",
    ("expired", True): "cleaning",
}


def test_the_table_covers_every_condition():
    assert {condition for condition, _ in EXPECTED_DISPOSITION} == {c.value for c in Condition}


@pytest.mark.parametrize(
    ("condition", "is_equipment"),
    sorted(EXPECTED_DISPOSITION),
    ids=lambda value: str(value),
)
def test_where_returned_goods_go(condition: str, is_equipment: bool):
    where = disposition(Condition(condition), is_equipment)
    assert where is Disposition(EXPECTED_DISPOSITION[(condition, is_equipment)])


# --- take_back -----------------------------------------------------------------------------------

CHEAP, DEAR, DEAREST = Decimal("1.0000"), Decimal("2.5000"), Decimal("4.0000")
DELIVERED = [CostChunk(3, CHEAP), CostChunk(4, DEAR), CostChunk(2, DEAREST)]


def test_the_first_units_delivered_are_the_first_returned():
    assert take_back(DELIVERED, 0, 2) == [CostChunk(2, CHEAP)]
    assert take_back(DELIVERED, 0, 5) == [CostChunk(3, CHEAP), CostChunk(2, DEAR)]


def test_units_already_returned_are_skipped():
    assert take_back(DELIVERED, 2, 3) == [CostChunk(1, CHEAP), CostChunk(2, DEAR)]
    assert take_back(DELIVERED, 3, 4) == [CostChunk(4, DEAR)]
    assert take_back(DELIVERED, 5, 4) == [CostChunk(2, DEAR), CostChunk(2, DEAREST)]


def test_everything_that_remains_can_come_back():
    assert take_back(DELIVERED, 0, 9) == DELIVERED
    assert take_back(DELIVERED, 8, 1) == [CostChunk(1, DEAREST)]


def test_nothing_wanted_takes_nothing():
    assert take_back(DELIVERED, 4, 0) == []


@pytest.mark.parametrize(
    ("already_back", "wanted", "remain"),
    [(0, 10, 9), (5, 5, 4), (9, 1, 0), (12, 1, 0)],
)
def test_more_than_remains_at_the_patient_is_refused(already_back: int, wanted: int, remain: int):
    with pytest.raises(ValueError, match=f"only {remain} remain"):
        take_back(DELIVERED, already_back, wanted)


def test_nothing_delivered_means_nothing_comes_back():
    with pytest.raises(ValueError, match="only 0 remain"):
        take_back([], 0, 1)


@st.composite
def returns(draw: st.DrawFn) -> tuple[list[CostChunk], int, int]:
    """Delivered chunks (each with its own unit cost, so a taken chunk names its source), the
    units already back, and a wanted quantity that fits in what remains."""
    quantities = draw(st.lists(st.integers(min_value=1, max_value=20), min_size=1, max_size=8))
    delivered = [CostChunk(q, Decimal(index + 1)) for index, q in enumerate(quantities)]
    total = sum(quantities)
    already_back = draw(st.integers(min_value=0, max_value=total))
    wanted = draw(st.integers(min_value=0, max_value=total - already_back))
    return delivered, already_back, wanted


@settings(max_examples=300, deadline=None)
@given(case=returns())
def test_taken_chunks_sum_to_what_is_wanted_and_never_exceed_what_a_chunk_has_left(
    case: tuple[list[CostChunk], int, int],
):
    delivered, already_back, wanted = case
    taken = take_back(delivered, already_back, wanted)

    assert sum(chunk.quantity for chunk in taken) == wanted
    assert all(chunk.quantity > 0 for chunk in taken)
    # What each delivered chunk still has after the earlier returns, first delivered first back.
    left: dict[Decimal, int] = {}
    skip = already_back
    for chunk in delivered:
        used = min(skip, chunk.quantity)
        skip -= used
        left[chunk.unit_cost] = chunk.quantity - used
    sources = [chunk.unit_cost for chunk in taken]
    assert len(set(sources)) == len(sources), "a chunk was taken from twice"
    assert sources == sorted(sources), "not first delivered first returned"
    for chunk in taken:
        assert chunk.quantity <= left[chunk.unit_cost], (chunk, left)
    # Unit by unit: the returned units are exactly the next ``wanted`` after those back.
    units = [chunk.unit_cost for chunk in delivered for _ in range(chunk.quantity)]
    assert [chunk.unit_cost for chunk in taken for _ in range(chunk.quantity)] == units[
        already_back : already_back + wanted
    ]


@settings(max_examples=200, deadline=None)
@given(
    quantities=st.lists(st.integers(min_value=1, max_value=20), max_size=8),
    already_back=st.integers(min_value=0, max_value=200),
    extra=st.integers(min_value=1, max_value=50),
)
def test_asking_for_more_than_remains_always_raises(
    quantities: list[int], already_back: int, extra: int
):
    delivered = [CostChunk(q, CHEAP) for q in quantities]
    remaining = max(sum(quantities) - already_back, 0)
    with pytest.raises(ValueError, match=f"only {remaining} remain"):
        take_back(delivered, already_back, remaining + extra)


@settings(max_examples=200, deadline=None)
@given(case=returns(), split=st.integers(min_value=0, max_value=1000))
def test_two_returns_in_a_row_take_the_same_units_as_one(
    case: tuple[list[CostChunk], int, int], split: int
):
    delivered, already_back, wanted = case
    first = split % (wanted + 1)
    together = take_back(delivered, already_back, wanted)
    one = take_back(delivered, already_back, first)
    two = take_back(delivered, already_back + first, wanted - first)

    def units(chunks: list[CostChunk]) -> list[Decimal]:
        return [chunk.unit_cost for chunk in chunks for _ in range(chunk.quantity)]

    assert units(one) + units(two) == units(together)


# --- coordinates --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(30.267153, "30.267153"), (-90, "-90"), ("30.267153", "30.267153"), ("-90.000", "-90.000")],
)
def test_a_latitude_is_a_json_number_or_a_decimal_string_in_range(raw, expected):
    assert Coordinate(limit=90, pattern=LATITUDE_PATTERN, example="0").deserialize(raw) == Decimal(
        expected
    )


@pytest.mark.parametrize(
    "raw", [90.5, "90.1", -181, True, None, "1e1", " 30.2", "+5", "\u0661\u0662", float("nan")]
)
def test_anything_else_is_not_a_latitude(raw):
    with pytest.raises(ValidationError):
        Coordinate(limit=90, pattern=LATITUDE_PATTERN, example="0").deserialize(raw)


def test_a_longitude_goes_to_180():
    field = Coordinate(limit=180, pattern=LONGITUDE_PATTERN, example="0")
    assert field.deserialize("-180") == Decimal(-180)
    with pytest.raises(ValidationError):
        field.deserialize("180.5")
