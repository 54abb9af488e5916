"""Traceability and recalls: where a lot or serial went, and pulling a lot back."""
