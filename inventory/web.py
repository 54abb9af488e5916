"""Request plumbing shared by every feature's views: the session and the unit of work."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from copy import deepcopy
from functools import wraps
from typing import Any, TypeVar, cast

from flask import Flask, Response, current_app, g, request
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from werkzeug.exceptions import RequestEntityTooLarge

from inventory import idempotency, metrics
from inventory.auth import current_caller
from inventory.db import Database
from inventory.errors import BadRequest, InvalidInput, PreconditionFailed

F = TypeVar("F", bound=Callable[..., Any])

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
REPLAYED_HEADER = "Idempotent-Replayed"
_STORED_HEADERS = ("Location", "ETag", "Content-Type")


def database() -> Database:
    return cast(Database, current_app.extensions["inventory.db"])


def session() -> Session:
    """The request's session; GET requests read without taking SQLite's write lock."""
    current = g.get("db_session")
    if current is None:
        current = database().session(read_only=request.method in SAFE_METHODS)
        g.db_session = current
    return cast(Session, current)


def close_session(_: BaseException | None = None) -> None:
    current = g.pop("db_session", None)
    if current is not None:
        current.close()


def init_app(app: Flask) -> None:
    app.teardown_appcontext(close_session)


def _add_doc(view: Callable[..., Any], wrapper: Callable[..., Any], **doc: Any) -> None:
    apidoc = deepcopy(getattr(view, "_apidoc", {}))
    manual = apidoc.setdefault("manual_doc", {})
    for key, value in doc.items():
        if isinstance(value, list):
            manual[key] = [*manual.get(key, []), *value]
        else:
            manual[key] = value
    wrapper._apidoc = apidoc  # type: ignore[attr-defined]


def _commit_if_ok(response: Response) -> Response:
    if response.status_code < 400:
        session().commit()
    return response


def unit_of_work(view: F) -> F:
    """Run a write view in one transaction, committed only if it succeeds."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return _commit_if_ok(current_app.make_response(view(*args, **kwargs)))

    _add_doc(view, wrapper)
    return cast(F, wrapper)


IDEMPOTENCY_PARAMETER = {
    "name": "Idempotency-Key",
    "in": "header",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        # Printable characters (str.isprintable) of the ISO 8859-1 a header value is read in.
        "pattern": idempotency.KEY_PATTERN,
    },
    "description": (
        "Repeat a request safely: the same key and body return the first response and change "
        "nothing; the same key with another body is 422. Keys are scoped to the caller and "
        "kept at least 7 days. Only successful responses are stored."
    ),
}


def _replay(stored: idempotency.StoredResponse) -> Response:
    rule = request.url_rule.rule if request.url_rule is not None else "unmatched"
    metrics.REPLAYS.labels(rule).inc()
    response = Response(stored.body, status=stored.status_code, headers=stored.headers)
    response.headers[REPLAYED_HEADER] = "true"
    return response


def _redacted(body: str, fields: tuple[str, ...]) -> str:
    if not fields:
        return body
    document = json.loads(body)
    for name in fields:
        if isinstance(document, dict) and name in document:
            document[name] = None
    return json.dumps(document)


def _request_content() -> bytes:
    """What a request asks for, for its idempotency fingerprint. A multipart upload is taken
    by its fields and files, not its raw bytes: a client picks a new random boundary on every
    send, and a retry of the same upload must still be the same request."""
    if request.mimetype != "multipart/form-data":
        return request.get_data(cache=True)
    # A part's name is None when its Content-Disposition cannot be read: sort it as "".
    content = {
        "form": sorted(
            ((name or "", value) for name, value in request.form.items(multi=True)),
        ),
        "files": sorted(
            (name or "", upload.filename or "", hashlib.sha256(upload.read()).hexdigest())
            for name, upload in request.files.items(multi=True)
        ),
    }
    for upload in request.files.values():
        upload.seek(0)
    return json.dumps(content, sort_keys=True).encode()


