"""Login pages of the SSO broker's upstream half: routing, SAML and OIDC logins, portals, logout.

``/login`` picks the connection for the visitor's e-mail (``sso/routing.py``) and starts its
login; the answer (``/saml/acs`` or ``/oidc/callback``) is accepted only in the browser that
started it (``sso/binding.py``), the user is found or created only in the connection's directory
(``sso/identity.py``), and a server-side session starts (``sso/login_session.py``).
"""
from __future__ import annotations

import datetime as dt
import logging
import threading
from urllib.parse import urlencode

from flask import Blueprint, Response, current_app, redirect, render_template, request

from scim_server import metrics
from scim_server.db import transaction, utcnow
from scim_server.idp.registration import registered_sp
from scim_server.services import current_services as services
from scim_server.services import db_session
from scim_server.sso import binding
from scim_server.sso.acs import (
    AcceptedResponse,
    accept_response,
    assertion_from_payload,
    assertion_payload,
    rejection_reason,
    relay_target,
    unknown_request,
    unsolicited_allowed,
)
from scim_server.sso.attributes import Identity, IdentityError, identity_from, identity_from_claims, looks_like_email
from scim_server.sso.authn import authn_request_xml, new_request_id, redirect_url
from scim_server.sso.connections import OIDC, SECRET_PURPOSE, Connection, list_connections, load_connection
from scim_server.sso.identity import LoginRefused, login_user_state, resolve_login
from scim_server.sso.login_session import current_login, end_session, start_session
from scim_server.sso.oidc import (
    OidcProviders,
    OidcRejected,
    authorization_start,
    exchange_code,
    verify_id_token,
)
from scim_server.sso.pages import (
    REFUSED_PATH,
    error_page,
    metadata_response,
    refusal_page,
    refuse,
    sealed_refusal,
)
from scim_server.sso.portal import PORTAL_PATH, PortalCatalog, PortalsUnavailable, is_desk_id, safe_next
from scim_server.sso.response import SamlRejected, ValidatedAssertion
from scim_server.sso.routing import connections_for_email, may_serve
from scim_server.sso.sealed import unseal
from scim_server.sso.sp import service_provider
from scim_server.sso.state import PURPOSE_LOGIN, PURPOSE_TEST, park, take_parked
from scim_server.sso.testlink import tested_connection
from scim_server.sync.worker import converge_user_now

log = logging.getLogger(__name__)

blueprint = Blueprint("sso", __name__)

DEFAULT_LANDING = "/portals"
OIDC_CALLBACK = "/oidc/callback"


def no_store(response: Response) -> Response:
    """Login pages are never cached, framed or leaked through Referer (shared with the IdP views)."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


blueprint.after_request(no_store)


# ------------------------------------------------------------------------------------------------
# Pages
# ------------------------------------------------------------------------------------------------
def refusal(status: int, title: str, message: str, reason: str, protocol: str = "SSO", *, code: str,
            connection: Connection | None = None):
    """A refused login: the reason goes to the admin's log and audit trail, a page with its reference to the visitor."""
    return refuse(status, title, message, reason, protocol=protocol, code=code,
                  connection=connection.name if connection else None,
                  directory=connection.directory if connection else None)


def _saml_refusal(exc: SamlRejected, connection: Connection | None = None):
    return refusal(exc.status, "Sign-in failed", exc.visitor_message, rejection_reason(exc), "SAML", code="saml_rejected",
                   connection=connection)


def _not_configured_page():
    return refuse(503, "Sign-in not configured", "Single sign-on has not been set up yet. Please contact your administrator.",
                  "no IdP is configured (jsm-scim idp add NAME ... or jsm-scim sso import-metadata FILE_OR_URL)",
                  code="not_configured")


@blueprint.get(REFUSED_PATH)
def refused():
    """The refusal page after a POST (post-redirect-get): a reload shows it again and resubmits nothing."""
    found = sealed_refusal(request.args.get("r"))
    if found is None:
        return error_page(404, "Link expired", "This page is no longer available. Please sign in again.")
    return refusal_page(found)


