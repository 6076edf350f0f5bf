"""Fixtures of the downstream-IdP tests: the bridge as the IdP of an independent pysaml2 SP.

The visitor signs in upstream through the pysaml2 test IdP of ``tests/sso`` (the real SAML login),
then the independent SP asks the bridge for an assertion.
"""
from __future__ import annotations

import pytest

from scim_server.db import transaction
from scim_server.idp.registration import RegisteredSp, register_sp
from tests.downstream.sp import IndependentSp
from tests.sso.conftest import browser, idp, make_app, settings, sp_metadata  # noqa: F401  (shared fixtures)

EMAIL = "alice@example.com"


def register(session_factory, entity_id: str, acs_url: str) -> None:
    with transaction(session_factory) as session:
        register_sp(session, RegisteredSp(entity_id, acs_url))


@pytest.fixture
def independent_sp(client, session_factory) -> IndependentSp:
    """The SP, registered with the bridge (as ``sso atlassian --entity-id --acs-url`` does)."""
    provider = IndependentSp(client.get("/idp/metadata").data.decode())
    register(session_factory, provider.entity_id, provider.acs_url)
    return provider


@pytest.fixture
def signed_in(browser):  # noqa: F811
    """The test client holds a bridge session for EMAIL, made by the real upstream SAML login."""
    response = browser.login("/saml/login", email=EMAIL)
    assert response.status_code == 302, response.data
    return browser
