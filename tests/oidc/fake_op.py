"""A scriptable OpenID provider for the refusal tests: it signs ID tokens with joserfc (not our code).

The happy paths run against Canaille (``pytest-iam``), a real OpenID provider. To prove what the
bridge refuses, this one answers the authorization request at once (the visitor is "logged in")
and lets a test change the ID token it then issues: claims, signing key, header, signature bytes.
Discovery and JWKS fetches are counted (key rotation is bounded).
"""
from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.wrappers import Request, Response

CLIENT_ID = "bridge-client"
CLIENT_SECRET = "s3cret-for-tests"


@dataclass
class FakeOp:
    url: str = ""
    email: str = "olga@op.test"
    claims: dict[str, Any] = field(default_factory=dict)  # added to / overriding the standard claims
    drop: tuple[str, ...] = ()  # claims to leave out
    mutate_token: Callable[[str], str] | None = None
    header: dict[str, Any] | None = None
    key: RSAKey = field(default_factory=lambda: RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig"}))
    published: list[RSAKey] = field(default_factory=list)  # keys in the JWKS (default: [key])
    fetches: dict[str, int] = field(default_factory=lambda: {"discovery": 0, "jwks": 0, "token": 0})
    codes: dict[str, dict[str, str]] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)

    def rotate(self, kid: str) -> None:
        """Sign with a new key from now on and publish only it (the old one is gone)."""
        self.key = RSAKey.generate_key(2048, parameters={"kid": kid, "use": "sig"})
        self.published = [self.key]

    # -- WSGI ------------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        return self._app(environ, start_response)

    @Request.application
    def _app(self, request: Request) -> Response:
        routes = {"/.well-known/openid-configuration": self._discovery, "/jwks": self._jwks,
                  "/authorize": self._authorize, "/token": self._token}
        handler = routes.get(request.path)
        return handler(request) if handler else Response("not found", status=404)

    def _json(self, data: dict[str, Any], status: int = 200) -> Response:
        return Response(json.dumps(data), status=status, mimetype="application/json")

    def _discovery(self, request: Request) -> Response:
        self.fetches["discovery"] += 1
        return self._json({
            "issuer": self.url, "authorization_endpoint": f"{self.url}/authorize",
            "token_endpoint": f"{self.url}/token", "jwks_uri": f"{self.url}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
        })

    def _jwks(self, request: Request) -> Response:
        self.fetches["jwks"] += 1
        return self._json({"keys": [k.as_dict(private=False) for k in (self.published or [self.key])]})

    def _authorize(self, request: Request) -> Response:
        args = request.args
        code = secrets.token_urlsafe(16)
        self.codes[code] = {"nonce": args.get("nonce", ""), "challenge": args.get("code_challenge", ""),
                            "redirect_uri": args.get("redirect_uri", "")}
        query = urlencode({"code": code, "state": args.get("state", "")})
        return Response(status=302, headers={"Location": f"{args.get('redirect_uri')}?{query}"})

    def _token(self, request: Request) -> Response:
        self.fetches["token"] += 1
        form = request.form.to_dict()
        self.token_requests.append(form)
        auth = request.authorization
        if auth is None or (auth.username, auth.password) != (CLIENT_ID, CLIENT_SECRET):
            return self._json({"error": "invalid_client"}, 401)
        issued = self.codes.pop(form.get("code", ""), None)
        if issued is None:
            return self._json({"error": "invalid_grant"}, 400)
        return self._json({"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                           "id_token": self.id_token(issued["nonce"])})

    def id_token(self, nonce: str) -> str:
        now = int(time.time())
        claims = {"iss": self.url, "sub": "user-1", "aud": CLIENT_ID, "exp": now + 300, "iat": now,
                  "nonce": nonce, "email": self.email, "email_verified": True, "name": "Olga Provider"}
        claims.update(self.claims)
        for name in self.drop:
            claims.pop(name, None)
        header = self.header or {"alg": "RS256", "kid": self.key.kid}
        token = jwt.encode(header, claims, self.key)
        return self.mutate_token(token) if self.mutate_token else token


def code_of(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
