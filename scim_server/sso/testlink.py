"""Short-lived signed links to the admin "test configuration" page.

``jsm-scim sso test-link`` prints one; following it starts a login whose result is shown as a
page of the attributes the IdP sent, instead of logging in. Only someone with CLI access to the
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


def make_test_link(services: Services, max_age_seconds: int = DEFAULT_MAX_AGE_SECONDS) -> str:
    token = _serializer(installation_secret(services)).dumps({"p": _PAYLOAD, "ttl": max_age_seconds})
    return f"{services.settings.effective_public_url}/saml/test?token={token}"


def test_token_valid(services: Services, token: str | None) -> bool:
    if not token or len(token) > 500:
        return False
    serializer = _serializer(installation_secret(services))
    try:
        data = serializer.loads(token, max_age=24 * 3600)
        ttl = int(data.get("ttl", DEFAULT_MAX_AGE_SECONDS))
        serializer.loads(token, max_age=ttl)
    except (BadSignature, AttributeError, TypeError, ValueError):
        return False
    return data.get("p") == _PAYLOAD
