"""The assertion consumer: a validated Response, checked against our server-side protocol state.

``InResponseTo`` must consume an AuthnRequest we issued (unless IdP-initiated login is enabled and
the Response answers no request), and the assertion ID must never have been accepted before.
Both happen in one transaction, so a rejected Response burns nothing.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

from scim_server.db import transaction, utcnow
from scim_server.services import Services
from scim_server.sso.idp_config import IdpSettings
from scim_server.sso.portal import safe_target
from scim_server.sso.response import (
    CLOCK_SKEW,
    Expectations,
    SamlRejected,
    ValidatedAssertion,
    decode_post_binding,
    validate_response,
)
from scim_server.sso.sp import ServiceProvider
from scim_server.sso.state import AssertionReplayed, IssuedRequest, consume_assertion, consume_request

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedResponse:
    assertion: ValidatedAssertion
    request: IssuedRequest | None  # None for an IdP-initiated login


def accept_response(
    services: Services, sp: ServiceProvider, idp: IdpSettings, saml_response: str | None
) -> AcceptedResponse:
    """Validate and consume one posted ``SAMLResponse``; raise :class:`SamlRejected` otherwise."""
    now = utcnow()
    expect = Expectations(idp=idp, sp_entity_id=sp.entity_id, acs_url=sp.acs_url, now=now)
    assertion = validate_response(decode_post_binding(saml_response), expect)
    try:
        with transaction(services.session_factory) as session:
            consume_assertion(session, assertion.assertion_id, (assertion.valid_until or now) + CLOCK_SKEW)
            request = _answered_request(session, idp, assertion, now)
    except AssertionReplayed:
        raise SamlRejected(
            "assertion replayed (its ID was accepted before)",
            "This sign-in response was already used. Please sign in again.",
            assertion_id=assertion.assertion_id,
        ) from None
    return AcceptedResponse(assertion, request)


def _answered_request(session, idp: IdpSettings, assertion: ValidatedAssertion, now) -> IssuedRequest | None:
    if assertion.in_response_to is None:
        if idp.allow_idp_initiated:
            return None
        raise SamlRejected(
            "unsolicited Response (no InResponseTo) while IdP-initiated login is disabled",
            "Please start signing in from the portal link rather than from the identity provider.",
            assertion_id=assertion.assertion_id,
        )
    request = consume_request(session, assertion.in_response_to, now)
    if request is None:
        raise SamlRejected(
            "InResponseTo matches no pending AuthnRequest (unknown, expired or already answered)",
            "This sign-in attempt is unknown or has expired. Please sign in again.",
            assertion_id=assertion.assertion_id,
            in_response_to=assertion.in_response_to,
        )
    return request


def relay_target(relay_state: str | None, public_url: str) -> str | None:
    """The portal path a posted RelayState names (None when absent); anything else is refused.

    A legitimate IdP echoes the RelayState we sent (always one of our portal paths) or the
    admin-configured default of an IdP-initiated login; a foreign value is an open-redirect attempt.
    Checked before the Response is consumed, so nothing is burned.
    """
    if not relay_state:
        return None
    target = safe_target(relay_state, public_url)
    if target is None:
        raise SamlRejected(
            "RelayState is not one of our portal links (open redirect refused)",
            "This sign-in link points outside this service, so it was not followed. "
            "Please use the portal link your service desk gave you.",
            relay_state=relay_state,
        )
    return target


def log_rejection(exc: SamlRejected) -> None:
    """One WARNING line for the admin: the reason and protocol IDs, never assertion contents."""
    ids = " ".join(f"{name}={value[:100]!r}" for name, value in sorted(exc.ids.items()))
    log.warning("SAML response rejected: %s %s", exc.reason[:500], ids)
