"""The customer pages' frame: branding, security headers, refusals with a reference, error pages, metadata."""
from __future__ import annotations

import json
import logging
import re

import pytest
from click.testing import CliRunner

from scim_server.cli import main
from scim_server.settings import Settings, SettingsError
from tests.ops.test_endpoints import sample_value
from tests.sso.idp import form

BRAND = {"brand_name": "<b>Acme & Co</b>", "brand_logo_url": "https://cdn.acme.test/logo.png?a=1&b=2",
         "brand_color": "#112233", "support_contact": "help@acme.test"}


def _csp(response) -> dict[str, str]:
    policy = response.headers["Content-Security-Policy"]
    return {part.split()[0]: part.strip() for part in policy.split(";") if part.strip()}


def assert_html_headers(response) -> None:
    csp = _csp(response)
    assert csp["default-src"] == "default-src 'none'" and csp["script-src"] == "script-src 'self'"
    assert "unsafe-inline" not in response.headers["Content-Security-Policy"]
    nonce = re.search(r"'nonce-([^']+)'", csp["style-src"]).group(1)
    body = response.data.decode()
    assert all(m == nonce for m in re.findall(r'<style nonce="([^"]+)"', body)) and "<style>" not in body
    assert "<script>" not in body and " onload=" not in body
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


def test_brand_settings_are_shown_escaped(make_app):
    client = make_app(**BRAND).test_client()
    response = client.get("/login?next=/portal/1")  # no connection: the "not configured" page
    body = response.data.decode()
    assert "&lt;b&gt;Acme &amp; Co&lt;/b&gt;" in body and "<b>Acme" not in body
    assert '<img src="https://cdn.acme.test/logo.png?a=1&amp;b=2"' in body
    assert '<a href="mailto:help@acme.test">help@acme.test</a>' in body
    assert "--brand: #112233" in body
    assert_html_headers(response)
    assert "img-src 'self' https://cdn.acme.test" in response.headers["Content-Security-Policy"]
    css = client.get(re.search(r'<link rel="stylesheet" href="([^"]+)"', body).group(1))
    assert css.status_code == 200 and "var(--brand)" in css.data.decode()


@pytest.mark.parametrize("field, value", [("brand_logo_url", "javascript:alert(1)"),
                                          ("brand_logo_url", "https://x.test/a\"onerror=1"),
                                          ("brand_color", "red"), ("brand_color", "#12345g"),
                                          ("brand_color", "#123;}body{")])
def test_brand_settings_are_validated(field, value):
    with pytest.raises(SettingsError, match=f"JSM_SCIM_{field.upper()}"):
        Settings(**{field: value})


def test_styled_error_pages_for_browser_routes_scim_json_for_scim(make_app):
    app = make_app()
    app.config["PROPAGATE_EXCEPTIONS"] = False

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    client = app.test_client()
    missing = client.get("/")
    assert missing.status_code == 404 and "Page not found" in missing.data.decode()
    assert_html_headers(missing)
    wrong = client.delete("/portals")
    assert wrong.status_code == 405 and "Not allowed" in wrong.data.decode() and "GET" in wrong.headers["Allow"]
    failed = client.get("/boom")
    assert failed.status_code == 500 and "Something went wrong" in failed.data.decode() and "kaboom" not in failed.data.decode()
    scim = client.get("/scim/v2/NoSuchThing")
    assert scim.status_code == 404 and scim.content_type.startswith("application/scim+json")
    assert scim.get_json()["status"] == "404"


@pytest.mark.parametrize("path", ["/saml/metadata", "/idp/metadata"])
def test_metadata_viewable_in_a_browser(client, path):
    browser = client.get(path, headers={"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"})
    assert browser.mimetype == "text/xml" and "Content-Disposition" not in browser.headers
    assert client.get(path + "?download=0").mimetype == "text/xml"
    machine = client.get(path)
    assert machine.mimetype == "application/samlmetadata+xml" and "Content-Disposition" not in machine.headers
    download = client.get(path + "?download=1", headers={"Accept": "text/html"})
    assert download.mimetype == "application/samlmetadata+xml"
    assert download.headers["Content-Disposition"].startswith("attachment; filename=")
    assert browser.data == machine.data and b"EntityDescriptor" in machine.data
    assert machine.headers["X-Content-Type-Options"] == "nosniff"


