"""``jsm-scim idp add/list/show/remove/test-link`` and ``sso import-metadata`` setting ``default``."""
from __future__ import annotations

import json

from sqlalchemy import select

from scim_server.models import DirectoryDomain
from scim_server.models.sso import SsoConnection
from scim_server.sso.connections import load_connection
from tests.oidc.fake_op import CLIENT_ID, CLIENT_SECRET
from tests.sso.idp import SamlIdp
from tests.sso.test_config_and_cli import run_cli


def test_add_oidc_connection_list_show_remove(settings, app, fake_op, tmp_path, session_factory, caplog):
    secret = tmp_path / "secret.txt"
    secret.write_text(f"  {CLIENT_SECRET}\n")
    result = run_cli(settings, "idp", "add", "acme", "--directory", "acme", "--oidc-issuer", fake_op.url,
                     "--client-id", CLIENT_ID, "--client-secret-file", str(secret), "--domain", "Acme.test",
                     "--group-attribute", "cognito:groups", "--no-jit")
    assert result.exit_code == 0, result.output
    assert "http://testserver/oidc/callback" in result.output
    with session_factory() as session:
        row = session.get(SsoConnection, "acme")
        assert CLIENT_SECRET not in row.oidc_client_secret_sealed  # encrypted at rest
        assert session.get(DirectoryDomain, "acme.test") is not None
        connection = load_connection(session, "acme")
    assert connection.attribute_map == {"groups": "cognito:groups"} and connection.jit is False
    assert CLIENT_SECRET not in caplog.text

    listed = json.loads(run_cli(settings, "idp", "list", "--json").output)
    assert [(c["name"], c["kind"], c["directory"], c["domains"], c["jit"]) for c in listed] == [
        ("acme", "oidc", "acme", ["acme.test"], "off")]
    shown = run_cli(settings, "idp", "show", "acme").output
    assert fake_op.url in shown and CLIENT_ID in shown and CLIENT_SECRET not in shown and "set (encrypted)" in shown
    link = run_cli(settings, "idp", "test-link", "acme").output.strip().splitlines()[-1]
    assert link.startswith("http://testserver/saml/test?token=")

    again = run_cli(settings, "idp", "add", "acme", "--directory", "acme", "--oidc-issuer", fake_op.url,
                    "--client-id", CLIENT_ID, "--client-secret-file", str(secret))
    assert again.exit_code != 0 and "exists" in again.output
    assert run_cli(settings, "idp", "remove", "acme").exit_code == 0
    assert json.loads(run_cli(settings, "idp", "list", "--json").output) == []
    assert run_cli(settings, "idp", "remove", "acme").exit_code != 0


def test_test_link_shows_the_claims_without_logging_in(settings, app, client, fake_op, tmp_path):
    from tests.oidc.conftest import OidcBrowser
    from tests.sso.conftest import session_cookie

    secret = tmp_path / "secret.txt"
    secret.write_text(CLIENT_SECRET)
    run_cli(settings, "idp", "add", "acme", "--directory", "acme", "--oidc-issuer", fake_op.url,
            "--client-id", CLIENT_ID, "--client-secret-file", str(secret))
    link = run_cli(settings, "idp", "test-link", "acme").output.strip().splitlines()[-1]
    browser = OidcBrowser(client)
    page = browser.callback(browser.authorize(browser.start(link.removeprefix("http://testserver"))))
    assert page.status_code == 200 and b"test successful" in page.data and fake_op.email.encode() in page.data
    assert session_cookie(page) is None


def test_add_refuses_a_domain_of_another_directory(settings, app, fake_op, tmp_path, session_factory):
    assert run_cli(settings, "directories", "create", "bravo", "--domain", "bravo.test").exit_code == 0
    secret = tmp_path / "secret.txt"
    secret.write_text(CLIENT_SECRET)
    result = run_cli(settings, "idp", "add", "acme", "--directory", "acme", "--oidc-issuer", fake_op.url,
                     "--client-id", CLIENT_ID, "--client-secret-file", str(secret), "--domain", "bravo.test")
    assert result.exit_code != 0 and "bravo.test is claimed by another directory" in result.output
    with session_factory() as session:
        assert session.scalars(select(SsoConnection)).all() == []


def test_add_refuses_an_unreachable_issuer_and_a_private_one_by_default(settings, app, fake_op, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(CLIENT_SECRET)
    args = ("idp", "add", "x", "--directory", "x", "--client-id", "c", "--client-secret-file", str(secret))
    missing = run_cli(settings, *args, "--oidc-issuer", fake_op.url + "/no-such-issuer")
    assert missing.exit_code != 0 and "OIDC discovery" in missing.output
    strict = run_cli(settings.with_overrides(allow_private_idp_urls=False), *args, "--oidc-issuer", fake_op.url)
    assert strict.exit_code != 0 and "https" in strict.output


def test_saml_connection_from_metadata_and_reimport_keeps_options(settings, app, tmp_path, session_factory):
    sp_metadata = app.test_client().get("/saml/metadata").data.decode()
    saml = SamlIdp(tmp_path / "idp", sp_metadata)
    metadata = tmp_path / "idp.xml"
    metadata.write_text(saml.metadata_xml())
    added = run_cli(settings, "idp", "add", "beta", "--directory", "beta", "--saml-metadata", str(metadata),
                    "--domain", "beta.test", "--map", "email=mail")
    assert added.exit_code == 0, added.output
    first = run_cli(settings, "sso", "import-metadata", str(metadata), "--directory", "acme",
                    "--allow-idp-initiated", "--map", "groups=memberOf")
    assert first.exit_code == 0, first.output
    again = run_cli(settings, "sso", "import-metadata", str(metadata))  # no options: keep them
    assert again.exit_code == 0, again.output
    with session_factory() as session:
        default, beta = load_connection(session, "default"), load_connection(session, "beta")
    assert (default.directory, default.saml.allow_idp_initiated, default.attribute_map) == (
        "acme", True, {"groups": "memberOf"})
    assert (beta.directory, beta.domains, beta.attribute_map) == ("beta", ("beta.test",), {"email": "mail"})
    listed = {c["name"]: c for c in json.loads(run_cli(settings, "idp", "list", "--json").output)}
    assert set(listed) == {"beta", "default"} and listed["default"]["kind"] == "saml"


def test_add_json_describes_the_connection(settings, app, fake_op, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(CLIENT_SECRET)
    result = run_cli(settings, "idp", "add", "beta", "--directory", "beta", "--oidc-issuer", fake_op.url,
                     "--client-id", CLIENT_ID, "--client-secret-file", str(secret), "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (data["name"], data["kind"], data["directory"], data["issuer"]) == ("beta", "oidc", "beta", fake_op.url)
    assert data["redirect_uri"] == "http://testserver/oidc/callback" and CLIENT_SECRET not in result.output
    assert data["jit_effective"] is True
