"""Audit trail of SCIM writes and key operations (placeholder until the audit feature lands)."""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session


def record(
    session: Session,
    *,
    action: str,
    target_type: str,
    target_id: str | None = None,
    directory_id: int | None = None,
    key_id: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Record one audited action in the caller's transaction (e.g. action="user.create")."""
