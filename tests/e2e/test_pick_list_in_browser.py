"""The printable pick list in a real headless chromium: a kit of 20 lines prints on one
letter page, and the kit number's Code 128 barcode on screen decodes to the kit number.
Once packed, the same page is the delivery ticket with a signature line, still one page.

Chromium is Debian's package (``apt-get install chromium``). Without it the tests skip,
except in CI (``CI=true``), where they fail.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pypdf
import pytest
import zxingcpp
from flask import Flask
from PIL import Image

from inventory import create_app
from inventory.config import Settings
from inventory.db import Database
from inventory.users.models import Role
from tests.api.care_builders import address, make_patient, make_payer, make_template
from tests.api.ledger_helpers import all_pages
from tests.api.planning_builders import today
from tests.builders import Api, Catalog, ok, token_for, unique
from tests.conftest import create_scratch_database

pytestmark = [pytest.mark.browser, pytest.mark.slow]

LINES = 20
PATIENT = "Margaret Oyelaran-Whitfield"
ADDRESS = address(line1="4821 Shoal Creek Blvd", line2="Apt 12B, Building C")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT = 60

Body = dict[str, Any]


# --- chromium ----------------------------------------------------------------------------------


def find_chromium() -> str:
    """Chromium's path. Called in the test itself, not a fixture, so that in CI a missing
    browser is a test failure rather than a set-up error; elsewhere the test skips."""
    path = shutil.which("chromium")
    if path is None:
        message = "chromium is not on PATH: install Debian's chromium to run the browser test"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


def run_chromium(chromium: str, work: Path, page: Path, *flags: str) -> None:
    """One headless chromium run on ``page`` with a fresh profile."""
    profile = work / f"profile-{unique('run')}"
    profile.mkdir()
    command = [
        chromium,
        *CHROMIUM_FLAGS,
        f"--user-data-dir={profile}",
        *flags,
        page.as_uri(),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])


def print_to_pdf(chromium: str, work: Path, page: Path) -> pypdf.PdfReader:
    pdf = work / f"{page.stem}.pdf"
    run_chromium(chromium, work, page, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert pdf.is_file() and pdf.stat().st_size > 0, f"chromium wrote no PDF at {pdf}"
    return pypdf.PdfReader(pdf)


def screenshot(chromium: str, work: Path, page: Path) -> Image.Image:
    png = work / f"{page.stem}.png"
    run_chromium(
        chromium,
        work,
        page,
        f"--screenshot={png}",
        "--window-size=1280,1800",
        "--hide-scrollbars",
    )
    assert png.is_file() and png.stat().st_size > 0, f"chromium wrote no screenshot at {png}"
    image = Image.open(png)
    image.load()
    return image


def page_sizes(reader: pypdf.PdfReader) -> list[tuple[float, float]]:
    """(width, height) of each page, in points, for a readable failure."""
    return [(float(p.mediabox.width), float(p.mediabox.height)) for p in reader.pages]


def pdf_text(reader: pypdf.PdfReader) -> str:
    return "\n".join(page.extract_text() or "" for page in reader.pages)


def squashed(text: str) -> str:
    """Text without whitespace and ligatures: PDF extraction breaks and joins words at will,
    and the font may set "fi" as one glyph."""
    return "".join(unicodedata.normalize("NFKC", text).split())


# --- a kit of twenty lines ---------------------------------------------------------------------


@dataclass
class Desk:
    app: Flask
    warehouse: Api
    items: list[Body]
    lots: dict[int, str]
    kit: Body

    def page(self, work: Path) -> tuple[str, Path]:
        """The printable page as the API serves it, saved as a file for chromium."""
        response = self.warehouse.get(
            f"/kits/{self.kit['id']}/pick-list", headers={"Accept": "text/html"}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        assert response.mimetype == "text/html"
        html = response.get_data(as_text=True)
        path = work / f"{unique('page')}.html"
        path.write_text(html, encoding="utf-8")
        return html, path

    def read(self) -> Body:
        return ok(self.warehouse.get(f"/kits/{self.kit['id']}"))


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    """An open kit of 20 lot-tracked lines over four bins, for a patient with a long name
    and a two-line address, on a scratch SQLite database."""
    url, drop = create_scratch_database("sqlite", tmp_path)
    settings = Settings(database_url=url, log_level="WARNING")
    database = Database(settings)
    try:
        app = create_app(settings, database=database, TESTING=True)
        warehouse = Api(app.test_client(), token_for(database, Role.WAREHOUSE))
        coordinator = Api(app.test_client(), token_for(database, Role.COORDINATOR))
        catalog = Catalog(warehouse, app)
        bins = [catalog.location(kind="storage", code=unique(f"R{n}-S")) for n in range(1, 5)]
        catalog.location(kind="staging")
        items: list[Body] = []
        lots: dict[int, str] = {}
        for n in range(LINES):
            item = catalog.item(
                tracking="lot", category="other", name=f"Infusion supply number {n + 1:02d}"
            )
            lots[item["id"]] = unique("LOT")
            catalog.receive(
                item,
                bins[n % len(bins)],
                30,
                lot=lots[item["id"]],
                expiry=today() + timedelta(days=400 + n),
            )
            items.append(item)
        payer = make_payer(coordinator)
        patient = make_patient(coordinator, payer["id"], name=PATIENT, address=ADDRESS)
        template = make_template(
            coordinator, lines=[(item["id"], 1 + n % 3) for n, item in enumerate(items)]
        )
        therapy = ok(
            coordinator.post(
                "/therapies",
                {
                    "patient_id": patient["id"],
                    "template_id": template["id"],
                    "hcpcs": "S9357",
                    "start_date": today().isoformat(),
                    "schedule": {"dates": [(today() + timedelta(days=1)).isoformat()]},
                },
            ),
            201,
        )
        days = all_pages(coordinator, f"/therapies/{therapy['id']}/infusion-days")
        ok(coordinator.post("/planning/run", {"horizon_days": 14}))
        kit = ok(
            warehouse.post(
                "/kits",
                {"patient_id": patient["id"], "infusion_day_ids": [d["id"] for d in days]},
            ),
            201,
        )
        assert len(kit["lines"]) == LINES
        yield Desk(app, warehouse, items, lots, kit)
    finally:
        database.dispose()
        drop()


def pack(desk: Desk) -> Body:
    for line in desk.read()["lines"]:
        response = desk.warehouse.post(
            f"/kits/{desk.kit['id']}/scans",
            {"item_id": line["item_id"], "lot": line["lot"], "quantity": line["quantity"]},
        )
        assert response.status_code == 200, response.get_json()
    return ok(desk.warehouse.post(f"/kits/{desk.kit['id']}/pack"))


def assert_the_label_and_lines_are_on_the_page(desk: Desk, html: str, printed: str) -> None:
    """The HTML carries every line and the delivery label; so does the printed page."""
    assert html.count('class="box"') == LINES
    flat = squashed(printed)
    label = [
        PATIENT,
        ADDRESS["line1"],
        ADDRESS["line2"],
        f"{ADDRESS['city']}, {ADDRESS['state']} {ADDRESS['postal_code']}",
    ]
    for text in [*label, *(item["sku"] for item in desk.items), *desk.lots.values()]:
        assert text in html, text
        assert squashed(text) in flat, f"{text!r} is not on the printed page"


def assert_one_page(reader: pypdf.PdfReader) -> None:
    assert len(reader.pages) == 1, (
        f"the page prints on {len(reader.pages)} pages, sizes {page_sizes(reader)} pt"
    )


def assert_one_code128_reading(image: Image.Image, number: str) -> None:
    """The screenshot holds exactly one barcode: a Code 128 of the kit number."""
    found = zxingcpp.read_barcodes(image)
    assert [(b.format, b.text) for b in found] == [(zxingcpp.BarcodeFormat.Code128, number)], (
        f"screenshot {image.size} px: read {[(str(b.format), b.text) for b in found]}"
    )


# --- tests -------------------------------------------------------------------------------------


def test_a_twenty_line_pick_list_prints_on_one_page_with_a_readable_kit_barcode(
    desk: Desk, tmp_path: Path
):
    chromium = find_chromium()
    number = desk.kit["number"]
    html, page = desk.page(tmp_path)
    assert f"<title>Pick list {number}" in html

    reader = print_to_pdf(chromium, tmp_path, page)

    assert_one_page(reader)
    printed = pdf_text(reader)
    assert number in printed
    assert "Pick list" in printed
    assert "Signature" not in printed
    assert_the_label_and_lines_are_on_the_page(desk, html, printed)

    assert_one_code128_reading(screenshot(chromium, tmp_path, page), number)


def test_a_packed_kits_delivery_ticket_has_a_signature_line_and_still_prints_on_one_page(
    desk: Desk, tmp_path: Path
):
    chromium = find_chromium()
    number = desk.kit["number"]
    assert pack(desk)["status"] == "packed"
    html, page = desk.page(tmp_path)
    assert f"<title>Delivery ticket {number}" in html
    assert "<h1>Delivery ticket</h1>" in html
    assert 'class="signature"' in html

    reader = print_to_pdf(chromium, tmp_path, page)

    assert_one_page(reader)
    printed = pdf_text(reader)
    assert number in printed
    assert "Delivery ticket" in printed
    for caption in ("Received by (print name)", "Relationship", "Signature", "Date and time"):
        assert squashed(caption) in squashed(printed), caption
    assert_the_label_and_lines_are_on_the_page(desk, html, printed)

    assert_one_code128_reading(screenshot(chromium, tmp_path, page), number)
