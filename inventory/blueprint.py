"""The Blueprint every feature uses: unknown query parameters are refused, not ignored.

A misspelled filter (``?lott=A1``) silently returning everything is a classic inventory bug; here
it answers 422 naming the parameter.
"""

from __future__ import annotations

import flask_smorest
from marshmallow import RAISE
from webargs.flaskparser import FlaskParser

MAX_ID = 2**31 - 1
# Path ids: anything outside 1..MAX_ID cannot exist, so it is a plain 404.
ID = f"int(min=1, max={MAX_ID})"


class StrictParser(FlaskParser):
    DEFAULT_UNKNOWN_BY_LOCATION = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": RAISE,
        "querystring": RAISE,
    }


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]
    ARGUMENTS_PARSER = StrictParser()
