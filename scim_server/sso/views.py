"""SAML login shim: SP metadata, SP-initiated login, the assertion consumer and portal links."""
from __future__ import annotations

import datetime as dt
import logging

from flask import Blueprint, Response, current_app, redirect, render_template, request

from scim_server.db import transaction, utcnow
from scim_server.idp.registration import registered_sp
from scim_server.models import User
from scim_server.services import current_services as services
from scim_server.services import db_session
from scim_server.sso.acs import AcceptedResponse, accept_response, log_rejection, relay_target
from scim_server.sso.attributes import Identity, IdentityError, identity_from
from scim_server.sso.authn import authn_request_xml, new_request_id, redirect_url
from scim_server.sso.idp_config import IdpSettings, load_idp
from scim_server.sso.jit import ProvisioningError, provision
from scim_server.sso.login_session import current_login, end_session, start_session
from scim_server.sso.portal import PORTAL_PATH, PortalCatalog, PortalsUnavailable, is_desk_id, safe_target
from scim_server.sso.response import SamlRejected
from scim_server.sso.sp import metadata_xml, service_provider
from scim_server.sso.state import PURPOSE_LOGIN, PURPOSE_TEST, IssuedRequest, remember_request
from scim_server.sso.testlink import test_token_valid
from scim_server.sync.worker import converge_user_now

log = logging.getLogger(__name__)

blueprint = Blueprint("sso", __name__)

DEFAULT_LANDING = "/portals"


@blueprint.after_request
def _no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


# ------------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------------
def error_page(status: int, title: str, message: str):
    return render_template("sso/error.html", title=title, message=message), status


def _not_configured_page():
    log.warning("SAML sign-in refused: no IdP is configured (jsm-scim sso import-metadata FILE_OR_URL)")
    return error_page(503, "Sign-in not configured", "Single sign-on has not been set up yet. Please contact your administrator.")


def _portals_unavailable_page():
    return error_page(503, "Portals unavailable", "The service desk list cannot be loaded right now. Please try again shortly.")


def _catalog() -> PortalCatalog:
    catalog = current_app.extensions.get("sso_portal_catalog")
    if catalog is None:
        catalog = current_app.extensions.setdefault("sso_portal_catalog", PortalCatalog(services()))
    return catalog


def _portal_list_page(user_id: str, email: str):
    try:
        portals = _catalog().allowed_portals(user_id)
    except PortalsUnavailable as exc:
        log.error("portal list unavailable: %s", exc)
        return _portals_unavailable_page()
    return render_template("sso/portals.html", portals=portals, email=email, requested=None), 200


def _go_to_portal(desk_id: str, user_id: str, email: str):
    """Redirect to the JSM portal when the user may use it, else the 403 page of allowed portals."""
    try:
        allowed = _catalog().allowed_portals(user_id)
    except PortalsUnavailable as exc:
        log.error("portal access check unavailable: %s", exc)
        return _portals_unavailable_page()
    for portal in allowed:
        if portal.desk_id == desk_id:
            return redirect(portal.portal_url, 302)
    log.info("portal %s refused for user %s (not allowed by the mapping rules)", desk_id, user_id)
    return render_template("sso/portals.html", portals=allowed, email=email, requested=desk_id), 403


def _go_to_target(target: str | None, user_id: str, email: str):
    match = PORTAL_PATH.match(target or "")
    if match:
        return _go_to_portal(match.group(1), user_id, email)
    return redirect(DEFAULT_LANDING, 302)


# ------------------------------------------------------------------------------------------------
# SP-initiated login
# ------------------------------------------------------------------------------------------------
def _configured_idp() -> IdpSettings | None:
    return load_idp(db_session())


def _start_login(purpose: str, target: str | None):
    idp = _configured_idp()
    if idp is None:
        return _not_configured_page()
    sp = service_provider(services())
    issued = IssuedRequest(new_request_id(), purpose, target)
    now = utcnow()
    with transaction(services().session_factory) as session:
        remember_request(session, issued, now)
    xml = authn_request_xml(sp, idp, issued.id, now)
    return redirect(redirect_url(sp, idp, xml, target), 302)


def _active_login():
    """The current login, if its user still exists and is active (deprovisioning ends sessions)."""
    login = current_login()
    if login is None:
        return None
    user = db_session().get(User, login.user_id)
    if user is None or not user.active:
        end_session()
        return None
    return login


@blueprint.get("/saml/metadata")
def metadata():
    xml = metadata_xml(service_provider(services()))
    return Response(xml, mimetype="application/samlmetadata+xml")


