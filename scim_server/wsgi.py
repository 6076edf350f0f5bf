"""WSGI entry point for production: ``gunicorn scim_server.wsgi:app`` (settings come from the environment)."""
from scim_server.app import create_app

app = create_app()
