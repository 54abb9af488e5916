"""Per diem cost reports and their drill-down, reconciliations, and period close."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from datetime import date
from functools import wraps
from typing import Any, TypeVar

from flask import Response, current_app, request, stream_with_context
from flask.views import MethodView

from inventory.auth import FINANCE_USERS, current_caller, requires
from inventory.blueprint import ID, Blueprint
from inventory.errors import InvalidInput
from inventory.finance import costing, exports, rules, service
from inventory.finance.schemas import (
    CloseIn,
    DayArgs,
    DayPage,
    PeriodList,
    PeriodOut,
    ReconciliationArgs,
    ReconciliationIn,
    ReconciliationOut,
    ReportArgs,
    ReportOut,
)
from inventory.schemas import decode_cursor
from inventory.web import idempotent, session

blp = Blueprint(
    "finance",
    __name__,
    url_prefix="/api/v1",
    description="Per diem cost reports, reconciliation against billed claims, period close",
)

F = TypeVar("F", bound=Callable[..., Any])
CSV = "text/csv"
CSV_CONTENT = {"schema": {"type": "string"}}
XLSX_CONTENT = {"schema": {"type": "string", "format": "binary"}}


def _wanted(args: dict[str, Any], choices: tuple[str, ...]) -> str:
    """json, csv or xlsx: ``format`` if given, else the Accept header, else JSON."""
    if args.get("format"):
        return str(args["format"])
    types = {"json": "application/json", "csv": CSV, "xlsx": exports.XLSX}
    offered = [types[choice] for choice in choices]
    best = request.accept_mimetypes.best_match(offered, default="application/json")
    return next(choice for choice in choices if types[choice] == best)


def _download(chunks: Iterator[bytes], mimetype: str, filename: str) -> Response:
    response = Response(stream_with_context(chunks), mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _scope(args: dict[str, Any], patient_id: int | None = None) -> costing.Scope:
    return costing.scope_for(session(), args["from_"], args["to"], args.get("site"), patient_id)


@blp.route("/reports/per-diem")
class PerDiemReport(MethodView):
    @requires(*FINANCE_USERS)
    @blp.arguments(ReportArgs, location="query")
    @blp.response(200, ReportOut)
    @blp.doc(
        responses={
            "200": {
                "description": "JSON; `Accept: text/csv` streams CSV; `Accept: "
                f"{exports.XLSX}` gives a spreadsheet (or `format=csv|xlsx`)",
                "content": {
                    "application/json": {"schema": ReportOut},
                    CSV: CSV_CONTENT,
                    exports.XLSX: XLSX_CONTENT,
                },
            }
        }
    )
    def get(self, args: dict[str, Any]) -> Any:
        """Per diem units, costs, expected revenue and margin per patient, therapy, HCPCS code
        (with its modifier) or payer, with totals. Closed months come from their snapshot. The
        rules behind every figure are in the README's finance section; each figure can be
        followed to its days at `/reports/per-diem/days` and from there to the kits and their
        movements."""
        group_by = args["group_by"]
        report = costing.Report(session(), _scope(args), group_by)
        columns = (*costing.KEY_FIELDS[group_by], *exports.FIGURE_FIELDS)
        rows = (exports.group_view(group_by, key, figures) for key, figures in report.rows())
        name = f"per-diem-{group_by}-{args['from_']}-{args['to']}"
        wanted = _wanted(args, ("json", "csv", "xlsx"))
        if wanted == "csv":

            def with_totals() -> Iterator[dict[str, Any]]:
                # Runs as the response streams: it takes the request's session then, not the
                # one the view had (closed once the view returned).
                streamed = costing.Report(session(), report.scope, group_by)
                for key, figures in streamed.rows():
                    yield exports.group_view(group_by, key, figures)
                yield {columns[0]: "TOTAL", **exports.figures_view(streamed.totals)}

            return _download(exports.csv_lines(columns, with_totals()), CSV, f"{name}.csv")
        if wanted == "xlsx":
            handle = exports.xlsx_file(
                f"Per diem by {group_by}, {args['from_']} to {args['to']}",
                columns,
                rows,
                lambda: exports.figures_view(report.totals),
                args["to"],
            )
            return _download(exports.file_chunks(handle), exports.XLSX, f"{name}.xlsx")
        listed = list(rows)
        return {
            "from_": args["from_"],
            "to": args["to"],
            "site": args.get("site"),
            "group_by": group_by,
            "closed_months": [month for month, _, _ in report.scope.closed],
            "rows": listed,
            "totals": exports.figures_view(report.totals),
        }


@blp.route("/reports/per-diem/days")
class PerDiemDays(MethodView):
    @requires(*FINANCE_USERS)
    @blp.arguments(DayArgs, location="query")
    @blp.response(200, DayPage)
    @blp.doc(
        responses={
            "200": {
                "description": "JSON pages; `Accept: text/csv` (or `format=csv`) streams every row",
                "content": {"application/json": {"schema": DayPage}, CSV: CSV_CONTENT},
            }
        }
    )
    def get(self, args: dict[str, Any]) -> Any:
        """The drill-down: one row per patient, therapy and day, with the kits and the rate
        behind its figures, by patient then date. Rows add up to the report's figures."""
        scope = _scope(args, args.get("patient_id"))
        rows = (exports.day_view(row) for row in costing.day_rows(session(), scope))
        if _wanted(args, ("json", "csv")) == "csv":
            name = f"per-diem-days-{args['from_']}-{args['to']}.csv"

            def streamed() -> Iterator[dict[str, Any]]:  # the session is taken as it streams
                for row in costing.day_rows(session(), scope):
                    yield exports.day_view(row)

            return _download(exports.csv_lines(exports.DAY_FIELDS, streamed()), CSV, name)
        offset = decode_cursor(args.get("cursor")) or 0
        limit = int(args["limit"])
        page = list(itertools.islice(rows, offset, offset + limit + 1))
        more = len(page) > limit
        return {"items": page[:limit], "next_cursor": str(offset + limit) if more else None}


