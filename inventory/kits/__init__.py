"""Kits: one patient delivery, packed by scanning against the days' reservations."""
