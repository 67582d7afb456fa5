"""WSGI entry point for gunicorn: `gunicorn cache_app.wsgi:app`."""

from . import create_app

app = create_app()
