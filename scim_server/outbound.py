"""Safe outbound HTTP GET for admin-given URLs (IdP metadata, OIDC discovery and keys).

Interface 2 (owner: ``hostile``); this is the minimal version ``rp`` codes against until theirs
lands: https to a public address only (http and loopback/private too when ``allow_private``),
redirects followed only to URLs that pass the same check, a total deadline and a body cap.
"""
from __future__ import annotations

import ipaddress
import socket
import time
from urllib.parse import urljoin, urlsplit

import requests

MAX_REDIRECTS = 5


class OutboundRefused(ValueError):
    """The URL may not be fetched, or the fetch failed within its limits."""


def check_url(url: str, *, allow_private: bool) -> None:
    parts = urlsplit(url)
    if parts.scheme not in (("https", "http") if allow_private else ("https",)) or not parts.hostname:
        raise OutboundRefused(f"{url[:200]} is not an https URL" + ("" if allow_private else
                              " (http needs JSM_SCIM_ALLOW_PRIVATE_IDP_URLS=true)"))
    if allow_private:
        return
    try:
        infos = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
    except OSError as exc:
        raise OutboundRefused(f"cannot resolve {parts.hostname}: {exc}") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise OutboundRefused(f"{parts.hostname} resolves to a private or loopback address ({address});"
                                  " set JSM_SCIM_ALLOW_PRIVATE_IDP_URLS=true to allow it")


def fetch(url: str, *, allow_private: bool, max_bytes: int = 2_000_000, deadline_s: float = 10.0,
          accept: str | None = None) -> bytes:
    deadline = time.monotonic() + deadline_s
    headers = {"Accept": accept} if accept else {}
    for _ in range(MAX_REDIRECTS + 1):
        check_url(url, allow_private=allow_private)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise OutboundRefused(f"fetching {url[:200]} took longer than {deadline_s:g} s")
        try:
            with requests.get(url, headers=headers, timeout=min(remaining, 10.0), stream=True,
                              allow_redirects=False) as response:
                if response.is_redirect:
                    url = urljoin(url, response.headers.get("Location", ""))
                    continue
                if response.status_code != 200:
                    raise OutboundRefused(f"{url[:200]} answered HTTP {response.status_code}")
                body = bytearray()
                for chunk in response.iter_content(64 * 1024):
                    body += chunk
                    if len(body) > max_bytes:
                        raise OutboundRefused(f"{url[:200]} sent more than {max_bytes} bytes")
                    if time.monotonic() > deadline:
                        raise OutboundRefused(f"fetching {url[:200]} took longer than {deadline_s:g} s")
                return bytes(body)
        except requests.RequestException as exc:
            raise OutboundRefused(f"cannot fetch {url[:200]}: {exc}") from None
    raise OutboundRefused(f"{url[:200]} redirected more than {MAX_REDIRECTS} times")
