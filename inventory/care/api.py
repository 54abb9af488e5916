"""Payers, patients and kit templates."""

from __future__ import annotations

from inventory.blueprint import Blueprint

blp = Blueprint(
    "care", __name__, url_prefix="/api/v1", description="Payers, patients and kit templates"
)
