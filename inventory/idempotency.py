"""Idempotency keys: a replayed POST returns the first response and changes nothing.

The key is claimed (inserted) at the start of the request's transaction and the response is
stored in that same transaction, so the effect and its stored response commit together. A
concurrent copy of the request blocks on the key's unique index until the first commits, then
replays its response.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ForeignKey, Integer, String, Text, UniqueConstraint, delete, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from inventory.db import Base, UTCDateTime, utcnow
from inventory.errors import InvalidInput

MAX_KEY_LENGTH = 255
# The characters validate_key accepts: str.isprintable() over ISO 8859-1, the charset a header
# value is read in.
KEY_PATTERN = r"^[\x20-\x7e\xa1-\xac\xae-\xff]+$"


class IdempotencyRecord(Base):
    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("user_id", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    key: Mapped[str] = mapped_column(String(MAX_KEY_LENGTH))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    response_body: Mapped[str | None] = mapped_column(Text)
    response_headers: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)


@dataclass(frozen=True)
class StoredResponse:
    status_code: int
    body: str
    headers: dict[str, str]


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    """Hash of what the request asks for; JSON bodies are compared by content, not spacing."""
    try:
        canonical = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    except (ValueError, UnicodeDecodeError):
        canonical = body
    digest = hashlib.sha256()
    for part in (method.encode(), b"\0", path.encode(), b"\0", canonical):
        digest.update(part)
    return digest.hexdigest()


def validate_key(key: str) -> str:
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise InvalidInput.field(
            "Idempotency-Key", f"must be 1 to {MAX_KEY_LENGTH} printable characters"
        )
    return key


def find(session: Session, user_id: int, key: str) -> IdempotencyRecord | None:
    return session.scalars(
        select(IdempotencyRecord).where(
            IdempotencyRecord.user_id == user_id, IdempotencyRecord.key == key
        )
    ).one_or_none()


def replay(record: IdempotencyRecord, fingerprint: str) -> StoredResponse | None:
    """The stored response for a repeat of the same request; 422 for a different request."""
    if record.request_hash != fingerprint:
        raise InvalidInput.field(
            "Idempotency-Key", "was already used for a different request body or path"
        )
    if record.status_code is None or record.response_body is None:
        return None
    return StoredResponse(
        record.status_code, record.response_body, json.loads(record.response_headers or "{}")
    )


def claim(session: Session, user_id: int, key: str, fingerprint: str) -> IdempotencyRecord:
    record = IdempotencyRecord(user_id=user_id, key=key, request_hash=fingerprint)
    session.add(record)
    session.flush()
    return record


def complete(record: IdempotencyRecord, response: StoredResponse) -> None:
    record.status_code = response.status_code
    record.response_body = response.body
    record.response_headers = json.dumps(response.headers, sort_keys=True)


def purge(session: Session, older_than_days: int) -> int:
    """Forget keys older than the retention period (never less than 7 days)."""
    if older_than_days < 7:
        raise ValueError("idempotency keys are kept at least 7 days")
    cutoff = utcnow() - timedelta(days=older_than_days)
    result = session.execute(delete(IdempotencyRecord).where(IdempotencyRecord.created_at < cutoff))
    return int(getattr(result, "rowcount", 0) or 0)