def _portals_unavailable_page():
    return error_page(503, "Portals unavailable", "The service desk list cannot be loaded right now. Please try again shortly.")


def _catalog() -> PortalCatalog:
    catalog = current_app.extensions.get("sso_portal_catalog")
    if catalog is None:
        catalog = current_app.extensions.setdefault("sso_portal_catalog", PortalCatalog(services()))
    return catalog


def _providers() -> OidcProviders:
    providers = current_app.extensions.get("sso_oidc_providers")
    if providers is None:
        providers = current_app.extensions.setdefault(
            "sso_oidc_providers", OidcProviders(services().settings.allow_private_idp_urls))
    return providers


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
    if not _catalog().has_desk(desk_id):
        return _no_such_portal(desk_id)
    log.info("portal %s refused for user %s (not allowed by the mapping rules)", desk_id, user_id)
    return render_template("sso/portals.html", portals=allowed, email=email, requested=desk_id), 403


def _no_such_portal(desk_id: str):
    log.info("portal %s requested: no such service desk in JSM", desk_id)
    return error_page(404, "No such portal", f"There is no portal {desk_id}. Please check the link you followed.")


def _go_to_target(target: str | None, user_id: str, email: str):
    match = PORTAL_PATH.match(target or "")
    if match:
        return _go_to_portal(match.group(1), user_id, email)
    return redirect(target or DEFAULT_LANDING, 302)


def _public_url() -> str:
    return services().settings.effective_public_url


# ------------------------------------------------------------------------------------------------
# Routing: /login
# ------------------------------------------------------------------------------------------------
def _active_login():
    """The current login, if its user still exists and is active in its directory."""
    login = current_login()
    if login is None:
        return None
    if login_user_state(db_session(), login.directory, login.user_id) is None:
        end_session()
        return None
    return login


def _route(hint: str | None, target: str | None, chosen: str | None = None):
    """Start the login of the connection for ``hint`` (or the chosen / only one), else ask."""
    session = db_session()
    if chosen:
        connection = load_connection(session, chosen)
        if connection is None or not may_serve(session, connection, hint):
            return error_page(404, "Unknown sign-in", "This sign-in option does not exist. Please start again.")
        return _start_login(connection, PURPOSE_LOGIN, target, hint)
    if hint:
        if not looks_like_email(hint):
            return _login_form(target, hint, "Please enter your e-mail address.", 400)
        candidates = connections_for_email(session, hint)
        if not candidates:
            return refusal(403, "No sign-in for this address",
                           "There is no sign-in for this e-mail address here. Please check it or contact your administrator.",
                           "no connection serves the e-mail domain of the login hint", code="no_connection")
    else:
        candidates = list_connections(session)
        if not candidates:
            return _not_configured_page()
        if len(candidates) > 1:
            return _login_form(target)
    if len(candidates) == 1:
        return _start_login(candidates[0], PURPOSE_LOGIN, target, hint)
    return render_template("sso/choose.html", title="Choose how to sign in", connections=candidates,
                           target=target, hint=hint), 200


def _login_form(target: str | None, hint: str | None = None, problem: str | None = None, status: int = 200):
    return render_template("sso/login.html", title="Sign in", target=target, hint=hint, problem=problem), status


@blueprint.get("/login")
def login():
    target = safe_next(request.args.get("next"), _public_url())
    hint = (request.args.get("login_hint") or "").strip()[:320] or None
    chosen = request.args.get("connection") or None
    if chosen is None:
        active = _active_login()
        if active is not None:
            return _go_to_target(target, active.user_id, active.email)
    return _route(hint, target, chosen)


@blueprint.post("/login")
def login_form():
    query = {"login_hint": (request.form.get("email") or "").strip()[:320]}
    target = safe_next(request.form.get("next"), _public_url())
    if target:
        query["next"] = target
    return redirect("/login?" + urlencode(query), 303)


@blueprint.get("/saml/login")
def saml_login():
    """The old login link: ``/login`` with ``target`` as ``next``."""
    target = safe_next(request.args.get("target"), _public_url())
    return _route(None, target)


