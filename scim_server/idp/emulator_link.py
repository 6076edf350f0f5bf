"""``jsm-scim serve`` with the built-in JSM emulator: the emulator's customer SSO trusts the bridge.

The emulator is registered as the service provider and its SSO is turned on with the bridge's
IdP metadata, so a new user sees the whole customer login work without an Atlassian site.
"""
from __future__ import annotations

import logging

from scim_server.db import transaction
from scim_server.idp.identity import identity_provider
from scim_server.idp.metadata import idp_metadata_xml
from scim_server.idp.registration import RegisteredSp, register_sp
from scim_server.services import Services

log = logging.getLogger(__name__)


def connect_emulator_sso(services: Services, emulator_server) -> None:
    """Register ``emulator_server`` (an ``EmulatorServer``) as the SP and turn its SSO on."""
    sso = emulator_server.emulator.sso
    url = emulator_server.url
    with transaction(services.session_factory) as session:
        register_sp(session, RegisteredSp(sso.sp_entity_id(url), sso.acs_url(url)))
    sso.enable(idp_metadata_xml(identity_provider(services)))
    log.info("emulator customer SSO on: its portal %s/servicedesk/customer/portal/1 signs in through %s",
             url, identity_provider(services).sso_url)
