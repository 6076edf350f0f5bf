"""Operational endpoints: /healthz, /readyz, /metrics (placeholder)."""
from flask import Blueprint

blueprint = Blueprint("ops", __name__)