@blueprint.get("/portal/<desk_id>")
def portal(desk_id: str):
    if not is_desk_id(desk_id):
        return error_page(404, "No such portal", "This portal link is not valid. Please check the link you followed.")
    if registered_sp(db_session()) is not None:  # JSM's customer SSO signs in through /idp/sso
        return _jsm_portal(desk_id)
    login = _active_login()
    if login is None:
        return _route(None, f"/portal/{desk_id}")
    return _go_to_portal(desk_id, login.user_id, login.email)


def _jsm_portal(desk_id: str):
    try:
        if not _catalog().has_desk(desk_id):
            return _no_such_portal(desk_id)
        return redirect(_catalog().client.portal_url(desk_id), 302)
    except PortalsUnavailable as exc:
        log.error("JSM portal link unavailable: %s", exc)
        return _portals_unavailable_page()


@blueprint.get("/portals")
def portals():
    login = _active_login()
    if login is None:
        return _route(None, None)
    return _portal_list_page(login.user_id, login.email)


@blueprint.get("/logout")
@blueprint.get("/saml/logout")
def logout_page():
    login = current_login()
    return render_template("sso/logout.html", title="Sign out", email=login.email if login else None), 200


@blueprint.post("/logout")
def logout():
    end_session()
    response = current_app.make_response(error_page(200, "Signed out", "You are signed out of the portal links."))
    binding.write_pending(services(), response, [])
    return response


@blueprint.get("/saml/test")
def test_configuration():
    name = tested_connection(services(), request.args.get("token"))
    connection = load_connection(db_session(), name) if name else None
    if connection is None:
        return refuse(403, "Link not valid", "This test link is invalid or has expired. "
                      "Create a new one with `jsm-scim idp test-link NAME`.", "SSO test link invalid or expired",
                      code="test_link_invalid")
    return _start_login(connection, PURPOSE_TEST, None, None)


# ------------------------------------------------------------------------------------------------
# Starting a login through a connection
# ------------------------------------------------------------------------------------------------
def _start_login(connection: Connection, purpose: str, target: str | None, hint: str | None):
    if connection.kind == OIDC:
        return _start_oidc(connection, purpose, target, hint)
    sp = service_provider(services())
    request_id = new_request_id()
    xml = authn_request_xml(sp, connection.saml, request_id, utcnow())
    relay = target if target and PORTAL_PATH.match(target) else None  # RelayState is at most 80 bytes
    response = redirect(redirect_url(sp, connection.saml, xml, relay), 302)
    binding.add_pending(services(), request, response, binding.new_pending(request_id, connection.name, purpose, target))
    return response


def _start_oidc(connection: Connection, purpose: str, target: str | None, hint: str | None):
    try:
        metadata = _providers().metadata(connection.oidc.issuer)
    except OidcRejected as exc:
        return refusal(exc.status, "Sign-in unavailable", exc.visitor_message,
                       f"{exc.reason} (connection {connection.name})", "OIDC", code="provider_unavailable",
                       connection=connection)
    start = authorization_start(metadata, connection.oidc, _public_url() + OIDC_CALLBACK, hint)
    response = redirect(start.url, 302)
    pending = binding.new_pending(start.state, connection.name, purpose, target, start.nonce, start.verifier)
    binding.add_pending(services(), request, response, pending)
    return response


# ------------------------------------------------------------------------------------------------
# SAML: assertion consumer and the browser hop
# ------------------------------------------------------------------------------------------------
@blueprint.get("/saml/metadata")
def metadata():
    from scim_server.sso.sp import metadata_xml

    return metadata_response(metadata_xml(service_provider(services())), "jsm-scim-sp-metadata.xml")


@blueprint.post("/saml/acs")
def acs():
    if not list_connections(db_session()):
        return _not_configured_page()
    sp = service_provider(services())
    try:
        relayed = relay_target(request.form.get("RelayState"), sp.public_url)
        accepted = accept_response(services(), sp, request.form.get("SAMLResponse"))
        if accepted.assertion.in_response_to is None:
            unsolicited_allowed(accepted)
            return _complete_saml(accepted.connection, accepted.assertion, PURPOSE_LOGIN, relayed)
        pending = binding.read_pending(services(), request)
        if pending is None:  # no binding cookie on this (cross-site) POST: hop to a top-level GET
            return _park(accepted, relayed)
        return _answer_pending(accepted.connection, accepted.assertion, pending)
    except SamlRejected as exc:
        return _saml_refusal(exc)


