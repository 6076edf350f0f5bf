"""Fetching a URL that an admin or an IdP named (SAML metadata, OIDC discovery, JWKS) safely.

A URL we fetch on someone's word must not turn the bridge into a proxy towards its own network
(SSRF): only https on a public address is fetched, and every redirect is checked the same way
before it is followed. The address check is made on the address each socket actually connected
to, so a name that resolves to a public address for the check and to a private one for the
connection (DNS rebinding) is refused too. ``allow_private`` (setting
``JSM_SCIM_ALLOW_PRIVATE_IDP_URLS``, for an IdP inside the company network) also allows http,
loopback and private addresses; link-local (cloud metadata services), multicast and unspecified
addresses are never fetched. The whole fetch, redirects included, has one deadline and a body cap.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import requests

from jsm_client import bounded_http

MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_ADDRESS = ipaddress.IPv4Address | ipaddress.IPv6Address


class OutboundRefused(ValueError):
    """The URL was not fetched (refused address or scheme, too slow, too large, or an HTTP error)."""


def fetch(url: str, *, allow_private: bool, max_bytes: int = 2_000_000, deadline_s: float = 10.0,
          accept: str | None = None) -> bytes:
    """The body of ``url`` after a 2xx answer; raises :class:`OutboundRefused` with the reason."""
    deadline = time.monotonic() + deadline_s
    headers = {"User-Agent": "jsm-scim-bridge", "Accept-Encoding": "identity"}
    if accept:
        headers["Accept"] = accept
    with bounded_http.bounded_session(pool_size=1) as session:
        for _ in range(MAX_REDIRECTS + 1):
            check_url(url, allow_private=allow_private)
            response = _exchange(session, url, headers, deadline, max_bytes, allow_private)
            if response.status_code not in _REDIRECTS:
                break
            url = urljoin(url, response.headers.get("Location", ""))
        else:
            raise OutboundRefused(f"more than {MAX_REDIRECTS} redirects")
    if not 200 <= response.status_code < 300:
        raise OutboundRefused(f"{_shown(url)} answered HTTP {response.status_code}")
    return response.content


def _exchange(session: requests.Session, url: str, headers: dict[str, str], deadline: float, max_bytes: int,
              allow_private: bool) -> requests.Response:
    def peer_check(address: str) -> None:
        reason = address_refusal(_parse_address(address), allow_private=allow_private)
        if reason:
            raise bounded_http.PeerRefused(f"{_shown(url)} connected to {address}, {reason}")

    try:
        return bounded_http.send(session, "GET", url, deadline_s=deadline - time.monotonic(), max_bytes=max_bytes,
                                 peer_check=peer_check, headers=headers)
    except bounded_http.DeadlineExceeded:
        raise OutboundRefused(f"{_shown(url)} did not answer completely within the time allowed") from None
    except bounded_http.BodyTooLarge:
        raise OutboundRefused(f"{_shown(url)} sent more than {max_bytes} bytes") from None
    except requests.RequestException as exc:
        refused = _peer_refusal(exc)
        raise OutboundRefused(str(refused) if refused else f"cannot fetch {_shown(url)}: {type(exc).__name__}") from None


def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse (:class:`OutboundRefused`) a URL we would not fetch: scheme, then every address its
    host name resolves to. (The connected address is checked again when fetching.)"""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme != "https" and not (scheme == "http" and allow_private):
        allowed = "https or http" if allow_private else "https"
        raise OutboundRefused(f"refusing {_shown(url)}: only {allowed} URLs are fetched")
    host = parts.hostname
    if not host:
        raise OutboundRefused(f"refusing {_shown(url)}: no host")
    for address in _resolve(host, parts.port or (443 if scheme == "https" else 80)):
        reason = address_refusal(address, allow_private=allow_private)
        if reason:
            raise OutboundRefused(f"refusing {_shown(url)}: {host} is {address}, {reason}")


def address_refusal(address: _ADDRESS, *, allow_private: bool) -> str | None:
    """Why ``address`` may not be fetched from, or ``None`` when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address.is_link_local or address.is_multicast or address.is_unspecified:
        return "a link-local, multicast or unspecified address (never fetched)"
    if address.is_global:
        return None
    if allow_private:
        return None
    return "not a public address (set JSM_SCIM_ALLOW_PRIVATE_IDP_URLS=true to allow private ones)"


def _resolve(host: str, port: int) -> list[_ADDRESS]:
    try:
        return [_parse_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise OutboundRefused(f"cannot resolve {host}") from None
    return [_parse_address(info[4][0]) for info in infos]


def _parse_address(text: str) -> _ADDRESS:
    return ipaddress.ip_address(text.split("%", 1)[0])  # drop an IPv6 zone id


def _peer_refusal(exc: BaseException) -> bounded_http.PeerRefused | None:
    """The PeerRefused somewhere in the exception chain (urllib3 and requests wrap it)."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, bounded_http.PeerRefused):
            return current
        stack += [current.__cause__, current.__context__, *[a for a in current.args if isinstance(a, BaseException)]]
        stack.append(getattr(current, "reason", None))
    return None


def _shown(url: str) -> str:
    """The URL without query or credentials (either may carry a secret)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path}"
