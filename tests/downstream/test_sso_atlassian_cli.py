"""``jsm-scim sso atlassian``: register the SP (by hand or from metadata), replace it, show the values."""
from __future__ import annotations

import json

from cryptography import x509

from scim_server.idp.registration import registered_sp
from tests.sso.test_config_and_cli import run_cli

SP_METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://auth.atlassian.test/saml/abc">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
        Location="https://auth.atlassian.test/redirect" index="0"/>
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
        Location="https://auth.atlassian.test/login/callback?connection=saml-abc" index="1"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


def _stored(session_factory):
    with session_factory() as session:
        return registered_sp(session)


def test_register_by_hand_then_replace_from_metadata(settings, session_factory, tmp_path):
    result = run_cli(settings, "sso", "atlassian", "--entity-id", "https://sp.example.test/one",
                     "--acs-url", "https://sp.example.test/acs")
    assert result.exit_code == 0, result.output
    assert "Identity provider SSO URL:    http://testserver/idp/sso" in result.output
    assert (_stored(session_factory).entity_id, _stored(session_factory).acs_url) == \
        ("https://sp.example.test/one", "https://sp.example.test/acs")

    path = tmp_path / "sp.xml"
    path.write_text(SP_METADATA)
    result = run_cli(settings, "sso", "atlassian", "--sp-metadata", str(path))
    assert result.exit_code == 0, result.output
    stored = _stored(session_factory)  # one SP: the second registration replaced the first
    assert (stored.entity_id, stored.acs_url) == \
        ("https://auth.atlassian.test/saml/abc", "https://auth.atlassian.test/login/callback?connection=saml-abc")


def test_show_json_gives_the_values_to_paste(settings, client, session_factory):
    run_cli(settings, "sso", "atlassian", "--entity-id", "https://sp.example.test/x", "--acs-url",
            "https://sp.example.test/acs")
    result = run_cli(settings, "sso", "atlassian", "--show", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["idp"]["entity_id"] == "http://testserver/idp/metadata"
    assert data["idp"]["sso_url"] == "http://testserver/idp/sso"
    certificate = x509.load_pem_x509_certificate(data["idp"]["certificate"].encode())
    assert certificate.not_valid_after_utc.year >= 2030
    assert data["idp"]["certificate"].split("-----")[2].replace("\n", "") in client.get("/idp/metadata").data.decode()
    assert data["service_provider"]["entity_id"] == "https://sp.example.test/x"


def test_unusable_values_fail_with_one_line_and_change_nothing(settings, session_factory, tmp_path):
    for args in (
        ["--entity-id", "https://sp.example.test/x", "--acs-url", "http://sp.example.test/acs"],  # plain http
        ["--entity-id", "https://sp.example.test/x", "--acs-url", "javascript:alert(1)"],
        ["--entity-id", "https://sp.example.test/x"],
        ["--show", "--entity-id", "x"],
        [],
    ):
        result = run_cli(settings, "sso", "atlassian", *args)
        assert result.exit_code != 0, args
        assert len(result.output.strip().splitlines()) == 1 and result.output.startswith("error:"), result.output
    bad = tmp_path / "bad.xml"
    bad.write_text('<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>')
    result = run_cli(settings, "sso", "atlassian", "--sp-metadata", str(bad))
    assert result.exit_code == 1 and "not safe, well-formed XML" in result.output
    assert _stored(session_factory) is None


def test_metadata_urls_are_fetched_only_over_https(settings, session_factory, jsm_emulator):
    """The emulator's SP metadata is served over http on loopback: refused, one line, nothing stored."""
    result = run_cli(settings, "sso", "atlassian", "--sp-metadata", f"{jsm_emulator.url}/_emulator/sso/sp")
    assert result.exit_code == 1 and result.output.startswith("error:") and len(result.output.strip().splitlines()) == 1
    assert _stored(session_factory) is None