def _answer_pending(connection: Connection, assertion: ValidatedAssertion, pending: list[binding.PendingLogin]):
    entry = binding.find_pending(pending, assertion.in_response_to)
    if entry is None or entry.connection != connection.name:
        raise unknown_request(assertion)
    return _forget(_complete_saml(connection, assertion, entry.purpose, entry.target), entry)


def _park(accepted: AcceptedResponse, relayed: str | None):
    with transaction(services().session_factory) as session:
        handle = park(session, {"connection": accepted.connection.name, "relayed": relayed,
                                "assertion": assertion_payload(accepted.assertion)}, utcnow())
    return redirect("/saml/continue?" + urlencode({"h": handle}), 303)


@blueprint.get("/saml/continue")
def saml_continue():
    with transaction(services().session_factory) as session:
        parked = take_parked(session, request.args.get("h") or "", utcnow())
    if parked is None:
        return refusal(400, "Sign-in failed", "This sign-in attempt is unknown or has expired. Please sign in again.",
                       "SAML continue link unknown, expired or already used", "SAML", code="unknown_attempt")
    assertion = assertion_from_payload(parked["assertion"])
    connection = load_connection(db_session(), parked["connection"])
    try:
        if connection is None:
            raise SamlRejected("the connection was removed during the login", "Please sign in again.")
        return _answer_pending(connection, assertion, binding.read_pending(services(), request) or [])
    except SamlRejected as exc:
        return _saml_refusal(exc)


def _complete_saml(connection: Connection, assertion: ValidatedAssertion, purpose: str, target: str | None):
    if purpose == PURPOSE_TEST:
        return _test_result(connection, lambda: identity_from(assertion, connection.attribute_map),
                            assertion=assertion)
    try:
        identity = identity_from(assertion, connection.attribute_map)
    except IdentityError as exc:
        return refusal(400, "Sign-in failed", "Your identity provider did not send an e-mail address for you. "
                       "Please contact your administrator.",
                       f"{exc} (connection {connection.name}, assertion_id={assertion.assertion_id!r})", "SAML",
                       code="no_email", connection=connection)
    return _log_in(connection, identity, assertion.session_not_on_or_after, target)


# ------------------------------------------------------------------------------------------------
# OpenID Connect: the redirect back from the provider
# ------------------------------------------------------------------------------------------------
@blueprint.get(OIDC_CALLBACK)
def oidc_callback():
    state = request.args.get("state") or ""
    entry = binding.find_pending(binding.read_pending(services(), request), state)
    if entry is None:
        return refusal(400, "Sign-in failed", "This sign-in attempt is unknown or has expired. Please sign in again.",
                       "callback state matches no login started in this browser "
                       "(unknown, expired, already used, or started in another browser)", "OIDC",
                       code="unknown_attempt")
    connection = load_connection(db_session(), entry.connection)
    if connection is None or connection.kind != OIDC:
        return refusal(400, "Sign-in failed", "Please sign in again.", "the connection was removed during the login",
                       "OIDC", code="connection_removed")
    if request.args.get("error"):
        return refusal(403, "Sign-in failed", "Your identity provider did not sign you in.",
                       f"the provider returned error={request.args.get('error', '')[:100]!r} "
                       f"(connection {connection.name})", "OIDC", code="provider_error", connection=connection)
    returned_issuer = request.args.get("iss")
    if returned_issuer is not None and returned_issuer != connection.oidc.issuer:  # RFC 9207 mix-up defence
        response = refusal(400, "Sign-in failed", "The sign-in response was not valid.",
                           f"callback iss {returned_issuer[:200]!r} is not the connection's issuer "
                           f"(connection {connection.name})", "OIDC", code="issuer_mismatch", connection=connection)
        return _forget(response, entry)
    try:
        claims = _verified_claims(connection, entry, request.args.get("code") or "")
    except OidcRejected as exc:
        response = refusal(exc.status, "Sign-in failed", exc.visitor_message,
                           f"{exc.reason} (connection {connection.name})", "OIDC", code="oidc_rejected",
                           connection=connection)
        return _forget(response, entry)
    if entry.purpose == PURPOSE_TEST:
        result = _test_result(connection, lambda: identity_from_claims(claims, connection.attribute_map), claims=claims)
        return _forget(result, entry)
    try:
        identity = identity_from_claims(claims, connection.attribute_map)
    except IdentityError:
        response = refusal(400, "Sign-in failed", "Your identity provider did not send an e-mail address for you. "
                           "Please contact your administrator.",
                           f"the ID token has no e-mail claim (connection {connection.name})", "OIDC",
                           code="no_email", connection=connection)
        return _forget(response, entry)
    return _forget(_log_in(connection, identity, None, entry.target), entry)


