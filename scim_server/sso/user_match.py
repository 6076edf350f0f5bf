"""Matching an asserted e-mail to a stored user of one directory: exact after ASCII lower-casing.

``str.lower`` maps U+212A KELVIN SIGN to ``k`` (and the indexed ``*_lower`` columns hold such
lower-cased values), so the columns only narrow the candidates; the exact comparison decides, and
a look-alike address never becomes another person.
"""
from __future__ import annotations

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from scim_server.models import User, UserValue
from scim_server.sso.attributes import ascii_lower


def same_email(left: str | None, right: str | None) -> bool:
    return left is not None and right is not None and ascii_lower(left) == ascii_lower(right)


def user_emails(user: User) -> list[str]:
    values = [e.get("value") for e in (user.document or {}).get("emails") or [] if isinstance(e, dict)]
    return [v for v in values if isinstance(v, str)] + [user.user_name]


def find_user(session: Session, directory_id: int, email: str) -> User | None:
    """The user of the directory whose userName or an e-mail equals ``email`` (ASCII case-insensitive).

    The indexed ``*_lower`` columns narrow the candidates; the exact comparison decides.
    """
    lowered = email.lower()
    by_email = select(UserValue.user_id).where(UserValue.attribute == "emails", UserValue.value_lower == lowered)
    candidates = session.scalars(
        select(User).where(User.directory_id == directory_id,
                           or_(User.user_name_lower == lowered, User.id.in_(by_email)))
        .order_by(User.created_at)
    ).all()
    matching = [u for u in candidates if any(same_email(value, email) for value in user_emails(u))]
    return min(matching, key=lambda u: (not u.active, u.created_at)) if matching else None


def stored_email(user: User, asserted: str) -> str:
    """The user's stored address equal to ``asserted`` (its primary e-mail when several are)."""
    primary = user.primary_email
    if same_email(primary, asserted):
        return primary
    for value in user_emails(user):
        if same_email(value, asserted):
            return value
    return asserted
