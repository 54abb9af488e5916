"""Reading GS1 barcodes (through biip): GTIN, lot, expiry and serial from one scan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import biip
from biip import ParseError
from biip.gs1_messages import GS1Message
from biip.gtin import Gtin

FNC1 = "\x1d"


class BarcodeError(ValueError):
    """The barcode cannot be read, or one of its parts fails its own rules."""


@dataclass(frozen=True)
class Scan:
    gtin: str | None
    lot: str | None
    expiry: date | None
    serial: str | None


def _gtin_14(gtin: Gtin) -> str:
    """14 digits; an all-zero number (what an empty Digital Link ``/01/`` reads as) is no GTIN."""
    digits = str(gtin.as_gtin_14())
    if not digits.strip("0"):
        raise BarcodeError("A GTIN cannot be all zeros.")
    return digits


def normalize_gtin(value: str) -> str:
    """A GTIN-8/12/13/14 with a valid check digit, as 14 digits; else :class:`BarcodeError`."""
    digits = value.strip()
    if not digits.isdigit() or len(digits) not in (8, 12, 13, 14):
        raise BarcodeError("A GTIN has 8, 12, 13 or 14 digits.")
    try:
        return _gtin_14(Gtin.parse(digits))
    except ParseError as error:
        raise BarcodeError(str(error)) from None


def parse_barcode(raw: str) -> Scan:
    """Parse a raw element string (FNC1 = ASCII 29), ``(01)…(10)…`` text or a Digital Link URI."""
    text = raw.strip()
    result = None
    if not text:
        raise BarcodeError("The barcode is empty.")
    try:
        if text.startswith("("):
            element_strings = GS1Message.parse_hri(text).element_strings
        else:
            result = biip.parse(text)
            container = result.gs1_message or result.gs1_digital_link_uri
            if container is not None:
                element_strings = container.element_strings
            elif result.gtin is not None:
                return Scan(gtin=_gtin_14(result.gtin), lot=None, expiry=None, serial=None)
            else:
                reason = result.gtin_error or result.gs1_message_error or "unrecognized format"
                raise BarcodeError(f"Not a GS1 barcode: {reason}")
    except BarcodeError:
        raise
    except (ParseError, ValueError, IndexError) as error:
        # biip lets some malformed input escape as IndexError (a lone "]") or ValueError
        # (urlsplit on "https://[x/01/..."); all of them mean the barcode is unreadable.
        raise BarcodeError(str(error) or "unreadable barcode") from None

    gtin = lot = serial = None
    expiry = None
    for element in element_strings:
        ai = element.ai.ai
        if ai in ("01", "02"):
            if element.gtin is None:
                raise BarcodeError(element.gtin_error or "Invalid GTIN.")
            gtin = _gtin_14(element.gtin)
        elif ai == "10":
            lot = element.value
        elif ai == "17":
            if element.date is None:
                raise BarcodeError("The expiry date (17) is not a valid YYMMDD date.")
            expiry = element.date
        elif ai == "21":
            serial = element.value
    if gtin is None and result is not None and result.gtin is not None:
        # A bare EAN/UPC can also read as an element string (e.g. AI 95); the GTIN wins.
        return Scan(gtin=_gtin_14(result.gtin), lot=None, expiry=None, serial=None)
    if gtin is None:
        raise BarcodeError("The barcode carries no GTIN (01).")
    return Scan(gtin=gtin, lot=lot, expiry=expiry, serial=serial)