def _verified_claims(connection: Connection, entry: binding.PendingLogin, code: str) -> dict:
    if not code or len(code) > 2000:
        raise OidcRejected("OIDC callback without an authorization code")
    providers = _providers()
    metadata = providers.metadata(connection.oidc.issuer)
    secret = unseal(services(), SECRET_PURPOSE, connection.oidc.client_secret_sealed)
    tokens = exchange_code(metadata, connection.oidc, secret, code, entry.verifier or "",
                           _public_url() + OIDC_CALLBACK, services().settings.allow_private_idp_urls)
    return verify_id_token(providers, metadata, connection.oidc, tokens["id_token"], entry.nonce or "")


def _forget(result, entry: binding.PendingLogin):
    """The state is used once, whatever the outcome: drop it from the browser's cookie."""
    response = current_app.make_response(result)
    binding.remove_pending(services(), request, response, entry.id)
    return response


# ------------------------------------------------------------------------------------------------
# Completing a login (both protocols)
# ------------------------------------------------------------------------------------------------
def _log_in(connection: Connection, identity: Identity, idp_session_limit: dt.datetime | None, target: str | None):
    try:
        user = resolve_login(services().session_factory, connection, identity)
    except LoginRefused as exc:
        return refusal(exc.status, exc.title, exc.message, f"{exc.reason} (connection {connection.name})",
                       connection.kind.upper(), code=exc.code, connection=connection)
    metrics.observe_login(connection.name, "success", "created" if user.created else "existing")
    converge_now(user.user_id)
    start_session(user.user_id, user.email, user.directory, connection.name, idp_session_limit)
    log.info("login: user %s (directory %s, connection %s, created=%s)", user.user_id, user.directory,
             connection.name, user.created)
    return _go_to_target(target, user.user_id, user.email)


def converge_now(user_id: str) -> None:
    """Push the user to JSM, waiting at most ``login_converge_deadline_s``; the rest goes on in the
    background (and the outbox mark stays for the worker if it fails)."""
    svc = services()

    def push() -> None:
        try:
            converge_user_now(svc, user_id)
        except Exception:  # JSM down must not break anything: the outbox mark stays
            log.warning("immediate JSM convergence of user %s failed; the sync worker will retry", user_id,
                        exc_info=True)

    worker = threading.Thread(target=push, name=f"login-converge-{user_id[:8]}", daemon=True)
    worker.start()
    worker.join(svc.settings.login_converge_deadline_s)
    if worker.is_alive():
        log.warning("JSM is slow: login of user %s goes on without waiting; propagation continues in the background",
                    user_id)


def _test_result(connection: Connection, identify, assertion: ValidatedAssertion | None = None,
                 claims: dict | None = None):
    try:
        identity, problem = identify(), None
    except IdentityError as exc:
        identity, problem = None, str(exc)
    log.info("SSO test login through connection %s completed", connection.name)
    return render_template("sso/test.html", assertion=assertion, claims=claims, identity=identity, problem=problem,
                           connection=connection)
