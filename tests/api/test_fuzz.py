"""schemathesis fuzzes the app's own spec in process, with every check it has, as real callers.

The run is schemathesis' own engine (what ``st run`` executes) against the WSGI app bound to this
test's rolled-back transaction, after the demo pharmacy is loaded:

* Phases, all of them: examples, coverage (boundary values, missing required headers, methods
  the spec does not list), fuzzing (positive and negative data) and stateful (links inferred
  from the schema and from ``Location`` headers).
* Checks, all of them, as schemathesis enables them by default: not_a_server_error,
  status_code_conformance, content_type_conformance, response_schema_conformance,
  response_headers_conformance, positive_data_acceptance, negative_data_rejection,
  missing_required_header, unsupported_method, allow_header_conformance, ignored_auth,
  use_after_free, ensure_resource_availability and object_level_authorization. Only
  max_response_time stays off, as by default: a CI machine's timings are noise. (The last
  check compares peer identities given as WFC auth; with one caller per run it has nothing to
  compare; test_authorization.py and test_deliveries.py cover who may see what.)
* Callers: the demo driver across the operations whose ``x-roles`` name drivers, then an admin
  across every operation. Tokens come from an auth provider that issues a fresh one whenever a
  response says the current one stopped working (401; for the admin 403 too): the fuzzer may
  legitimately revoke the caller's token, deactivate its user or change its role, and the rest
  of the run must not turn into refusals.

positive_data_acceptance keeps schemathesis' expected statuses (2xx, 3xx, 401, 403, 404, 409,
429, and 5xx, which not_a_server_error reports instead) and adds two:

* 422. The spec states every rule about one field it can (lengths, patterns, enums, ``not``),
  but some schema-valid requests are refused by design, by rules that depend on stored data or
  on several fields at once, which OpenAPI 3.0 cannot express: an id inside a body that does not
  exist (422 with the field path; 404 is kept for the resource in the URL), a lot or serial the
  item does not track, a GTIN whose check digit is wrong, a cursor this service never issued,
  an ``Idempotency-Key`` reused with another body, "exactly one of lot and serial", a route
  without stops, ``to`` before ``from``, a payer modifier that is not two capitals or digits
  (OpenAPI 3.0 has no ``propertyNames``).
* 412. An ``If-Match`` naming an ETag the resource no longer has is a stale precondition: a
  fact about the resource's state, like a 409, not about the request's shape.

Run time stays small for CI, which runs this on both backends. ``FUZZ_EXAMPLES`` raises the
examples per operation of the fuzzing phase (default 15); ``FUZZ_SEED`` picks the seed (default
a fixed one, so CI is reproducible; ``FUZZ_SEED=random`` for a new one each run), and every
failure message starts with the seed it used.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from flask import Flask
from schemathesis.engine import events, from_schema
from schemathesis.transport.wsgi import WSGITransport
from sqlalchemy import select

from inventory.db import Database
from inventory.demo.loader import DEMO_USERS, load
from inventory.users import service as users
from inventory.users.models import Role, User
from tests.builders import token_for

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "15"))
DEFAULT_SEED = 20261129
POSITIVE_DATA_STATUSES = ["2xx", "3xx", "401", "403", "404", "409", "412", "422", "429", "5xx"]
PHASES = ("examples", "coverage", "fuzzing", "stateful")


@dataclass
class Report:
    """What one engine run saw: operations, cases per phase, and every failure and error."""

    operations: set[str] = field(default_factory=set)
    cases: Counter[str] = field(default_factory=Counter)
    # Responses to positive cases of the fuzzing phase, by status.
    positive_fuzzing: Counter[int] = field(default_factory=Counter)
    failures: list[tuple[str, str]] = field(default_factory=list)  # (headline, details)


def config(seed: int) -> schemathesis.Config:
    return schemathesis.Config.from_dict(
        {
            "seed": seed,
            "workers": 1,  # one connection, one transaction: requests run one at a time
            "continue-on-failure": True,
            "generation": {"max-examples": EXAMPLES, "database": "none"},
            "checks": {"positive_data_acceptance": {"expected-statuses": POSITIVE_DATA_STATUSES}},
            "cache": {"enabled": False},
        }
    )


def authenticate(
    schema: schemathesis.BaseSchema, issue: Callable[[], str], retry_on: list[int]
) -> None:
    """Every case carries a bearer token; a response in ``retry_on`` fetches a fresh one and
    the request is sent again once."""

    @schema.auth(refresh_interval=3600, retry_on=retry_on)
    class FreshToken:
        def get(self, case: schemathesis.Case, context: Any) -> str:
            return issue()

        def set(self, case: schemathesis.Case, data: str, context: Any) -> None:
            case.headers = {**(case.headers or {}), "Authorization": f"Bearer {data}"}


def run(schema: schemathesis.BaseSchema, who: str) -> Report:
    report = Report()
    for event in from_schema(schema).execute():
        if isinstance(event, events.FatalError):
            report.failures.append((f"{who}: fatal error", repr(event.exception)))
        elif isinstance(event, events.NonFatalError):
            report.failures.append((f"{who}: error in {event.label}", event.info.format()))
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            report.operations.add(recorder.label)
            report.cases[str(event.phase)] += len(recorder.cases)
            for case_id, node in recorder.cases.items():
                meta = node.value.meta
                interaction = recorder.interactions.get(case_id)
                if (
                    str(event.phase) == "fuzzing"
                    and meta is not None
                    and meta.generation.mode.is_positive
                    and interaction is not None
                    and interaction.response is not None
                ):
                    report.positive_fuzzing[interaction.response.status_code] += 1
            for checks in recorder.checks.values():
                for check in checks:
                    if check.failure_info is None:
                        continue
                    failure = check.failure_info.failure
                    report.failures.append(
                        (
                            f"{who}: {check.name} on {recorder.label}: {failure.title}",
                            f"{failure.message}\n{check.failure_info.code_sample}",
                        )
                    )
    return report


@pytest.fixture
def wsgi_probes_without_socket_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """schemathesis 4.32's ignored_auth probes pass the engine's socket-only options
    (``max_redirects``, ``verify``...) on to werkzeug's test client, which refuses them with a
    TypeError; in process they mean nothing, so they are dropped before the call."""
    send = WSGITransport.send

    def without_socket_options(self: WSGITransport, case: Any, **kwargs: Any) -> Any:
        for name in ("max_redirects", "verify", "cert", "proxies"):
            kwargs.pop(name, None)
        return send(self, case, **kwargs)

    monkeypatch.setattr(WSGITransport, "send", without_socket_options)


@pytest.mark.usefixtures("wsgi_probes_without_socket_options")
def test_every_check_passes_on_every_operation_as_a_driver_and_as_an_admin(
    app: Flask, database: Database
) -> None:
    with database.transaction() as session:
        load(session)
    # A fixed seed keeps CI reproducible; FUZZ_SEED=random explores (its seed is printed).
    wanted = os.environ.get("FUZZ_SEED", str(DEFAULT_SEED))
    seed = random.randrange(2**32) if wanted == "random" else int(wanted)
    driver_name = next(name for name, role in DEMO_USERS if role is Role.DRIVER)

    def driver_token() -> str:
        with database.transaction() as session:
            driver = session.scalars(select(User).where(User.name == driver_name)).one()
            return users.issue_token(session, driver, label="fuzz").secret

    driver_schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config(seed))
    driver_schema = driver_schema.include(
        lambda ctx: "driver" in (ctx.operation.definition.raw.get("x-roles") or [])
    )
    authenticate(driver_schema, driver_token, retry_on=[401])
    as_driver = run(driver_schema, "driver")

    admin_schema = schemathesis.openapi.from_wsgi("/openapi.json", app, config=config(seed))
    authenticate(admin_schema, lambda: token_for(database, Role.ADMIN), retry_on=[401, 403])
    as_admin = run(admin_schema, "admin")

    failures = as_driver.failures + as_admin.failures
    assert not failures, "\n".join(
        [f"FUZZ_SEED={seed}: {len(failures)} failures", *sorted({h for h, _ in failures}), ""]
        + [f"{headline}\n{details[:3000]}\n" for headline, details in failures]
    )
    every = {result.ok().label for result in admin_schema.get_all_operations()}
    driver_operations = {result.ok().label for result in driver_schema.get_all_operations()}
    assert len(every) >= 80 and len(driver_operations) >= 7
    assert every <= as_admin.operations, (seed, sorted(every - as_admin.operations))
    assert driver_operations <= as_driver.operations, (seed, sorted(driver_operations))
    for phase in PHASES:
        assert as_admin.cases[phase] > 0, (seed, as_admin.cases)
    for report in (as_driver, as_admin):
        # The callers stayed signed in: the app answered the fuzzer, not the auth layer.
        total = sum(report.positive_fuzzing.values())
        assert report.positive_fuzzing[401] <= total // 10, (seed, report.positive_fuzzing)
