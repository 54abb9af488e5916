"""Delivery rules, free of the database: the signature a phone may send, when a confirmation
may say it happened, where returned goods go, and how much of a kit can still come back."""

from __future__ import annotations

import io
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from PIL import Image

from inventory.deliveries.models import Condition, Disposition

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MAX_SIGNATURE_BYTES = 200 * 1024
MIN_SIDE, MAX_SIDE = 20, 4000
MAX_PIXELS = 4_000_000
FUTURE_TOLERANCE = timedelta(minutes=5)


class SignatureRejected(ValueError):
    """Not a PNG a person could have signed on a phone; ``too_large`` means over the limit."""

    def __init__(self, message: str, *, too_large: bool = False) -> None:
        super().__init__(message)
        self.too_large = too_large


@dataclass(frozen=True)
class SignatureImage:
    width: int
    height: int


def check_signature(data: bytes) -> SignatureImage:
    """A real PNG (magic bytes, and it decodes) of at most 200 kB with sane dimensions."""
    if len(data) > MAX_SIGNATURE_BYTES:
        raise SignatureRejected(
            f"The signature is {len(data)} bytes; at most {MAX_SIGNATURE_BYTES} are accepted.",
            too_large=True,
        )
    if not data.startswith(PNG_MAGIC):
        raise SignatureRejected("The signature is not a PNG image.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                if image.format != "PNG":
                    raise SignatureRejected("The signature is not a PNG image.")
                width, height = image.size
                if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
                    raise SignatureRejected(
                        f"The signature is {width}x{height} pixels; each side must be "
                        f"{MIN_SIDE} to {MAX_SIDE}."
                    )
                if width * height > MAX_PIXELS:
                    raise SignatureRejected("The signature has too many pixels.")
                image.load()  # decodes every row: a truncated or corrupt file fails here
    except SignatureRejected:
        raise
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, Warning) as error:
        raise SignatureRejected(f"The signature PNG cannot be decoded: {error}") from None
    return SignatureImage(width, height)


def occurred_at_problem(
    occurred_at: datetime, now: datetime, dispatched_at: datetime
) -> str | None:
    """Why a phone's ``occurred_at`` cannot be right, or None. It is the phone's clock (the
    capture may be offline), so some skew is tolerated into the future, none before dispatch."""
    if occurred_at > now + FUTURE_TOLERANCE:
        return "is more than 5 minutes in the future"
    if occurred_at < dispatched_at:
        return "is before the kit was dispatched"
    return None


def disposition(condition: Condition, is_equipment: bool) -> Disposition:
    """Equipment goes to cleaning; unopened supplies to quarantine for inspection; the rest is
    waste."""
    if is_equipment:
        return Disposition.CLEANING
    if condition is Condition.UNOPENED:
        return Disposition.QUARANTINE
    return Disposition.DISPOSAL


@dataclass(frozen=True)
class CostChunk:
    """Units that reached the patient together, at one unit cost."""

    quantity: int
    unit_cost: Decimal


def take_back(delivered: Sequence[CostChunk], already_back: int, wanted: int) -> list[CostChunk]:
    """The chunks ``wanted`` returned units come from, first delivered first returned, after
    the ``already_back`` units returned before. Raises ValueError if more than remains."""
    remaining = sum(chunk.quantity for chunk in delivered) - already_back
    if wanted > remaining:
        raise ValueError(f"only {max(remaining, 0)} remain at the patient")
    taken: list[CostChunk] = []
    skip = already_back
    for chunk in delivered:
        available = chunk.quantity
        if skip:
            used = min(skip, available)
            skip -= used
            available -= used
        if available <= 0 or wanted <= 0:
            continue
        units = min(available, wanted)
        taken.append(CostChunk(units, chunk.unit_cost))
        wanted -= units
    return taken


def value(chunks: Iterable[CostChunk]) -> Decimal:
    return sum((chunk.unit_cost * chunk.quantity for chunk in chunks), Decimal("0"))
