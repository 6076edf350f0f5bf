"""Whether a signed-in customer may still sign in (owner: the upstream login; interface 3).

Minimal version: the user still exists (SCIM DELETE removes the row) and is active, in the
directory of their login. The upstream-login work extends this module (tenant-safe identity).
"""
from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from scim_server.models import Directory, User


def login_user_state(session: Session, directory: str, user_id: str) -> User | None:
    """The stored user, only if it still exists and is active in ``directory``."""
    return session.scalar(
        select(User)
        .join(Directory, Directory.id == User.directory_id)
        .where(User.id == user_id, Directory.name == directory, User.active.is_(True))
    )
