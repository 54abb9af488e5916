"""Planning runs, reservations, shortages and reorder suggestions."""

from __future__ import annotations

from inventory.blueprint import Blueprint

blp = Blueprint(
    "planning",
    __name__,
    url_prefix="/api/v1",
    description="Reservations against infusion days, shortages, reorder suggestions",
)
