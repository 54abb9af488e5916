"""Every error leaves as RFC 9457 ``application/problem+json``; nothing leaks a traceback."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, current_app, g, json, request
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, OperationalError
from sqlalchemy.orm.exc import StaleDataError
from werkzeug.exceptions import HTTPException

from inventory.errors import (
    PROBLEM_JSON,
    PROBLEM_TYPE_BASE,
    Conflict,
    DomainError,
    InvalidInput,
    ServiceBusy,
)

log = logging.getLogger("inventory.errors")

_BUSY_SQLSTATES = {
    "40001": "a concurrent transaction got in the way",  # serialization_failure
    "40P01": "a concurrent transaction got in the way",  # deadlock_detected
    "55P03": "a lock could not be taken in time",  # lock_not_available
    "57014": "the query ran past its time limit",  # query_canceled (statement_timeout)
}


def problem_response(body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> Response:
    payload = dict(body)
    request_id = g.get("request_id")
    if request_id:
        payload.setdefault("request_id", request_id)
    response = current_app.response_class(
        json.dumps(payload), status=int(payload["status"]), mimetype=PROBLEM_JSON
    )
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def flatten_messages(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """webargs' nested ``{"json": {"lines": {0: {"quantity": [...]}}}}`` → dotted field paths."""
    flat: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            flat.update(flatten_messages(value, name))
    elif isinstance(messages, list | tuple) and all(isinstance(m, str) for m in messages):
        flat[prefix or "_schema"] = [str(m) for m in messages]
    elif isinstance(messages, list | tuple):
        for index, value in enumerate(messages):
            flat.update(flatten_messages(value, f"{prefix}.{index}" if prefix else str(index)))
    else:
        flat[prefix or "_schema"] = [str(messages)]
    return flat


_LOCATIONS = ("json", "query", "headers", "form", "files", "path", "view_args", "querystring")


def validation_errors(messages: Any) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for location, nested in messages.items():
            if location in _LOCATIONS:
                errors.update(flatten_messages(nested))
            else:
                errors.update(flatten_messages({location: nested}))
    else:
        errors.update(flatten_messages(messages))
    return errors


def _summary(errors: Mapping[str, list[str]]) -> str:
    parts = [f"{field}: {' '.join(messages)}" for field, messages in list(errors.items())[:5]]
    more = len(errors) - 5
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def handle_http_exception(error: HTTPException) -> Response:
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    headers = {
        name: value
        for name, value in error.get_headers()
        if name.lower() not in ("content-type", "content-length")
    }
    headers.update(data.get("headers") or {})
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_BASE + (error.name or "error").lower().replace(" ", "-"),
        "title": error.name,
        "status": status,
        "detail": error.description or error.name,
    }
    messages = data.get("messages") or data.get("errors")
    if status == 400 and messages:
        body["detail"] = "The request body is not valid JSON."
    elif status == 422 and messages:
        errors = validation_errors(messages)
        body["errors"] = errors
        body["type"] = PROBLEM_TYPE_BASE + "validation-error"
        body["title"] = "Invalid input"
        body["detail"] = "Invalid input: " + _summary(errors)
    elif status == 404:
        body["detail"] = f"No resource at {request.path}."
    elif status == 405:
        body["detail"] = f"{request.method} is not allowed on {request.path}."
    elif status == 413:
        limit = request.max_content_length
        body["detail"] = f"The request body is larger than the limit of {limit} bytes."
    elif status >= 500:
        body["detail"] = "The service could not complete the request."
    return problem_response(body, headers)


def handle_domain_error(error: DomainError) -> Response:
    return problem_response(error.problem(), error.headers)


def _database_unreachable(error: DBAPIError, sqlstate: str | None) -> bool:
    """The server went away or is not taking connections: a transient outage, not a bug."""
    if error.connection_invalidated:  # SQLAlchemy saw the connection drop
        return True
    if sqlstate is not None:
        # connection_exception (08...), admin_shutdown, crash_shutdown, cannot_connect_now
        return sqlstate.startswith("08") or sqlstate in ("57P01", "57P02", "57P03")
    # psycopg raises OperationalError without a SQLSTATE when it cannot connect at all.
    return isinstance(error, OperationalError) and type(error.orig).__module__.startswith("psycopg")


def _database_error(error: DBAPIError) -> DomainError | None:
    retry_after = int(current_app.config["INVENTORY_SETTINGS"].retry_after_seconds)
    if isinstance(error, OperationalError) and "database is locked" in str(error.orig):
        return ServiceBusy(
            "The database is busy with other writes; retry shortly.", retry_after=retry_after
        )
    sqlstate = getattr(error.orig, "sqlstate", None)
    if _database_unreachable(error, sqlstate):
        return ServiceBusy(
            "The database cannot be reached just now (restarting or failing over); retry shortly.",
            retry_after=retry_after,
        )
    if sqlstate in _BUSY_SQLSTATES:
        return ServiceBusy(
            f"The request could not finish because {_BUSY_SQLSTATES[sqlstate]}; retry shortly.",
            retry_after=retry_after,
        )
    if isinstance(error, DataError):
        # A value the database cannot hold (out of range, malformed): the input's fault.
        return InvalidInput("A value in the request is out of range or malformed.")
    if isinstance(error, IntegrityError):
        return Conflict(
            "The change conflicts with data saved at the same time (a duplicate or a reference "
            "that no longer holds); read the current state and retry."
        )
    return None


def handle_database_error(error: DBAPIError) -> Response:
    mapped = _database_error(error)
    if mapped is None:
        return handle_unexpected(error)
    log.warning(
        "database refused the request: %s",
        type(error.orig).__name__,
        extra={"status": mapped.status},
    )
    return handle_domain_error(mapped)


def handle_stale_data(error: StaleDataError) -> Response:
    return handle_domain_error(
        Conflict("The resource was changed by someone else at the same time; read it again.")
    )


def handle_unexpected(error: BaseException) -> Response:
    if isinstance(error, HTTPException):
        return handle_http_exception(error)
    # The stack goes to the log, never to the body. Exception messages are left out of the
    # log too: a message can quote data (a patient's name), frames and types cannot.
    log.error(
        "unhandled %s",
        type(error).__name__,
        extra={"request_id": g.get("request_id"), "stack": stack_without_messages(error)},
    )
    return problem_response(
        {
            "type": PROBLEM_TYPE_BASE + "internal-error",
            "title": "Internal error",
            "status": 500,
            "detail": "The service hit an unexpected error; quote the request id to support.",
        }
    )


def stack_without_messages(error: BaseException) -> str:
    parts: list[str] = []
    current: BaseException | None = error
    while current is not None and len(parts) < 5:
        frames = traceback.extract_tb(current.__traceback__)
        parts.append("".join(traceback.format_list(frames)) + type(current).__qualname__)
        current = current.__cause__ or current.__context__
    return "\n--- caused by ---\n".join(parts)


def init_app(app: Flask) -> None:
    app.register_error_handler(DomainError, handle_domain_error)
    app.register_error_handler(DBAPIError, handle_database_error)
    app.register_error_handler(StaleDataError, handle_stale_data)
    app.register_error_handler(HTTPException, handle_http_exception)
    app.register_error_handler(Exception, handle_unexpected)
