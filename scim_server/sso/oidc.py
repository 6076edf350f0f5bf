"""OpenID Connect relying party: discovery, authorization code flow with PKCE, ID token checks.

- Discovery (OIDC Discovery 1.0 §4): ``ISSUER/.well-known/openid-configuration``, whose ``issuer``
  must equal the configured one exactly; cached for an hour.
- Authorization request: ``response_type=code``, PKCE S256 (RFC 7636; the verifier stays in the
  browser's binding cookie), ``state`` and ``nonce`` bound to the browser (``sso/binding.py``).
- Token request: the code, the verifier and the client's secret (``client_secret_basic``, or
  ``client_secret_post`` when that is all the provider supports), no redirects followed.
- ID token (OIDC Core §3.1.3.7): signature by a key of the issuer's JWKS (asymmetric algorithms
  only; an unknown ``kid`` refetches the JWKS, at most once per ``JWKS_REFRESH_SECONDS``, for key
  rotation), ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat`` (not in the future, not older than
  ``MAX_TOKEN_AGE``), ``nonce``. ``email_verified: false`` is refused.
Discovery and JWKS go through ``scim_server.outbound.fetch`` (https on public addresses unless
``JSM_SCIM_ALLOW_PRIVATE_IDP_URLS``).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable
from urllib.parse import urlencode

import requests
from authlib.common.security import generate_token
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from scim_server import outbound
from scim_server.sso.connections import OidcSettings

ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
DISCOVERY_TTL_SECONDS = 3600.0
JWKS_REFRESH_SECONDS = 30.0
CLOCK_SKEW_SECONDS = 120
MAX_TOKEN_AGE_SECONDS = 600
MAX_TOKEN_RESPONSE_BYTES = 1_000_000
TOKEN_DEADLINE_SECONDS = 10.0


class OidcRejected(Exception):
    """A login we refuse. ``reason`` is for the admin's log, ``visitor_message`` for the page."""

    def __init__(self, reason: str, visitor_message: str = "The sign-in response was not valid.", status: int = 400):
        super().__init__(reason)
        self.reason, self.visitor_message, self.status = reason, visitor_message, status


