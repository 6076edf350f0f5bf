"""The assertion consumer: a validated Response of a configured SAML connection, consumed once.

The connection is the one whose entity ID the (not yet verified) Issuer names; its certificates
then decide. The assertion ID must never have been accepted before (one INSERT, so a replay in
any worker fails). Whether ``InResponseTo`` answers a request this browser started is checked
by the caller against the browser's binding cookie (``sso/binding.py``).
"""
from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from typing import Any

from scim_server.db import transaction, utcnow
from scim_server.services import Services
from scim_server.sso.connections import Connection, saml_connections_for_issuer
from scim_server.sso.portal import safe_target
from scim_server.sso.response import (
    CLOCK_SKEW,
    NS,
    Expectations,
    SamlRejected,
    ValidatedAssertion,
    decode_post_binding,
    parse_response,
    validate_response,
)
from scim_server.sso.safexml import text_of
from scim_server.sso.sp import ServiceProvider
from scim_server.sso.state import AssertionReplayed, consume_assertion, purge_expired

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AcceptedResponse:
    assertion: ValidatedAssertion
    connection: Connection


def claimed_issuer(xml: bytes) -> str | None:
    """The Assertion's (else the Response's) Issuer as received: only to choose the certificates."""
    root = parse_response(xml)
    for path in ("saml:Assertion/saml:Issuer", "saml:Issuer"):
        issuer = text_of(root.find(path, NS))
        if issuer:
            return issuer.strip()
    return None


def accept_response(services: Services, sp: ServiceProvider, saml_response: str | None) -> AcceptedResponse:
    """Validate and consume one posted ``SAMLResponse``; raise :class:`SamlRejected` otherwise."""
    now = utcnow()
    xml = decode_post_binding(saml_response)
    issuer = claimed_issuer(xml)
    with services.session_factory() as session:
        connections = saml_connections_for_issuer(session, issuer) if issuer else []
    if not connections:
        raise SamlRejected(f"the Issuer {str(issuer)[:200]!r} is no configured SAML connection",
                           "The sign-in response was not valid.")
    assertion, connection = _validated(xml, sp, connections, now)
    try:
        with transaction(services.session_factory) as session:
            purge_expired(session, now)
            consume_assertion(session, assertion.assertion_id, (assertion.valid_until or now) + CLOCK_SKEW)
    except AssertionReplayed:
        raise SamlRejected(
            "assertion replayed (its ID was accepted before)",
            "This sign-in response was already used. Please sign in again.",
            assertion_id=assertion.assertion_id,
        ) from None
    return AcceptedResponse(assertion, connection)


def _validated(xml: bytes, sp: ServiceProvider, connections: list[Connection], now: dt.datetime):
    """The assertion as verified with the first connection (of those sharing the Issuer) it satisfies."""
    first_error: SamlRejected | None = None
    for connection in connections:
        expect = Expectations(idp=connection.saml, sp_entity_id=sp.entity_id, acs_url=sp.acs_url, now=now)
        try:
            return validate_response(xml, expect), connection
        except SamlRejected as exc:
            first_error = first_error or exc
    raise first_error


def unsolicited_allowed(accepted: AcceptedResponse) -> None:
    if not accepted.connection.allow_idp_initiated:
        raise SamlRejected(
            "unsolicited Response (no InResponseTo) while IdP-initiated login is disabled",
            "Please start signing in from the portal link rather than from the identity provider.",
            assertion_id=accepted.assertion.assertion_id,
        )


def unknown_request(assertion: ValidatedAssertion) -> SamlRejected:
    return SamlRejected(
        "InResponseTo matches no pending AuthnRequest started in this browser (unknown, expired, "
        "already answered, or started in another browser)",
        "This sign-in attempt is unknown or has expired. Please sign in again.",
        assertion_id=assertion.assertion_id,
        in_response_to=assertion.in_response_to,
    )


def assertion_payload(assertion: ValidatedAssertion) -> dict[str, Any]:
    data = asdict(assertion)
    for key in ("valid_until", "session_not_on_or_after"):
        data[key] = data[key].isoformat() if data[key] is not None else None
    return data


def assertion_from_payload(data: dict[str, Any]) -> ValidatedAssertion:
    values = dict(data)
    for key in ("valid_until", "session_not_on_or_after"):
        values[key] = dt.datetime.fromisoformat(values[key]) if values.get(key) else None
    return ValidatedAssertion(**values)


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


def rejection_reason(exc: SamlRejected) -> str:
    """What the admin's log and audit trail get: the reason and protocol IDs, never assertion contents."""
    ids = " ".join(f"{name}={value[:100]!r}" for name, value in sorted(exc.ids.items()))
    return f"SAML response rejected: {exc.reason[:500]} {ids}".rstrip()
