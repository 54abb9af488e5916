"""The Blueprint every feature uses: unknown query parameters are refused, not ignored, and a
request body the spec marks required must be there.

A misspelled filter (``?lott=A1``) silently returning everything is a classic inventory bug; here
it answers 422 naming the parameter. A PATCH or POST sent without its JSON body answers 422 too,
as its ``requestBody: required`` says, rather than running as if ``{}`` had been sent.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

import flask_smorest
from flask import request
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser

from inventory.errors import InvalidInput

MAX_ID = 2**31 - 1
# Path ids: anything outside 1..MAX_ID cannot exist, so it is a plain 404.
ID = f"int(min=1, max={MAX_ID})"


class StrictParser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }


def _has_a_body() -> bool:
    # A multipart upload may have been read into form and files already (its idempotency
    # fingerprint is taken from them), which leaves get_data() empty.
    return bool(
        request.content_length or request.get_data(cache=True) or request.form or request.files
    )


def _requires_a_body(parse: Callable[..., Any]) -> Callable[..., Any]:
    @wraps(parse)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not _has_a_body():
            raise InvalidInput(
                "A JSON request body is required (send {} when no field applies).",
                errors={"_schema": ["A JSON request body is required."]},
            )
        return parse(*args, **kwargs)

    return wrapper


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = StrictParser()

    def arguments(
        self, schema: Any, *, location: str = "json", required: bool = True, **kwargs: Any
    ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        decorator = super().arguments(schema, location=location, required=required, **kwargs)
        if location != "json" or not required:
            return decorator  # type: ignore[no-any-return]
        return lambda view: _requires_a_body(decorator(view))