def allows_upload(view: F) -> F:
    """Raise the body limit to ``INVENTORY_MAX_UPLOAD_BYTES`` for a multipart file upload (413
    above); a JSON body keeps the ordinary ``INVENTORY_MAX_BODY_BYTES``."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if request.mimetype == "multipart/form-data":
            settings = current_app.config["INVENTORY_SETTINGS"]
            request.max_content_length = settings.max_upload_bytes
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def _claims_from_upload() -> tuple[list[rules.Claim], dict[str, Any]]:
    upload = request.files.get("file")
    if upload is None:
        raise InvalidInput.field("file", "send the claims CSV as the multipart field 'file'")
    raw = upload.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise InvalidInput.field("file", "is not UTF-8 text") from None
    if "\x00" in text:
        raise InvalidInput.field("file", "is not a CSV file")
    try:
        claims, problems, missing = rules.parse_claims_csv(text)
    except Exception as error:  # csv.Error: a malformed quote, a field too large
        raise InvalidInput.field("file", f"is not a readable CSV file ({error})") from None
    if missing:
        raise InvalidInput(
            f"The CSV lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(rules.CLAIM_COLUMNS)}.",
            errors={"file": [f"missing column {column}" for column in missing]},
        )
    if problems:
        _refuse_rows(problems)
    if len(claims) > rules.MAX_CLAIM_ROWS:
        raise InvalidInput.field("file", f"has more than {rules.MAX_CLAIM_ROWS} claims")
    form = request.form
    period: dict[str, Any] = {}
    for name in ("from", "to"):
        if form.get(name):
            try:
                period[name] = date.fromisoformat(form[name])
            except ValueError:
                raise InvalidInput.field(name, "is not a date (YYYY-MM-DD)") from None
    if form.get("site"):
        period["site"] = form["site"][:32]
    return claims, period


def _refuse_rows(problems: list[rules.RowProblem]) -> None:
    errors = {
        f"line {problem.line}.{name}": messages
        for problem in problems[:200]
        for name, messages in problem.errors.items()
    }
    raise InvalidInput(
        f"{len(problems)} row(s) of the claims are not valid; nothing was reconciled. "
        f"First at line {problems[0].line}.",
        errors=errors,
        extra={"rows": [{"line": p.line, "errors": p.errors} for p in problems[:200]]},
    )


@blp.route("/reconciliations")
class Reconciliations(MethodView):
    @requires(*FINANCE_USERS)
    @allows_upload
    @idempotent
    @blp.arguments(ReconciliationIn)
    @blp.response(201, ReconciliationOut)
    @blp.doc(
        requestBody={
            "content": {
                "multipart/form-data": {
                    "schema": {
                        "type": "object",
                        "required": ["file"],
                        "properties": {
                            "file": {
                                "type": "string",
                                "format": "binary",
                                "description": "CSV with a header: "
                                + ", ".join(rules.CLAIM_COLUMNS),
                            },
                            "from": {"type": "string", "format": "date"},
                            "to": {"type": "string", "format": "date"},
                            "site": {"type": "string", "maxLength": 32},
                        },
                    }
                }
            }
        }
    )
    def post(self, fields: dict[str, Any]) -> Any:
        """Reconcile billed claims (a CSV upload in the multipart field `file`, or JSON
        `claims[]`) against delivered per diem units, by patient (`external_ref`), code and
        date of service. Every row is checked first: any invalid row is a 422 listing the rows
        by line number, and nothing is stored. Claim lines for the same patient, code and date
        add up. The result is stored and can be read back, also as CSV."""
        if request.mimetype == "multipart/form-data":
            claims, period = _claims_from_upload()
            source = "csv"
        else:
            raw_claims = fields.get("claims")
            claims = []
            for index, raw in enumerate(raw_claims or []):
                parsed = rules.parse_claim(index, raw)
                if isinstance(parsed, rules.RowProblem):
                    _refuse_rows([parsed])
                else:
                    claims.append(parsed)
            period = {
                "from": fields.get("from_"),
                "to": fields.get("to"),
                "site": fields.get("site"),
            }
            source = "json"
        reconciliation = service.reconcile(
            session(),
            current_caller(),
            claims,
            source=source,
            period_from=period.get("from"),
            period_to=period.get("to"),
            site=period.get("site"),
        )
        return service.reconciliation_view(reconciliation), 201


@blp.route(f"/reconciliations/<{ID}:reconciliation_id>")
class ReconciliationById(MethodView):
    @requires(*FINANCE_USERS)
    @blp.arguments(ReconciliationArgs, location="query")
    @blp.response(200, ReconciliationOut)
    @blp.doc(
        responses={
            "200": {
                "description": "JSON; `Accept: text/csv` (or `format=csv`): one line per "
                "patient, code and date with its outcome",
                "content": {"application/json": {"schema": ReconciliationOut}, CSV: CSV_CONTENT},
            }
        }
    )
    def get(self, args: dict[str, Any], reconciliation_id: int) -> Any:
        """A stored reconciliation."""
        reconciliation = service.get_reconciliation(session(), reconciliation_id)
        if _wanted(args, ("json", "csv")) == "csv":
            columns = (
                "outcome",
                "external_ref",
                "hcpcs",
                "date_of_service",
                "billed_units",
                "delivered_units",
                "billed_amount",
                "expected_revenue",
                "amount_difference",
                "claim_lines",
            )

            def streamed() -> Iterator[dict[str, Any]]:  # the session is taken as it streams
                yield from service.reconciliation_lines(
                    service.get_reconciliation(session(), reconciliation_id)
                )

            return _download(
                exports.csv_lines(columns, streamed()),
                CSV,
                f"reconciliation-{reconciliation.id}.csv",
            )
        return service.reconciliation_view(reconciliation)


@blp.route("/periods")
class Periods(MethodView):
    @requires(*FINANCE_USERS)
    @blp.response(200, PeriodList)
    def get(self) -> Any:
        """Closed months, oldest first."""
        db = session()
        return {"items": [service.period_view(db, p) for p in service.list_periods(db)]}


@blp.route("/periods/<string:month>/close")
class ClosePeriod(MethodView):
    @requires(*FINANCE_USERS)
    @idempotent
    @blp.arguments(CloseIn, required=False)
    @blp.response(201, PeriodOut)
    @blp.alt_response(409, response="CONFLICT")
    def post(self, fields: dict[str, Any], month: str) -> Any:
        """Close a month (YYYY-MM, in the pharmacy's time zone) for every site, once it is
        over. Its figures are kept as they stand, so its reports never change; afterwards
        any movement dated inside it is refused with 409, and corrections are dated in the
        open period with their reason. Closing a closed month is 409."""
        period = service.close_period(
            session(), current_caller(), month, (fields or {}).get("note")
        )
        return service.period_view(session(), period), 201
