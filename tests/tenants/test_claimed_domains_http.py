"""Claimed e-mail domains on SCIM POST, PUT and PATCH, over real HTTP (two and three directories)."""
from __future__ import annotations

import pytest
import requests

from scim_server.store import directories as store
from tests.fixtures.db import issue_token
from tests.tenants.scim_client import PATCH, USER, Scim

ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def tenants(live_server, session_factory):
    """Three directories: tenant-a claims acme.com, tenant-b claims globex.com, tenant-c claims nothing."""
    with session_factory() as session, session.begin():
        store.ensure_directory(session, "tenant-a")
        store.claim_domains(session, "tenant-a", ["acme.com"])
        store.ensure_directory(session, "tenant-b")
        store.claim_domains(session, "tenant-b", ["globex.com"])
    return {name: Scim(live_server, issue_token(session_factory, name, name)) for name in ("tenant-a", "tenant-b", "tenant-c")}


def assert_refused(response: requests.Response, domain: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["schemas"] == [ERROR] and body["scimType"] == "invalidValue" and body["status"] == "400"
    assert domain in body["detail"]
    assert "tenant-" not in response.text  # never names the claiming directory
    assert "alice" not in response.text  # nor its users


@pytest.mark.parametrize("user_name, emails, domain", [
    ("mallory@acme.com", (), "acme.com"),                      # userName
    ("mallory", ("mallory@acme.com",), "acme.com"),            # an e-mail
    ("mallory", ("m@evil.example", "m@ACME.COM"), "acme.com"),  # any of the e-mails, any case
    ("mallory", ("m@mail.acme.com",), "mail.acme.com"),        # a subdomain of the claim
    ("mallory@ａｃｍｅ.com", (), "acme.com"),                   # full-width look-alike
])
def test_post_with_a_domain_another_directory_claims_is_refused(tenants, user_name, emails, domain):
    assert tenants["tenant-a"].create_user("alice@acme.com").status_code == 201
    for other in ("tenant-b", "tenant-c"):
        assert_refused(tenants[other].create_user(user_name, *emails), domain)
        assert tenants[other].user_names() == []  # nothing stored
    assert tenants["tenant-a"].user_names() == ["alice@acme.com"]


def test_the_claiming_directory_and_unclaimed_domains_are_accepted(tenants):
    assert tenants["tenant-a"].create_user("alice@acme.com", "alice@eu.acme.com").status_code == 201
    assert tenants["tenant-a"].create_user("ann@gmail.example").status_code == 201  # a claim is no restriction
    assert tenants["tenant-c"].create_user("carol@gmail.example").status_code == 201  # claims nothing
    assert tenants["tenant-c"].create_user("carl", "carl@initech.example").status_code == 201
    assert tenants["tenant-c"].create_user("not-an-email").status_code == 201


def test_put_and_patch_into_a_claimed_domain_change_nothing(tenants):
    created = tenants["tenant-b"].create_user("bob@globex.com", "bob@globex.com")
    assert created.status_code == 201
    bob = created.json()
    before = tenants["tenant-b"].request("GET", f"Users/{bob['id']}").json()

    put = {"schemas": [USER], "userName": "bob@globex.com", "emails": [{"value": "bob@acme.com"}]}
    assert_refused(tenants["tenant-b"].request("PUT", f"Users/{bob['id']}", put), "acme.com")
    rename = {"schemas": [USER], "userName": "bob@acme.com"}
    assert_refused(tenants["tenant-b"].request("PUT", f"Users/{bob['id']}", rename), "acme.com")
    for operation in (
        {"op": "add", "path": "emails", "value": [{"value": "bob@acme.com", "type": "home"}]},
        {"op": "replace", "path": "userName", "value": "bob@sub.acme.com"},
        {"op": "replace", "value": {"emails": [{"value": "bob@acme.com"}]}},
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "bob@acme.com"},
    ):
        patch = {"schemas": [PATCH], "Operations": [operation]}
        assert_refused(tenants["tenant-b"].request("PATCH", f"Users/{bob['id']}", patch), "acme.com")

    after = tenants["tenant-b"].request("GET", f"Users/{bob['id']}").json()
    assert after == before  # same document, same version (ETag) and lastModified
    # an ordinary change still works
    ok = {"schemas": [PATCH], "Operations": [{"op": "replace", "path": "displayName", "value": "Bob"}]}
    assert tenants["tenant-b"].request("PATCH", f"Users/{bob['id']}", ok).status_code == 200


def test_a_one_directory_installation_needs_no_setup(live_server, session_factory):
    only = Scim(live_server, issue_token(session_factory, "okta", "default"))
    for name in ("a@acme.com", "b@globex.com", "c@anything.example"):
        assert only.create_user(name).status_code == 201
