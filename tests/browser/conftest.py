"""Fixtures of the browser tests: the bridge and a test IdP on real sockets, and headless Chromium.

Chromium, chromedriver (Debian packages ``chromium`` and ``chromium-driver``) and the ``selenium``
package are optional on a developer machine: without them the tests are skipped, except under
``CI`` where their absence is an error.
"""
from __future__ import annotations

import html
import importlib.util
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
import requests
from werkzeug.wrappers import Request, Response

from scim_server.app import create_app
from scim_server.services import services_of
from scim_server.settings import Settings
from tests.fixtures.server import serve_wsgi
from tests.sso.conftest import configure_idp
from tests.sso.idp import SamlIdp

CHROMIUM = os.environ.get("JSM_SCIM_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("JSM_SCIM_TEST_CHROMEDRIVER", "/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
)


def _missing_browser_parts() -> list[str]:
    missing = [path for path in (CHROMIUM, CHROMEDRIVER) if not shutil.which(path)]
    if importlib.util.find_spec("selenium") is None:
        missing.append("the selenium package")
    return missing


@pytest.fixture
def chromium() -> Iterator["object"]:
    """A headless Chromium driven through chromedriver (skipped when absent, unless CI is set)."""
    missing = _missing_browser_parts()
    if missing:
        message = f"headless Chromium test needs {', '.join(missing)} (apt-get install chromium chromium-driver; pip install selenium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # console messages (CSP violations)
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


class _LateBound:
    """A WSGI app whose target is set after the socket exists (the public URL needs the port)."""

    def __init__(self) -> None:
        self.target = None

    def __call__(self, environ, start_response):
        return self.target(environ, start_response)


@dataclass
class LiveBridge:
    url: str
    app: object
    session_factory: object


@pytest.fixture
def live_server(database_url: str, jsm_emulator, request) -> Iterator[LiveBridge]:
    """The bridge on a real socket, its public URL being that socket (so SAML URLs match). A test
    module may define a ``bridge_overrides`` fixture: more settings (e.g. branding)."""
    try:
        bridge_overrides = request.getfixturevalue("bridge_overrides")
    except pytest.FixtureLookupError:
        bridge_overrides = {}
    late = _LateBound()
    with serve_wsgi(late) as url:
        settings = Settings(
            database_url=database_url,
            secret_key="browser-test-secret",
            public_url=url,
            jsm_url=jsm_emulator.url,
            jsm_email="bridge@example.com",
            jsm_api_token="emulator-token",
            run_worker_in_process=False,
            allow_private_idp_urls=True,  # the test IdPs listen on loopback
        ).with_overrides(**bridge_overrides)
        application = create_app(settings, migrate=False)
        late.target = application
        try:
            yield LiveBridge(url, application, services_of(application).session_factory)
        finally:
            services_of(application).engine.dispose()


def auto_post_page(acs_url: str, saml_response: str, relay_state: str | None) -> str:
    """The HTTP-POST binding as IdPs do it: a hidden form submitted by script on load."""
    relay = f'<input type="hidden" name="RelayState" value="{html.escape(relay_state)}">' if relay_state else ""
    return (
        "<!doctype html><html><head><title>Test IdP</title></head>"
        '<body onload="document.forms[0].submit()">'
        f'<form method="post" action="{html.escape(acs_url)}">'
        f'<input type="hidden" name="SAMLResponse" value="{html.escape(saml_response)}">{relay}'
        "<noscript><button type=\"submit\">Continue</button></noscript></form></body></html>"
    )


@dataclass
class LiveIdp:
    url: str
    saml: SamlIdp
    requests_seen: list[str]
    email: str = "bea@example.com"


@pytest.fixture
def live_idp(live_server: LiveBridge, tmp_path: Path) -> Iterator[LiveIdp]:
    """A tiny WSGI IdP on its own socket: it reads our AuthnRequest with pysaml2 and answers with a
    real signed Response in an auto-posting form. It trusts the bridge's SP metadata and is the
    bridge's configured IdP."""
    import base64

    late = _LateBound()
    with serve_wsgi(late) as url:
        sp_metadata = requests.get(f"{live_server.url}/saml/metadata", timeout=10).text
        saml = SamlIdp(tmp_path / "live-idp", sp_metadata, sso_url=f"{url}/sso")
        idp = LiveIdp(url, saml, [])

        @Request.application
        def sso(request: Request) -> Response:
            if request.path != "/sso":
                return Response("not found", status=404)
            request_id, relay_state = saml.read_request(request.url)
            idp.requests_seen.append(request_id)
            xml = saml.response_xml(
                request_id,
                sp_entity_id=f"{live_server.url}/saml/metadata",
                acs_url=f"{live_server.url}/saml/acs",
                email=idp.email,
                attributes={"email": [idp.email], "firstName": ["Bea"], "lastName": ["Browser"], "groups": ["Customers"]},
            )
            page = auto_post_page(f"{live_server.url}/saml/acs", base64.b64encode(xml).decode("ascii"), relay_state)
            return Response(page, mimetype="text/html")

        late.target = sso
        configure_idp(live_server.session_factory, saml.settings())
        yield idp
