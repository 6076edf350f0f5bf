"""HTTP side of the downstream IdP: metadata, the SSO service (both bindings) and the resume step.

``/idp/sso`` checks the AuthnRequest, seals it into a short-lived token and either answers at once
(a signed-in, active customer) or sends the visitor to ``/login?next=/idp/resume?request=TOKEN``.
An HTTP-POST request is first turned into a GET of the resume URL (303): a cross-site POST does
not carry the SameSite=Lax session cookie, the top-level GET that follows does.
Every refusal renders the refusal page and logs the reason; the SP gets no Response.
"""
from __future__ import annotations

import base64
import logging
from urllib.parse import urlencode

from flask import Blueprint, Response, redirect, render_template, request

from scim_server import metrics
from scim_server.db import transaction, utcnow
from scim_server.idp.assertion import Subject, signed_response
from scim_server.idp.authn_request import PendingRequest, RequestRefused, check_request, decode_post, decode_redirect
from scim_server.idp.identity import identity_provider
from scim_server.idp.metadata import idp_metadata_xml
from scim_server.idp.pending import mark_answered, resume_path, seal, unseal, was_answered
from scim_server.idp.registration import registered_sp
from scim_server.models import Directory, User
from scim_server.services import current_services as services
from scim_server.services import db_session
from scim_server.sso.identity import login_user_state
from scim_server.sso.login_session import current_login, end_session
from scim_server.sso.pages import metadata_response, refuse
from scim_server.sso.views import no_store
from scim_server.sync.facts import user_facts
from scim_server.sync.planner import account_email

log = logging.getLogger(__name__)

blueprint = Blueprint("idp", __name__)

LOGIN_PATH = "/login"
POST_SCRIPT = "document.getElementById('saml-post').submit();\n"
IDP_CONNECTION = "jsm-idp"  # the login-outcome metric's connection label of sign-ins to JSM
_REFUSED_MESSAGE = "This sign-in request cannot be answered. Please go back to the service desk and try again."


blueprint.after_request(no_store)


def _refuse(status: int, title: str, message: str, reason: str, request_id: str | None = None, *, code: str):
    return refuse(status, title, message, f"{reason} (request_id={request_id!r})", protocol="IdP", code=code,
                  connection=IDP_CONNECTION)


def _refused_request(exc: RequestRefused):
    return _refuse(400, "Sign-in request refused", _REFUSED_MESSAGE, exc.reason, exc.request_id, code="bad_request")


@blueprint.get("/idp/metadata")
def metadata():
    return metadata_response(idp_metadata_xml(identity_provider(services())), "jsm-scim-idp-metadata.xml")


@blueprint.get("/idp/post.js")
def post_script():
    """The auto-submit of the HTTP-POST binding form (a file, so no inline script is needed)."""
    return Response(POST_SCRIPT, mimetype="text/javascript")


@blueprint.route("/idp/sso", methods=["GET", "POST"])
def sso():
    sp = registered_sp(db_session())
    if sp is None:
        return _refuse(503, "Sign-in not set up", "Single sign-on to the service desk has not been set up yet. "
                       "Please contact your administrator.", "no service provider registered (jsm-scim sso atlassian)",
                       code="not_configured")
    source = request.form if request.method == "POST" else request.args
    try:
        decode = decode_post if request.method == "POST" else decode_redirect
        pending = check_request(decode(source.get("SAMLRequest")), source.get("RelayState"), sp,
                                identity_provider(services()).sso_url, utcnow())
        if was_answered(db_session(), pending, utcnow()):
            raise RequestRefused("AuthnRequest was already answered (replay)", pending.request_id)
    except RequestRefused as exc:
        return _refused_request(exc)
    token = seal(services(), pending)
    if request.method == "POST":
        return redirect(resume_path(token), 303)
    return _answer_or_sign_in(pending, token)


@blueprint.get("/idp/resume")
def resume():
    token = request.args.get("request")
    try:
        pending = unseal(services(), token)
    except RequestRefused as exc:
        return _refuse(400, "Sign-in link expired", "This sign-in link is no longer valid. Please go back to the "
                       "service desk and sign in again.", exc.reason, code="link_expired")
    sp = registered_sp(db_session())
    if sp is None or (sp.entity_id, sp.acs_url) != (pending.sp_entity_id, pending.acs_url):
        return _refuse(400, "Sign-in request refused", _REFUSED_MESSAGE,
                       "the service provider registration changed since the request", pending.request_id,
                       code="sp_changed")
    return _answer_or_sign_in(pending, token)


def _answer_or_sign_in(pending: PendingRequest, token: str):
    login = current_login()
    if login is None:
        query = {"next": resume_path(token)}
        if pending.login_hint:
            query["login_hint"] = pending.login_hint
        return redirect(f"{LOGIN_PATH}?{urlencode(query)}", 302)
    session = db_session()
    user = login_user_state(session, _login_directory(login), login.user_id)
    if user is None:
        end_session()
        return _refuse(403, "Account not active", "Your account may not sign in to the service desk. Please contact "
                       "your administrator.", f"user {login.user_id} is deleted or inactive in its directory",
                       pending.request_id, code="deactivated")
    email = account_email(user_facts(user))
    if email is None:
        return _refuse(403, "No e-mail address", "Your account has no e-mail address the service desk can use. "
                       "Please contact your administrator.", f"user {user.id} has no usable e-mail address",
                       pending.request_id, code="no_email")
    return _answer(pending, user, email, login.expires_at)


def _login_directory(login) -> str:
    """The login's directory (interface 3); until the login session records it, the user's own."""
    directory = getattr(login, "directory", None)
    if directory:
        return directory
    user = db_session().get(User, login.user_id)
    directory = db_session().get(Directory, user.directory_id) if user is not None else None
    return directory.name if directory is not None else ""


def _answer(pending: PendingRequest, user: User, email: str, session_limit):
    now = utcnow()
    try:
        with transaction(services().session_factory) as session:
            mark_answered(session, pending, now)
    except RequestRefused as exc:
        return _refused_request(exc)
    subject = Subject(email=email, given_name=user.given_name, family_name=user.family_name,
                      display_name=user.display_name, session_not_on_or_after=session_limit)
    xml = signed_response(identity_provider(services()), pending, subject, now)
    log.info("IdP sign-in: user %s answered for %s (request_id=%r)", user.id, pending.sp_entity_id, pending.request_id)
    page = render_template(
        "idp/post.html",
        acs_url=pending.acs_url,
        saml_response=base64.b64encode(xml).decode("ascii"),
        relay_state=pending.relay_state,
        email=email,
    )
    metrics.observe_login(IDP_CONNECTION, "success", "answered")
    return Response(page, mimetype="text/html")  # the app's CSP: only our script file runs (no form-action:
    # the SP's ACS answers with a redirect to its portal, which form-action would also have to allow)