def idempotent(
    view: F | None = None, *, required: bool = False, redact: tuple[str, ...] = ()
) -> Any:
    """A POST that honours ``Idempotency-Key``: effect and stored response commit together.

    ``redact`` names response fields that must never be stored (a token's secret): a replay
    answers with them set to null.
    """

    def decorator(inner: F) -> F:
        @wraps(inner)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            raw_key = request.headers.get("Idempotency-Key")
            if raw_key is None:
                if required:
                    raise BadRequest(
                        "Idempotency-Key: this operation requires one, so a retry after a lost "
                        "response cannot apply it twice.",
                        errors={"Idempotency-Key": ["required for this operation"]},
                    )
                return _commit_if_ok(current_app.make_response(inner(*args, **kwargs)))
            key = idempotency.validate_key(raw_key)
            caller = current_caller()
            fingerprint = idempotency.request_fingerprint(
                request.method, request.path, _request_content()
            )
            db = session()
            record = idempotency.find(db, caller.user_id, key)
            if record is None:
                try:
                    with db.begin_nested():
                        record = idempotency.claim(db, caller.user_id, key, fingerprint)
                except IntegrityError:
                    # A concurrent copy committed first: answer with its response.
                    record = idempotency.find(db, caller.user_id, key)
                    if record is None:
                        raise
            if record.status_code is not None:
                stored = idempotency.replay(record, fingerprint)
                if stored is not None:
                    db.rollback()
                    return _replay(stored)
            response = current_app.make_response(inner(*args, **kwargs))
            if response.status_code < 400:
                headers = {
                    name: response.headers[name]
                    for name in _STORED_HEADERS
                    if name in response.headers
                }
                idempotency.complete(
                    record,
                    idempotency.StoredResponse(
                        response.status_code,
                        _redacted(response.get_data(as_text=True), redact),
                        headers,
                    ),
                )
                db.commit()
            return response

        parameter = dict(IDEMPOTENCY_PARAMETER, required=required)
        _add_doc(inner, wrapper, parameters=[parameter])
        return cast(F, wrapper)

    if view is not None:
        return decorator(view)
    return decorator


def check_if_match(current_etag: str) -> None:
    """Honour the request's ``If-Match``: a stale ETag is 412, so no edit is lost."""
    check_etag(request.headers.get("If-Match"), current_etag)


def if_match_header() -> str | None:
    """The request's ``If-Match``, for services that check it once they hold their locks."""
    return request.headers.get("If-Match")


def check_etag(if_match: str | None, current_etag: str) -> None:
    """412 unless ``if_match`` (an ``If-Match`` value) is absent, ``*`` or names the ETag."""
    if if_match is None:
        return
    candidates = {tag.strip() for tag in if_match.split(",")} - {""}
    if not candidates:
        raise InvalidInput.field("If-Match", "give the ETag you read, or *")
    if "*" in candidates or current_etag in candidates:
        return
    raise PreconditionFailed(
        "The resource changed since you read it (If-Match does not match the current ETag); "
        "read it again and reapply your change."
    )


IF_MATCH_PARAMETER = {
    "name": "If-Match",
    "in": "header",
    "required": False,
    # At least one entity tag (or *): a value of only commas and whitespace names none (422).
    "schema": {"type": "string", "pattern": r"[^\s,]"},
    "description": "The ETag you read, or *; a stale one is refused with 412.",
}


ETAG_HEADER = {"ETag": {"schema": {"type": "string"}, "description": "Send back in If-Match"}}


def etag_of(kind: str, ident: int, version: int) -> str:
    return f'"{kind}-{ident}-v{version}"'


def versioned_patch(view: F) -> F:
    """A PATCH in one transaction that documents ``If-Match`` and returns an ``ETag``."""
    wrapped = unit_of_work(view)
    _add_doc(view, wrapped, parameters=[IF_MATCH_PARAMETER])
    return wrapped


def honours_if_match(view: F) -> F:
    """Document ``If-Match`` on a state-changing POST (the view calls check_if_match)."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    _add_doc(view, wrapper, parameters=[IF_MATCH_PARAMETER])
    return cast(F, wrapper)


def hold_unsized_body_to_the_limits() -> None:
    """A body sent without Content-Length (chunked, as gunicorn hands it over) is read here, up
    to one byte past its limit: over the limit it is 413, like a sized one. (Werkzeug would
    stop reading at the limit and hand the view a truncated body as if it were whole.) A body
    within the limit is kept and given its Content-Length, so every later check sees it as a
    sized one. The limit is the upload limit for a multipart body, which only an upload view
    accepts past the ordinary body limit (it checks the length again)."""
    if request.content_length is not None:
        return
    environ = request.environ
    chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    if not (chunked or environ.get("wsgi.input_terminated")):
        return
    settings = current_app.config["INVENTORY_SETTINGS"]
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.mimetype == "multipart/form-data":
        limit = max(limit, settings.max_upload_bytes)
    stream, body = environ["wsgi.input"], bytearray()
    while len(body) <= limit:
        chunk = stream.read(min(65536, limit + 1 - len(body)))
        if not chunk:
            break
        body += chunk
    if len(body) > limit:
        raise RequestEntityTooLarge()
    environ["wsgi.input"] = io.BytesIO(bytes(body))
    environ["CONTENT_LENGTH"] = str(len(body))
    environ.pop("wsgi.input_terminated", None)
    environ.pop("HTTP_TRANSFER_ENCODING", None)
