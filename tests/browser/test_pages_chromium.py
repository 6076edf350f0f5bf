"""Every customer page in headless Chromium: branded, styled under its CSP, screenshotted as an artefact.

The screenshots land in ``$JSM_SCIM_TEST_ARTEFACTS`` (default: ``artefacts/`` under pytest's base
temporary directory); the test prints the directory.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

import pytest
from werkzeug.wrappers import Request, Response

from tests.fixtures.server import serve_wsgi

LOGO = ('<svg xmlns="http://www.w3.org/2000/svg" width="120" height="40"><rect width="40" height="40" rx="8" '
        'fill="#6f2da8"/><text x="48" y="27" font-family="sans-serif" font-size="18" fill="#6f2da8">ACME</text></svg>')


@pytest.fixture(scope="module")
def logo_url() -> Iterator[str]:
    @Request.application
    def logo(request: Request) -> Response:
        return Response(LOGO, mimetype="image/svg+xml")

    with serve_wsgi(logo) as url:
        yield f"{url}/logo.svg"


@pytest.fixture
def bridge_overrides(logo_url) -> dict[str, object]:
    return {"brand_name": "Acme Corp <Support>", "brand_logo_url": logo_url, "brand_color": "#6f2da8",
            "support_contact": "it-help@acme.example"}


@pytest.fixture
def artefacts(tmp_path_factory) -> Path:
    directory = Path(os.environ.get("JSM_SCIM_TEST_ARTEFACTS") or tmp_path_factory.getbasetemp() / "artefacts")
    directory.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots in {directory}")
    return directory


def _shot(driver, artefacts: Path, name: str, url: str) -> str:
    driver.get(url)
    driver.save_screenshot(str(artefacts / f"{name}.png"))
    return driver.find_element("tag name", "body").text


def _csp_violations(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]
            or "Refused to" in entry["message"]]


def test_every_customer_page_is_branded_and_styled(chromium, live_server, live_idp, jsm_emulator, artefacts):
    chromium.set_window_size(1000, 760)
    base = live_server.url
    text = _shot(chromium, artefacts, "404-not-found", f"{base}/")
    assert "Page not found" in text and "Acme Corp <Support>" in text and "it-help@acme.example" in text
    # the stylesheet applied under the CSP: the brand colour reaches the header's border
    border = chromium.find_element("css selector", "header.brand").value_of_css_property("border-top-color")
    assert border in ("rgba(111, 45, 168, 1)", "rgb(111, 45, 168)"), border
    logo = chromium.find_element("css selector", "header.brand img")
    assert chromium.execute_script("return arguments[0].naturalWidth", logo) > 0  # the logo loaded

    text = _shot(chromium, artefacts, "refusal-with-reference", f"{base}/oidc/callback?state=guess&code=x")
    assert "Reference" in text and "UTC" in text and "Sign-in failed" in text

    _shot(chromium, artefacts, "refused-link-expired", f"{base}/refused?r=not-a-token")

    chromium.get(f"{base}/portal/1")  # the IdP signs the visitor in and JSM's portal opens
    text = _shot(chromium, artefacts, "portals", f"{base}/portals")
    assert f"signed in as {live_idp.email}" in text and "Help Desk" in text

    text = _shot(chromium, artefacts, "no-such-portal", f"{base}/portal/999")
    assert "No such portal" in text and "may not use" not in text

    text = _shot(chromium, artefacts, "sign-out", f"{base}/logout")
    assert "Sign out" in text

    text = _shot(chromium, artefacts, "sp-metadata", f"{base}/saml/metadata")
    assert "EntityDescriptor" in chromium.page_source and not chromium.current_url.endswith(".xml")
    _shot(chromium, artefacts, "idp-metadata", f"{base}/idp/metadata")

    assert _csp_violations(chromium) == []
    assert {p.name for p in artefacts.glob("*.png")} >= {"404-not-found.png", "portals.png", "no-such-portal.png"}