class OidcUnavailable(OidcRejected):
    """The provider could not be reached or described itself unusably."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, "Your identity provider cannot be reached right now. Please try again shortly.", 502)


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    token_auth_methods: tuple[str, ...]
    signing_algorithms: tuple[str, ...]


def _json(data: bytes, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise OidcUnavailable(f"{what} is not JSON") from None
    if not isinstance(value, dict):
        raise OidcUnavailable(f"{what} is not a JSON object")
    return value


def parse_discovery(document: dict[str, Any], issuer: str) -> ProviderMetadata:
    if document.get("issuer") != issuer:
        raise OidcUnavailable(f"the discovery document names issuer {str(document.get('issuer'))[:200]!r}, "
                              f"not {issuer!r} (configure the exact issuer URL)")
    endpoints = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value.startswith(("https://", "http://")):
            raise OidcUnavailable(f"the discovery document has no usable {name}")
        endpoints[name] = value
    methods = document.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    algorithms = document.get("id_token_signing_alg_values_supported") or ["RS256"]
    return ProviderMetadata(
        issuer=issuer, **endpoints,
        token_auth_methods=tuple(m for m in methods if isinstance(m, str)),
        signing_algorithms=tuple(a for a in algorithms if a in ASYMMETRIC_ALGORITHMS) or ("RS256",),
    )


def discovery_url(issuer: str) -> str:
    return issuer.rstrip("/") + "/.well-known/openid-configuration"


class OidcProviders:
    """Per-process caches of discovery documents and key sets, one entry per issuer."""

    def __init__(self, allow_private: bool, clock: Callable[[], float] = time.monotonic) -> None:
        self.allow_private = allow_private
        self._clock = clock
        self._lock = threading.Lock()
        self._metadata: dict[str, tuple[ProviderMetadata, float]] = {}
        self._keys: dict[str, tuple[KeySet, float]] = {}
        self._refreshed: dict[str, float] = {}

    def _get(self, url: str, what: str) -> dict[str, Any]:
        try:
            data = outbound.fetch(url, allow_private=self.allow_private, accept="application/json")
        except outbound.OutboundRefused as exc:
            raise OidcUnavailable(f"{what}: {exc}") from None
        return _json(data, what)

    def metadata(self, issuer: str) -> ProviderMetadata:
        with self._lock:
            cached = self._metadata.get(issuer)
        if cached and self._clock() - cached[1] < DISCOVERY_TTL_SECONDS:
            return cached[0]
        metadata = parse_discovery(self._get(discovery_url(issuer), "OIDC discovery"), issuer)
        with self._lock:
            self._metadata[issuer] = (metadata, self._clock())
        return metadata

    def key_set(self, metadata: ProviderMetadata, refresh: bool = False) -> KeySet:
        """The issuer's JWKS; ``refresh`` refetches it, unless a refresh already happened in the last
        ``JWKS_REFRESH_SECONDS`` (unknown key IDs cannot make us hammer the provider)."""
        with self._lock:
            cached = self._keys.get(metadata.issuer)
            last_refresh = self._refreshed.get(metadata.issuer)
            if cached and refresh and last_refresh is not None and self._clock() - last_refresh < JWKS_REFRESH_SECONDS:
                return cached[0]
            if refresh:
                self._refreshed[metadata.issuer] = self._clock()
        if cached and not refresh:
            return cached[0]
        document = self._get(metadata.jwks_uri, "OIDC JWKS")
        try:
            keys = KeySet.import_key_set({"keys": [k for k in document.get("keys", []) if _usable_key(k)]})
        except (JoseError, ValueError, TypeError) as exc:
            raise OidcUnavailable(f"OIDC JWKS is not a usable key set: {exc}") from None
        with self._lock:
            self._keys[metadata.issuer] = (keys, self._clock())
        return keys


def _usable_key(key: Any) -> bool:
    """Signing keys only (``use`` absent or ``sig``), never symmetric ones."""
    return isinstance(key, dict) and key.get("kty") in ("RSA", "EC", "OKP") and key.get("use", "sig") == "sig"


# ------------------------------------------------------------------------------------------------
# The flow
# ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AuthorizationStart:
    url: str
    state: str
    nonce: str
    verifier: str


def authorization_start(metadata: ProviderMetadata, settings: OidcSettings, redirect_uri: str,
                        login_hint: str | None = None) -> AuthorizationStart:
    state, nonce, verifier = generate_token(43), generate_token(32), generate_token(64)
    query = {
        "response_type": "code",
        "client_id": settings.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(settings.scopes),
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        query["login_hint"] = login_hint
    separator = "&" if "?" in metadata.authorization_endpoint else "?"
    return AuthorizationStart(metadata.authorization_endpoint + separator + urlencode(query), state, nonce, verifier)


def exchange_code(metadata: ProviderMetadata, settings: OidcSettings, client_secret: str, code: str,
                  verifier: str, redirect_uri: str, allow_private: bool) -> dict[str, Any]:
    """The token endpoint's answer to our authorization code (RFC 6749 §4.1.3, RFC 7636 §4.5)."""
    _check_endpoint(metadata.token_endpoint, allow_private)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri, "code_verifier": verifier}
    auth = None
    if "client_secret_basic" in metadata.token_auth_methods or "client_secret_post" not in metadata.token_auth_methods:
        auth = requests.auth.HTTPBasicAuth(_form_encoded(settings.client_id), _form_encoded(client_secret))
    else:
        form.update(client_id=settings.client_id, client_secret=client_secret)
    try:
        with requests.post(metadata.token_endpoint, data=form, auth=auth, timeout=(5, TOKEN_DEADLINE_SECONDS),
                           allow_redirects=False, stream=True, headers={"Accept": "application/json"}) as response:
            body = response.raw.read(MAX_TOKEN_RESPONSE_BYTES + 1, decode_content=True)
            status = response.status_code
    except requests.RequestException as exc:
        raise OidcUnavailable(f"token request failed: {exc}") from None
    if len(body) > MAX_TOKEN_RESPONSE_BYTES:
        raise OidcUnavailable("token response too large")
    answer = _json(body, f"token response (HTTP {status})")
    if status != 200:
        error = str(answer.get("error", "?"))[:100]
        raise OidcRejected(f"token request refused: HTTP {status} error={error!r}",
                           "Your identity provider did not complete the sign-in. Please sign in again.")
    if not isinstance(answer.get("id_token"), str):
        raise OidcRejected("the token response has no id_token (is the 'openid' scope allowed?)")
    return answer


