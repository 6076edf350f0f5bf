"""Short-lived signed links to the admin "test configuration" page.

``jsm-scim idp test-link NAME`` (and ``sso test-link`` for ``default``) prints one; following it
starts a login through that connection whose result is shown as a page of the attributes or
claims the IdP sent, instead of logging in. Only someone with CLI access to the
installation (its secret) can make such a link.
"""
from __future__ import annotations

from itsdangerous import BadSignature, URLSafeTimedSerializer

from scim_server.services import Services, installation_secret

SALT = "jsm-scim.sso.test-link"
DEFAULT_MAX_AGE_SECONDS = 600
_PAYLOAD = "sso-test"


def _serializer(secret: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(secret, salt=SALT)


def make_test_link(services: Services, connection: str = "default",
                   max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS) -> str:
    token = _serializer(installation_secret(services)).dumps({"p": _PAYLOAD, "c": connection, "ttl": max_age_seconds})
    return f"{services.settings.effective_public_url}/saml/test?token={token}"


def tested_connection(services: Services, token: str | None) -> str | None:
    """The connection a valid, unexpired test link names; None otherwise."""
    if not token or len(token) > 500:
        return None
    serializer = _serializer(installation_secret(services))
    try:
        data = serializer.loads(token, max_age=24 * 3600)
        ttl = int(data.get("ttl", DEFAULT_MAX_AGE_SECONDS))
        serializer.loads(token, max_age=ttl)
    except (BadSignature, AttributeError, TypeError, ValueError):
        return None
    connection = data.get("c", "default")
    return connection if data.get("p") == _PAYLOAD and isinstance(connection, str) else None
