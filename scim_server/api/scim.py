"""SCIM 2.0 endpoints under /scim/v2 (placeholder until the SCIM core lands)."""
from flask import Blueprint

blueprint = Blueprint("scim", __name__, url_prefix="/scim/v2")
