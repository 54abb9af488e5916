"""WSGI entry point for gunicorn: ``gunicorn inventory.wsgi:app``."""

from inventory import create_app

app = create_app()
