"""Bearer-key authentication of SCIM requests."""
from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from scim_server.db import utcnow
from scim_server.keys import find_valid_key
from scim_server.models import ApiKey
from scim_server.scim.errors import ScimError

# last_used_at is written at most this often per key, so reads do not each cost a write.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)


def unauthorized(detail: str) -> ScimError:
    return ScimError(401, detail, headers={"WWW-Authenticate": 'Bearer realm="SCIM"'})


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def authenticate(session: Session, authorization: str | None) -> ApiKey:
    """The key that the ``Authorization`` header carries; raises a 401 ScimError otherwise."""
    token = bearer_token(authorization)
    if token is None:
        raise unauthorized("Missing bearer token")
    key = find_valid_key(session, token)
    if key is None:
        raise unauthorized("Invalid, expired or revoked API key")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_RESOLUTION:
        key.last_used_at = now
    return key