@blueprint.get("/saml/login")
def login():
    return _start_login(PURPOSE_LOGIN, safe_target(request.args.get("target"), services().settings.effective_public_url))


@blueprint.get("/portal/<desk_id>")
def portal(desk_id: str):
    if not is_desk_id(desk_id):
        return error_page(404, "Unknown portal", "This portal link is not valid.")
    if registered_sp(db_session()) is not None:  # JSM's customer SSO signs in through /idp/sso
        return _jsm_portal(desk_id)
    login = _active_login()
    if login is None:
        return _start_login(PURPOSE_LOGIN, f"/portal/{desk_id}")
    return _go_to_portal(desk_id, login.user_id, login.email)


def _jsm_portal(desk_id: str):
    try:
        return redirect(_catalog().client.portal_url(desk_id), 302)
    except PortalsUnavailable as exc:
        log.error("JSM portal link unavailable: %s", exc)
        return _portals_unavailable_page()


@blueprint.get("/portals")
def portals():
    login = _active_login()
    if login is None:
        return _start_login(PURPOSE_LOGIN, None)
    return _portal_list_page(login.user_id, login.email)


@blueprint.get("/saml/logout")
def logout():
    end_session()
    return render_template("sso/error.html", title="Signed out", message="You are signed out of the portal links."), 200


@blueprint.get("/saml/test")
def test_configuration():
    if not test_token_valid(services(), request.args.get("token")):
        return error_page(403, "Link not valid", "This test link is invalid or has expired. Create a new one with `jsm-scim sso test-link`.")
    return _start_login(PURPOSE_TEST, None)


# ------------------------------------------------------------------------------------------------
# Assertion consumer
# ------------------------------------------------------------------------------------------------
@blueprint.post("/saml/acs")
def acs():
    idp = _configured_idp()
    if idp is None:
        return _not_configured_page()
    sp = service_provider(services())
    try:
        relayed = relay_target(request.form.get("RelayState"), sp.public_url)
        accepted = accept_response(services(), sp, idp, request.form.get("SAMLResponse"))
    except SamlRejected as exc:
        log_rejection(exc)
        return error_page(exc.status, "Sign-in failed", exc.visitor_message)
    if accepted.request is not None and accepted.request.purpose == PURPOSE_TEST:
        return _test_result(accepted, idp)
    try:
        identity = identity_from(accepted.assertion, idp.attribute_map)
    except IdentityError as exc:
        log.warning("SAML login refused: %s (assertion_id=%r)", exc, accepted.assertion.assertion_id)
        return error_page(400, "Sign-in failed", "Your identity provider did not send an e-mail address for you. Please contact your administrator.")
    # SP-initiated: the target we stored with the request; IdP-initiated: the checked RelayState.
    target = accepted.request.target if accepted.request is not None else relayed
    return _log_in(idp, identity, accepted.assertion.session_not_on_or_after, target)


def _log_in(idp: IdpSettings, identity: Identity, idp_session_limit: dt.datetime | None, target: str | None):
    try:
        user = provision(services().session_factory, identity, idp.jit_directory)
    except ProvisioningError as exc:
        log.warning("SAML login refused: JIT provisioning failed: %s", exc)
        return error_page(400, "Sign-in failed", "Your account details could not be stored. Please contact your administrator.")
    if not user.active:
        log.warning("SAML login refused: user %s is deactivated in directory %s", user.user_id, user.directory_name)
        return error_page(403, "Account deactivated", "Your account is deactivated. Please contact your administrator.")
    converge_now(user.user_id)
    start_session(user.user_id, identity.email, idp_session_limit)
    log.info("SAML login: user %s (directory %s, created=%s)", user.user_id, user.directory_name, user.created)
    return _go_to_target(target, user.user_id, identity.email)


def converge_now(user_id: str) -> None:
    """Push the user to JSM at once so the portal knows them; on failure the worker retries."""
    try:
        converge_user_now(services(), user_id)
    except Exception:  # JSM down must not block the login: the outbox mark stays
        log.warning("immediate JSM convergence of user %s failed; the sync worker will retry", user_id, exc_info=True)


def _test_result(accepted: AcceptedResponse, idp: IdpSettings):
    try:
        identity, problem = identity_from(accepted.assertion, idp.attribute_map), None
    except IdentityError as exc:
        identity, problem = None, str(exc)
    log.info("SAML test login completed (assertion_id=%r)", accepted.assertion.assertion_id)
    return render_template(
        "sso/test.html", assertion=accepted.assertion, identity=identity, problem=problem, idp=idp
    )
