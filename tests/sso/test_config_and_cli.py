"""SP metadata, IdP metadata import, the admin CLI, the test page and RelayState safety."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from lxml import etree

from scim_server.cli import main
from scim_server.services import services_of
from scim_server.sso.connections import load_idp
from scim_server.sso.metadata import MetadataError, parse_idp_metadata, read_source
from scim_server.sso.portal import safe_target
from scim_server.sso.testlink import make_test_link
from tests.sso.conftest import Browser, configure_idp, session_cookie
from tests.sso.idp import SSO_URL, SamlIdp

MD = "urn:oasis:names:tc:SAML:2.0:metadata"


def test_sp_metadata_shape(client):
    response = client.get("/saml/metadata")
    assert response.status_code == 200
    assert response.mimetype == "application/samlmetadata+xml"
    root = etree.fromstring(response.data)
    assert root.tag == f"{{{MD}}}EntityDescriptor"
    assert root.get("entityID") == "http://testserver/saml/metadata"
    acs = root.find(f"{{{MD}}}SPSSODescriptor/{{{MD}}}AssertionConsumerService")
    assert acs.get("Location") == "http://testserver/saml/acs"
    assert acs.get("Binding") == "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
    cert = root.find(f".//{{{MD}}}KeyDescriptor//{{http://www.w3.org/2000/09/xmldsig#}}X509Certificate")
    assert len(cert.text) > 500
    assert client.get("/saml/metadata").data == response.data  # the key pair is kept


def run_cli(settings, *args):
    env = {
        "JSM_SCIM_DATABASE_URL": settings.database_url,
        "JSM_SCIM_PUBLIC_URL": settings.public_url,
        "JSM_SCIM_SECRET_KEY": settings.secret_key,
        "JSM_SCIM_JSM_URL": settings.jsm_url,
        "JSM_SCIM_JSM_EMAIL": settings.jsm_email,
        "JSM_SCIM_JSM_API_TOKEN": settings.jsm_api_token,
        "JSM_SCIM_ALLOW_PRIVATE_IDP_URLS": str(settings.allow_private_idp_urls).lower(),
    }
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_import_metadata_file_then_show(settings, tmp_path, sp_metadata, session_factory):
    idp = SamlIdp(tmp_path / "idp", sp_metadata)
    path = tmp_path / "idp-metadata.xml"
    path.write_text(idp.metadata_xml())
    result = run_cli(settings, "sso", "import-metadata", str(path), "--group-attribute", "memberOf")
    assert result.exit_code == 0, result.output
    with session_factory() as session:
        stored = load_idp(session)
    assert stored.entity_id == idp.entity_id and stored.sso_url == SSO_URL
    assert stored.certificates == idp.settings().certificates
    assert stored.attribute_map == {"groups": "memberOf"} and stored.allow_idp_initiated is False
    shown = run_cli(settings, "sso", "show", "--json")
    data = json.loads(shown.output)
    assert data["sp"]["acs_url"] == "http://testserver/saml/acs"
    assert data["idp"]["entity_id"] == idp.entity_id and data["idp"]["certificates"][0]["sha256"]
    assert data["idp"]["certificates"][0]["expired"] is False and data["idp"]["allow_idp_initiated"] is False


def test_configure_manually(settings, tmp_path, sp_metadata, session_factory):
    idp = SamlIdp(tmp_path / "idp", sp_metadata)
    result = run_cli(settings, "sso", "configure", "--entity-id", "https://okta.example/exk1",
                     "--sso-url", "https://okta.example/sso/saml", "--cert-file", str(idp.cert_path),
                     "--map", "email=mail", "--allow-idp-initiated")
    assert result.exit_code == 0, result.output
    with session_factory() as session:
        stored = load_idp(session)
    assert stored.entity_id == "https://okta.example/exk1" and stored.allow_idp_initiated
    assert stored.attribute_map == {"email": "mail"}


def test_configure_rejects_bad_input(settings, tmp_path):
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    result = run_cli(settings, "sso", "configure", "--entity-id", "x", "--sso-url", "https://idp/sso", "--cert-file", str(bad))
    assert result.exit_code != 0 and "certificate" in result.output


def test_metadata_sources_are_restricted(tmp_path):
    with pytest.raises(MetadataError, match="http"):
        read_source("http://idp.example/metadata")
    with pytest.raises(MetadataError, match="unsupported"):
        read_source("ftp://idp.example/metadata")
    xxe = tmp_path / "xxe.xml"
    xxe.write_text('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]><r>&x;</r>')
    with pytest.raises(MetadataError, match="safe"):
        parse_idp_metadata(read_source(f"file://{xxe}"))
    with pytest.raises(MetadataError, match="no SAML identity provider"):
        parse_idp_metadata(b'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"/>')


def test_links_lists_every_portal(settings, client, jsm_emulator):
    result = run_cli(settings, "sso", "links", "--json")
    assert result.exit_code == 0, result.output
    items = json.loads(result.output)
    links = {item["projectKey"]: item["loginUrl"] for item in items}
    assert links == {"HELP": "http://testserver/portal/1", "BILL": "http://testserver/portal/2"}
    portals = {item["projectKey"]: item["portalUrl"] for item in items}
    assert portals["BILL"] == f"{jsm_emulator.url}/servicedesk/customer/portal/2"
    table = run_cli(settings, "sso", "links")
    assert table.exit_code == 0, table.output
    rows = [line for line in table.output.splitlines() if "/portal/" in line]
    assert len(rows) == 2
    assert any("HELP" in row and "http://testserver/portal/1" in row for row in rows)
    assert any("BILL" in row and "http://testserver/portal/2" in row for row in rows)


def test_links_when_jsm_cannot_list_desks(settings, jsm_emulator):
    """A JSM error (here a 404: no such site) is a one-line error and a non-zero exit, not a trace."""
    result = run_cli(settings.with_overrides(jsm_url=f"{jsm_emulator.url}/no-such-site"), "sso", "links")
    assert result.exit_code != 0
    assert "service desks could not be listed" in result.output


def test_admin_test_page_needs_a_valid_signed_link(client, idp, app, session_factory):
    assert client.get("/saml/test").status_code == 403
    assert client.get("/saml/test?token=forged.token.value").status_code == 403
    link = make_test_link(services_of(app))
    path = link.removeprefix("http://testserver")
    start = client.get(path)
    assert start.status_code == 302
    request_id, _relay = idp.read_request(start.headers["Location"])
    page = Browser(client, idp).post(idp.response_xml(request_id, attributes={
        "email": ["tess@example.com"], "department": ["Support"]
    }, email="tess@example.com"))
    assert page.status_code == 200
    text = page.data.decode()
    assert "department" in text and "Support" in text and "tess@example.com" in text
    assert session_cookie(page) is None  # nobody was logged in
    from sqlalchemy import func, select

    from scim_server.models import User

    with session_factory() as session:
        assert session.scalar(select(func.count()).select_from(User)) == 0


def test_test_link_cli_prints_a_working_link(settings, client, idp):
    result = run_cli(settings, "sso", "test-link", "--minutes", "5")
    link = result.output.strip().splitlines()[-1]
    assert link.startswith("http://testserver/saml/test?token=")
    assert client.get(link.removeprefix("http://testserver")).status_code == 302


@pytest.mark.parametrize("value, expected", [
    ("/portal/12", "/portal/12"),
    ("12", "/portal/12"),
    ("https://evil.example", None),
    ("//evil.example", None),
    ("/\\evil.example", None),
    ("javascript:alert(1)", None),
    ("/portal/12/../../evil", None),
    ("/portal/12?next=https://evil", None),
    ("", None),
    (None, None),
])
def test_safe_target(value, expected):
    assert safe_target(value) == expected


@pytest.mark.parametrize("relay_state, landing", [
    ("http://testserver/portal/2", "/servicedesk/customer/portal/2"),
    ("/portal/2", "/servicedesk/customer/portal/2"),
    ("2", "/servicedesk/customer/portal/2"),
    (None, "/portals"),
])
def test_idp_initiated_relay_state_leads_to_our_portal_links(client, idp, session_factory, relay_state, landing):
    """IdP-initiated logins follow RelayState only to our own portal links (foreign ones are refused:
    see test_rejections); without RelayState the visitor lands on the portal list."""
    configure_idp(session_factory, idp.settings(allow_idp_initiated=True))
    response = Browser(client, idp).post(idp.response_xml(None), relay_state=relay_state)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(landing)


def test_login_link_ignores_foreign_targets(client, idp):
    response = client.get("/saml/login?target=https://evil.example")
    assert response.status_code == 302
    _request_id, relay = idp.read_request(response.headers["Location"])
    assert relay is None


def test_invalid_portal_id_and_unconfigured_sso(client, caplog):
    assert client.get("/portal/abc").status_code == 404
    assert client.get("/portal/1%0A").status_code == 404  # no trailing newline slips through
    response = client.get("/portal/1")
    assert response.status_code == 503 and b"not been set up" in response.data
    posted = client.post("/saml/acs", data={"SAMLResponse": "PHg+"})
    assert posted.status_code == 303 and session_cookie(posted) is None  # post-redirect-get
    shown = client.get(posted.headers["Location"])
    assert shown.status_code == 503 and b"not been set up" in shown.data
    assert [r.getMessage() for r in caplog.records if "no IdP is configured" in r.getMessage()] != []
