"""Supply and equipment inventory for home infusion pharmacies."""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from flask import Flask, Response, g, request

from inventory import logs, metrics, problems, web
from inventory.config import Settings
from inventory.db import Database

__version__ = "0.1.0"

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
access_log = logging.getLogger("inventory.access")


def create_app(
    settings: Settings | None = None, *, database: Database | None = None, **config: Any
) -> Flask:
    """Build the WSGI app: settings, database, API blueprints, error handling."""
    from inventory.api import init_api

    settings = settings or Settings.from_env()
    logs.configure(settings.log_level)
    app = Flask(__name__)
    app.config.update(
        INVENTORY_SETTINGS=settings,
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        JSON_SORT_KEYS=False,
    )
    app.config.update(config)
    app.extensions["inventory.db"] = database or Database(settings)

    @app.before_request
    def assign_request_id() -> None:
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.started = time.perf_counter()

    app.before_request(web.hold_unsized_body_to_the_limits)

    @app.after_request
    def echo_request_id(response: Response) -> Response:
        response.headers["X-Request-ID"] = g.get("request_id", "")
        elapsed = time.perf_counter() - g.get("started", time.perf_counter())
        elapsed_ms = elapsed * 1000
        endpoint = request.url_rule.rule if request.url_rule is not None else "unmatched"
        metrics.REQUESTS.labels(request.method, endpoint, str(response.status_code)).inc()
        metrics.LATENCY.labels(request.method, endpoint).observe(elapsed)
        # Path only: query strings are not logged, ids are not PHI.
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round(elapsed_ms, 2),
            },
        )
        return response

    web.init_app(app)
    init_api(app)
    problems.init_app(app)
    return app
