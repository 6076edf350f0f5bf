"""WSGI entry point for production: ``gunicorn wsgi:app`` (the same app as ``scim_server.wsgi:app``)."""
from scim_server.wsgi import app

__all__ = ["app"]
