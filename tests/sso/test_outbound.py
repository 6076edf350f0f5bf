"""``scim_server.outbound.fetch``: what an admin- or IdP-named URL may reach, and how long it may take.

Every server here is a real socket on 127.0.0.1. Private and link-local targets named in the tests
are refused before any connection is attempted (the tests assert that, too).
"""
from __future__ import annotations

import time

import pytest
import requests

from jsm_client import bounded_http
from scim_server import outbound
from scim_server.outbound import OutboundRefused, fetch
from scim_server.sso.metadata import MetadataError, read_source
from tests.fixtures.hostile_http import endless_body, fixed, headers_then_drip, hostile_server
from tests.sso.idp import SamlIdp
from tests.sso.test_config_and_cli import run_cli

OK = fixed("200 OK", {"Content-Type": "application/xml"}, b"<ok/>")


def test_loopback_http_is_fetched_only_when_private_urls_are_allowed():
    with hostile_server(OK) as server:
        assert fetch(server.url + "/md.xml", allow_private=True) == b"<ok/>"
        with pytest.raises(OutboundRefused, match="only https"):
            fetch(server.url + "/md.xml", allow_private=False)
    assert len(server.requests) == 1


@pytest.mark.parametrize("url", [
    "https://127.0.0.1/md.xml", "https://localhost/md.xml", "https://10.1.2.3/md.xml", "https://192.168.0.10/md",
    "https://[::1]/md", "https://[::ffff:127.0.0.1]/md", "https://100.64.0.1/md", "https://[fd00::1]/md",
])
def test_private_addresses_are_refused_before_connecting(url):
    started = time.monotonic()
    with pytest.raises(OutboundRefused, match="not a public address"):
        fetch(url, allow_private=False, deadline_s=5)
    assert time.monotonic() - started < 1  # no connection was tried


@pytest.mark.parametrize("url", ["https://169.254.169.254/latest/meta-data", "http://[fe80::1]/x",
                                 "https://0.0.0.0/x", "https://224.0.0.1/x"])
def test_link_local_and_special_addresses_are_refused_even_when_private_is_allowed(url):
    with pytest.raises(OutboundRefused, match="never fetched"):
        fetch(url, allow_private=True)


@pytest.mark.parametrize("scheme_url", ["file:///etc/passwd", "ftp://idp.example/md", "gopher://x/"])
def test_other_schemes_are_refused(scheme_url):
    with pytest.raises(OutboundRefused, match="only https"):
        fetch(scheme_url, allow_private=True)


@pytest.mark.parametrize("target", ["http://169.254.169.254/latest/meta-data/", "file:///etc/passwd"])
def test_redirect_is_checked_before_it_is_followed(target):
    with hostile_server(fixed("302 Found", {"Location": target})) as server:
        with pytest.raises(OutboundRefused, match="refusing"):
            fetch(server.url + "/md.xml", allow_private=True)
    assert len(server.requests) == 1


def test_redirect_to_an_allowed_url_is_followed_with_one_deadline():
    with hostile_server(OK) as target, \
            hostile_server(fixed("301 Moved Permanently", {"Location": target.url + "/real.xml"})) as first:
        assert fetch(first.url + "/md.xml", allow_private=True) == b"<ok/>"
    assert target.requests[0].startswith(b"GET /real.xml ")


def test_redirect_loop_ends():
    with hostile_server(fixed("302 Found", {"Location": "/again"})) as server:
        with pytest.raises(OutboundRefused, match="redirects"):
            fetch(server.url + "/md.xml", allow_private=True)
    assert len(server.requests) == outbound.MAX_REDIRECTS + 1


def test_drip_fed_answer_ends_at_the_deadline():
    with hostile_server(headers_then_drip(200, every_s=0.2)) as server:
        started = time.monotonic()
        with pytest.raises(OutboundRefused, match="within the time allowed"):
            fetch(server.url + "/md.xml", allow_private=True, deadline_s=1.0)
        assert time.monotonic() - started < 2.0


def test_body_is_capped():
    with hostile_server(endless_body()) as server:
        with pytest.raises(OutboundRefused, match="more than 100000 bytes"):
            fetch(server.url + "/md.xml", allow_private=True, max_bytes=100_000)


def test_http_error_status_is_refused():
    with hostile_server(fixed("404 Not Found", {})) as server:
        with pytest.raises(OutboundRefused, match="HTTP 404"):
            fetch(server.url + "/md.xml", allow_private=True)


def test_connected_address_is_checked_too():
    """A name that passed the resolution check but connects to a private address (DNS rebinding) is
    refused on the connected socket, before the request is sent."""
    with hostile_server(OK) as server:
        session = bounded_http.bounded_session()
        refused = []

        def peer_check(address: str) -> None:
            refused.append(address)
            raise bounded_http.PeerRefused(f"connected to {address}")

        with pytest.raises(requests.ConnectionError):
            bounded_http.send(session, "GET", server.url, deadline_s=2, max_bytes=1000, peer_check=peer_check)
        with pytest.raises(OutboundRefused, match="connected to 127.0.0.1, not a public address"):
            outbound._exchange(session, server.url, {}, time.monotonic() + 2, 1000, allow_private=False)
        time.sleep(0.1)
    assert refused == ["127.0.0.1"]
    assert all(not r for r in server.requests)  # the connections were closed before any request


def test_metadata_import_uses_the_setting(settings, tmp_path, sp_metadata):
    idp = SamlIdp(tmp_path / "idp", sp_metadata)
    reply = fixed("200 OK", {"Content-Type": "application/samlmetadata+xml"}, idp.metadata_xml().encode())
    with hostile_server(reply) as server:
        url = server.url + "/metadata.xml"
        with pytest.raises(MetadataError, match="https"):
            read_source(url)
        refused = run_cli(settings, "sso", "import-metadata", url.replace("http://", "https://"))
        assert refused.exit_code != 0 and "not a public address" in refused.output
        assert read_source(url, allow_private=True) == idp.metadata_xml().encode()
    assert b"Accept: application/samlmetadata+xml" in server.requests[0]
