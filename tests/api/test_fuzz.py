"""schemathesis fuzzes every operation from the app's own spec, in process, as an admin with a
demo pharmacy loaded: no input may produce a 500, and every response must match the spec.

(The stricter positive/negative data checks belong to the reliability work: business rules
such as "a lot-tracked item needs a lot" reject some schema-valid bodies with 422 by design.)
"""

from __future__ import annotations

import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from inventory.db import Database
from inventory.demo.loader import load
from tests.builders import Api

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def test_no_input_gives_a_server_error_and_every_response_matches_the_spec(
    app: Flask, database: Database, admin: Api
):
    with database.transaction() as session:
        load(session)
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {admin.token}"}
    failures: dict[str, str] = {}
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            fuzz()
        except Exception as error:
            failures[operation.label] = str(error)[:2000]
    assert operations >= 20
    assert failures == {}
