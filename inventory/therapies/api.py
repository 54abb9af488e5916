"""Therapies and their infusion days."""

from __future__ import annotations

from inventory.blueprint import Blueprint

blp = Blueprint(
    "therapies", __name__, url_prefix="/api/v1", description="Therapies and infusion days"
)
