"""Domain errors and their RFC 9457 problem+json form.

Services raise these; one handler turns them into responses. Messages are written for the
caller and must never carry patient names or addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://inventory.example/problems/"


class DomainError(Exception):
    status = 400
    slug = "bad-request"
    title = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: Mapping[str, list[str]] | None = None,
        extra: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = dict(errors) if errors else None
        self.extra = dict(extra) if extra else {}
        self.headers = dict(headers) if headers else {}

    def problem(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = self.errors
        body.update(self.extra)
        return body


class BadRequest(DomainError):
    """A request missing something the protocol requires (a required header): 400."""


class PayloadTooLarge(DomainError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class NotFound(DomainError):
    status = 404
    slug = "not-found"
    title = "Not found"


class InvalidInput(DomainError):
    """Input that is well-formed but cannot be accepted (422)."""

    status = 422
    slug = "validation-error"
    title = "Invalid input"

    @classmethod
    def field(cls, name: str, message: str) -> InvalidInput:
        return cls(f"{name}: {message}", errors={name: [message]})


class Conflict(DomainError):
    """A business rule or state conflict (409)."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class InsufficientStock(Conflict):
    slug = "insufficient-stock"
    title = "Insufficient stock"


class PreconditionFailed(DomainError):
    status = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class ServiceBusy(DomainError):
    """The database could not take a lock in time; the client should retry."""

    status = 503
    slug = "busy"
    title = "Service busy"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after)})


class Unauthorized(DomainError):
    status = 401
    slug = "unauthorized"
    title = "Unauthorized"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="inventory"'})


class Forbidden(DomainError):
    status = 403
    slug = "forbidden"
    title = "Forbidden"


class PeriodClosed(Conflict):
    slug = "period-closed"
    title = "Period closed"
