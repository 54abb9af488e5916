"""Report rows as JSON-ready dicts, streamed CSV and constant-memory XLSX.

The same rows feed every format, so a CSV or a spreadsheet never disagrees with the JSON.
Exports of the same figures are byte for byte the same (fixed column order, fixed spreadsheet
timestamps), so a closed period's report can be compared with a copy kept at close.
"""

from __future__ import annotations

import contextlib
import csv
import io
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any

import xlsxwriter

from inventory.finance.costing import KEY_FIELDS, DayRow
from inventory.finance.rules import Figures, from_cents

FIGURE_FIELDS = (
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
MONEY_FIELDS = frozenset(FIGURE_FIELDS) - {"per_diem_units"}
DAY_FIELDS = (
    "day",
    "patient_id",
    "external_ref",
    "therapy_id",
    "hcpcs",
    "modifier",
    "payer_id",
    "payer_name",
    "site",
    "kit_ids",
    "rate",
    *FIGURE_FIELDS,
)
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHUNK = 64 * 1024


def figures_view(figures: Figures) -> dict[str, Any]:
    """Totals as decimal strings with cents, e.g. ``"1234.56"``."""
    return {
        "per_diem_units": figures.per_diem_units,
        "supply_cost": from_cents(figures.supply_cost),
        "return_credit": from_cents(figures.return_credit),
        "waste_cost": from_cents(figures.waste_cost),
        "equipment_cost": from_cents(figures.equipment_cost),
        "total_cost": from_cents(figures.total_cost),
        "cost_per_unit": figures.cost_per_unit,
        "expected_revenue": from_cents(figures.expected_revenue),
        "margin": from_cents(figures.margin),
    }


def group_view(group_by: str, key: tuple[Any, ...], figures: Figures) -> dict[str, Any]:
    row = dict(zip(KEY_FIELDS[group_by], key, strict=True))
    if group_by == "hcpcs":
        row["modifier"] = row["modifier"] or None
    row.update(figures_view(figures))
    return row


def day_view(row: DayRow) -> dict[str, Any]:
    subject = row.subject
    view: dict[str, Any] = {
        "day": row.day,
        "patient_id": subject.patient_id,
        "external_ref": subject.external_ref,
        "therapy_id": subject.therapy_id,
        "hcpcs": subject.hcpcs,
        "modifier": subject.modifier,
        "payer_id": subject.payer_id,
        "payer_name": subject.payer_name,
        "site": subject.site,
        "kit_ids": row.kit_ids,
        "rate": None if row.rate is None else row.rate.quantize(Decimal("0.0001")),
    }
    view.update(figures_view(row.figures))
    return view


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return " ".join(str(part) for part in value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def csv_lines(columns: Sequence[str], rows: Iterable[dict[str, Any]]) -> Iterator[bytes]:
    """CSV a chunk at a time: nothing but the current chunk is held in memory."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(column)) for column in columns])
        if buffer.tell() >= CHUNK:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue().encode()


def xlsx_file(
    title: str,
    columns: Sequence[str],
    rows: Iterable[dict[str, Any]],
    totals: Any,
    as_of: date,
) -> IO[bytes]:
    """An XLSX workbook written row by row in xlsxwriter's constant-memory mode, to a temporary
    file: a header row, number formats, a frozen header and a totals row.

    ``totals`` is called once the rows are written and gives the totals row's values (the
    figures are only complete then). The document's timestamps are ``as_of``, so the same
    figures give the same bytes."""
    target = tempfile.TemporaryFile()  # noqa: SIM115 - handed to the response, which closes it
    workbook = xlsxwriter.Workbook(target, {"constant_memory": True})
    try:
        workbook.set_properties({"title": title, "created": datetime.combine(as_of, time.min)})
        header = workbook.add_format({"bold": True, "bottom": 1})
        money = workbook.add_format({"num_format": "#,##0.00"})
        whole = workbook.add_format({"num_format": "0"})
        day = workbook.add_format({"num_format": "yyyy-mm-dd"})
        bold_money = workbook.add_format({"num_format": "#,##0.00", "bold": True, "top": 1})
        bold_whole = workbook.add_format({"num_format": "0", "bold": True, "top": 1})
        bold = workbook.add_format({"bold": True, "top": 1})
        sheet = workbook.add_worksheet("Per diem")
        sheet.freeze_panes(1, 0)
        for col, name in enumerate(columns):
            sheet.write_string(0, col, name, header)
            sheet.set_column(col, col, max(12, len(name) + 2))
        count = 0
        for count, row in enumerate(rows, start=1):
            for col, name in enumerate(columns):
                value = row.get(name)
                if value is None:
                    continue
                if name in MONEY_FIELDS or name == "rate":
                    sheet.write_number(count, col, float(value), money)
                elif isinstance(value, bool):
                    sheet.write_string(count, col, str(value))
                elif isinstance(value, int):
                    sheet.write_number(count, col, value, whole)
                elif isinstance(value, date):
                    sheet.write_datetime(count, col, datetime.combine(value, time.min), day)
                else:
                    sheet.write_string(count, col, _cell(value))
        last = count + 1
        sheet.write_string(last, 0, "Total", bold)
        summed = totals()
        for col, name in enumerate(columns):
            if col == 0 or name not in summed:
                continue
            value = summed[name]
            letter = xlsxwriter.utility.xl_col_to_name(col)
            if name in ("per_diem_units",):
                sheet.write_formula(last, col, f"=SUM({letter}2:{letter}{last})", bold_whole, value)
            elif name in MONEY_FIELDS and name != "cost_per_unit":
                sheet.write_formula(
                    last, col, f"=SUM({letter}2:{letter}{last})", bold_money, float(value)
                )
            elif value is not None:
                sheet.write_number(last, col, float(value), bold_money)
    except BaseException:
        # The rows failed (say, a query past its time limit): constant-memory mode keeps a
        # temporary file per sheet that only closing the workbook closes.
        with contextlib.suppress(Exception):
            workbook.close()
        target.close()
        raise
    workbook.close()
    target.seek(0)
    return target


def file_chunks(handle: IO[bytes]) -> Iterator[bytes]:
    try:
        while chunk := handle.read(CHUNK):
            yield chunk
    finally:
        handle.close()
