"""Transactional outbox: SCIM writes mark which entity changed, in the same transaction.

Placeholder until the propagation feature lands; the signature is the contract the store uses.
"""
from __future__ import annotations

from sqlalchemy.orm import Session


def mark_dirty(session: Session, kind: str, entity_id: str, directory_id: int) -> None:
    """Record that the ``kind`` ("user" | "group") entity changed and must be converged to JSM."""