def _check_endpoint(url: str, allow_private: bool) -> None:
    try:
        outbound.check_url(url, allow_private=allow_private)
    except outbound.OutboundRefused as exc:
        raise OidcUnavailable(f"token endpoint: {exc}") from None


def _form_encoded(value: str) -> str:
    """RFC 6749 §2.3.1: client_secret_basic credentials are form-urlencoded before base64."""
    from urllib.parse import quote_plus

    return quote_plus(value)


def verify_id_token(providers: OidcProviders, metadata: ProviderMetadata, settings: OidcSettings,
                    id_token: str, nonce: str, now: float | None = None) -> dict[str, Any]:
    """The ID token's claims after every check of OIDC Core §3.1.3.7; raise :class:`OidcRejected`."""
    if len(id_token) > 64 * 1024:
        raise OidcRejected("ID token too large")
    token = _decode(providers, metadata, id_token)
    claims = dict(token.claims)
    now_s = int(now if now is not None else time.time())
    registry = jwt.JWTClaimsRegistry(
        now=now_s, leeway=CLOCK_SKEW_SECONDS,
        iss={"essential": True, "value": metadata.issuer},
        aud={"essential": True, "value": settings.client_id},
        exp={"essential": True}, iat={"essential": True}, sub={"essential": True},
        nonce={"essential": True, "value": nonce},
    )
    try:
        registry.validate(claims)
    except JoseError as exc:
        raise OidcRejected(f"ID token refused: {exc.error}: {exc.description or ''}".strip()) from None
    audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
    if len(audiences) > 1 and claims.get("azp") != settings.client_id:
        raise OidcRejected("ID token refused: several audiences and azp is not our client ID")
    if not isinstance(claims.get("iat"), (int, float)) or claims["iat"] < now_s - MAX_TOKEN_AGE_SECONDS - CLOCK_SKEW_SECONDS:
        raise OidcRejected("ID token refused: issued too long ago (iat)")
    if claims.get("email_verified") in (False, "false"):
        raise OidcRejected("the provider says the e-mail address is not verified (email_verified: false)",
                           "Your e-mail address is not verified at your identity provider. "
                           "Please verify it there, then sign in again.", 403)
    return claims


def _decode(providers: OidcProviders, metadata: ProviderMetadata, id_token: str) -> jwt.Token:
    algorithms = list(metadata.signing_algorithms)
    for refresh in (False, True):  # an unknown kid: the provider may have rotated its keys
        keys = providers.key_set(metadata, refresh=refresh)
        try:
            return jwt.decode(id_token, keys, algorithms=algorithms)
        except InvalidKeyIdError:
            if refresh:
                raise OidcRejected("ID token signed with a key the issuer's JWKS does not have (kid)") from None
        except JoseError as exc:
            raise OidcRejected(f"ID token signature or format refused: {exc.error}") from None
        except ValueError as exc:
            raise OidcRejected(f"ID token malformed: {exc}") from None
    raise AssertionError("unreachable")