def test_anonymous_refusal_shows_time_and_reference_found_in_the_log(client, caplog):
    caplog.set_level(logging.WARNING, logger="scim_server.sso")
    response = client.get("/oidc/callback?state=guess&code=x")
    body = response.data.decode()
    assert response.status_code == 400
    reference = re.search(r"<dt>Reference</dt><dd>(R-[0-9A-F]{10})</dd>", body).group(1)
    assert re.search(r"<dt>Time</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</dd>", body)
    lines = [r.getMessage() for r in caplog.records if reference in r.getMessage()]
    assert len(lines) == 1 and "state matches no login" in lines[0]
    assert_html_headers(response)


def test_refused_login_is_audited_with_its_reference_and_counted(browser, client, auth, database_url, caplog,
                                                                tmp_path, monkeypatch):
    caplog.set_level(logging.WARNING, logger="scim_server.sso")
    client.post("/scim/v2/Users", headers=auth, json={"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                                      "userName": "carol@example.com", "active": False})
    before = client.get("/metrics").data.decode()
    request_id, relay = browser.start("/portal/1")
    posted = browser.client.post("/saml/acs", data=form(browser.idp.response_xml(request_id, email="carol@example.com"),
                                                        relay))
    assert posted.status_code == 303 and posted.headers["Location"].startswith("/refused?r=")
    assert "deactivated" not in posted.headers["Location"] and "carol" not in posted.headers["Location"]
    page = client.get(posted.headers["Location"])
    assert page.status_code == 403 and b"Your account is deactivated" in page.data
    reference = re.search(r"(R-[0-9A-F]{10})", page.data.decode()).group(1)
    assert client.get(posted.headers["Location"]).status_code == 403  # a reload shows it again
    assert client.get("/refused?r=" + posted.headers["Location"][-20:]).status_code == 404  # not ours: no page
    assert any(reference in r.getMessage() and "deactivated" in r.getMessage() for r in caplog.records)

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["audit", "list", "--target", reference, "--json"],
                                env={"JSM_SCIM_DATABASE_URL": database_url})
    assert result.exit_code == 0, result.output
    [event] = json.loads(result.stdout)
    assert event["action"] == "login.refused" and event["actor"] == "sso:default"
    assert event["detail"]["code"] == "deactivated" and "deactivated" in event["detail"]["reason"]

    after = client.get("/metrics").data.decode()
    labels = {"connection": "default", "outcome": "refused", "reason": "deactivated"}
    assert sample_value(after, "jsm_scim_logins_total", **labels) - sample_value(before, "jsm_scim_logins_total", **labels) == 1


def test_jit_user_is_audited_as_the_connection_and_login_counted(browser, client, database_url, tmp_path, monkeypatch):
    before = client.get("/metrics").data.decode()
    assert browser.login("/portal/1").status_code == 302
    after = client.get("/metrics").data.decode()
    labels = {"connection": "default", "outcome": "success", "reason": "created"}
    assert sample_value(after, "jsm_scim_logins_total", **labels) - sample_value(before, "jsm_scim_logins_total", **labels) == 1
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(main, ["audit", "list", "--action", "user.create", "--json"],
                                env={"JSM_SCIM_DATABASE_URL": database_url})
    assert [event["actor"] for event in json.loads(result.stdout)] == ["sso:default"]


def test_unknown_portal_is_a_real_no_such_portal(browser, client):
    assert browser.login("/portal/1").status_code == 302
    response = client.get("/portal/999")
    body = response.data.decode()
    assert response.status_code == 404 and "No such portal" in body and "may not use" not in body
    assert client.get("/portal/abc").status_code == 404
