"""SAML views (placeholder)."""
from flask import Blueprint

blueprint = Blueprint("sso", __name__)
