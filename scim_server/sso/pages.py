"""The customer pages' frame: branding, security headers, refusals with a reference, error pages.

Every HTML page the bridge serves extends ``sso/base.html`` (the company's name, logo, colour and
support contact from the settings, always escaped). Every HTML answer carries a
Content-Security-Policy without inline script (styles from the static stylesheet, plus one
nonce'd ``<style>`` for the brand colour), ``nosniff`` and a Referrer-Policy.

A refused sign-in gets a reference ID shown on the page with the time (UTC) and in the WARNING
log line with the reason. A refusal attributable to a connection (the visitor reached a company's
IdP) is also an audit event (``login.refused``, target = the reference: ``jsm-scim audit list
--target REF``); anonymous ones (a garbage POST, a guessed link) are logged only, so that anyone
on the internet cannot fill the audit table. A refusal answering a POST (the SAML ACS) is a 303 to
``/refused?r=TOKEN``: the page's contents sealed (encrypted, authenticated, one hour) with the
installation secret, so a reload neither resubmits the form nor stores anything nor shows the
details in the URL.
"""
from __future__ import annotations

import datetime as dt
import json
import logging
import secrets
from dataclasses import asdict, dataclass
from urllib.parse import urlencode, urlsplit

from flask import Flask, Response, current_app, g, redirect, render_template, request
from sqlalchemy import select
from werkzeug.exceptions import HTTPException

from scim_server import audit, metrics
from scim_server.db import transaction, utcnow
from scim_server.models import Directory
from scim_server.services import current_services
from scim_server.sso.sealed import SealBroken, seal, unseal

log = logging.getLogger(__name__)

REFUSED_ACTION = "login.refused"
REFUSED_PATH = "/refused"
REFUSAL_LINK_SECONDS = 3600
_PURPOSE = "refusal-page"
_ERROR_TEXT = {
    404: ("Page not found", "There is no page at this address. Please check the link you followed."),
    405: ("Not allowed", "This page cannot be used this way. Please go back and follow a link instead."),
    500: ("Something went wrong", "The page could not be shown because of an error on our side. Please try again."),
}


@dataclass(frozen=True)
class Refusal:
    status: int
    title: str
    message: str
    reference: str
    at: str  # "YYYY-MM-DD HH:MM:SS UTC"


# ------------------------------------------------------------------------------------------------
# Rendering and headers
# ------------------------------------------------------------------------------------------------
def csp_nonce() -> str:
    nonce = g.get("csp_nonce")
    if nonce is None:
        nonce = g.csp_nonce = secrets.token_urlsafe(16)
    return nonce


def _brand() -> dict[str, object]:
    settings = current_services().settings
    return {"name": settings.brand_name, "logo_url": settings.brand_logo_url, "color": settings.brand_color,
            "support": settings.support_contact}


def content_security_policy(nonce: str, logo_url: str | None) -> str:
    """No script but our own files, styles from our stylesheet or the nonce, images from us or the logo's origin."""
    images = "'self'"
    if logo_url:
        parts = urlsplit(logo_url)
        images += f" {parts.scheme}://{parts.netloc}"
    return (f"default-src 'none'; script-src 'self'; style-src 'self' 'nonce-{nonce}'; img-src {images}; "
            "frame-ancestors 'none'; base-uri 'none'")


def security_headers(response: Response) -> Response:
    """On every answer nosniff; on HTML pages also the CSP and a Referrer-Policy. (The ``Server``
    header is the HTTP server's: waitress says ``jsm-scim-bridge``, gunicorn ``gunicorn``, no versions.)"""
    response.headers["X-Content-Type-Options"] = "nosniff"
    if response.mimetype == "text/html":
        response.headers.setdefault("Content-Security-Policy",
                                    content_security_policy(csp_nonce(), current_services().settings.brand_logo_url))
        response.headers.setdefault("Referrer-Policy", "no-referrer")
    return response


def install(app: Flask) -> None:
    app.context_processor(lambda: {"brand": _brand(), "csp_nonce": csp_nonce})
    app.after_request(security_headers)


def page(template: str, status: int = 200, **context: object):
    return render_template(template, **context), status


def error_page(status: int, title: str, message: str):
    return page("sso/error.html", status, title=title, message=message)


def http_error_page(error: HTTPException):
    """The styled 404/405/500... page of a browser route (SCIM routes keep their SCIM errors)."""
    code = error.code or 500
    title, message = _ERROR_TEXT.get(code, (error.name, "The request could not be answered."))
    response = current_app.make_response(error_page(code, title, message))
    if code == 405 and getattr(error, "valid_methods", None):
        response.headers["Allow"] = ", ".join(sorted(error.valid_methods or ()))
    return response


def metadata_response(xml: bytes | str, filename: str) -> Response:
    """SAML metadata: shown in a browser (it asks for HTML, or ``?download=0``), a download with
    ``?download=1``, and ``application/samlmetadata+xml`` for IdPs and scripts."""
    wanted = request.args.get("download")
    browser = request.accept_mimetypes.best_match(["text/html", "application/samlmetadata+xml"]) == "text/html"
    if wanted == "0" or (wanted is None and browser):
        return Response(xml, mimetype="text/xml")
    response = Response(xml, mimetype="application/samlmetadata+xml")
    if wanted == "1":
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


# ------------------------------------------------------------------------------------------------
# Refusals
# ------------------------------------------------------------------------------------------------
def new_reference() -> str:
    return "R-" + secrets.token_hex(5).upper()


def refuse(status: int, title: str, message: str, reason: str, *, protocol: str = "SSO", code: str = "refused",
           connection: str | None = None, directory: str | None = None):
    """A refused sign-in: logged with its reason, audited and counted under a reference ID that the page shows."""
    now = utcnow()
    refusal = Refusal(status, title, message, new_reference(), now.strftime("%Y-%m-%d %H:%M:%S UTC"))
    log.warning("%s login refused [ref %s]: %s", protocol, refusal.reference, reason[:500],
                extra={"reference": refusal.reference, "connection": connection, "reason_code": code})
    metrics.observe_login(connection or "-", "refused", code)
    if connection:
        _audit_refusal(refusal, now, reason, protocol, code, connection, directory)
    if request.method == "POST":
        token = seal(current_services(), _PURPOSE, json.dumps(asdict(refusal)))
        return redirect(f"{REFUSED_PATH}?{urlencode({'r': token})}", 303)
    return refusal_page(refusal)


def refusal_page(refusal: Refusal):
    return page("sso/error.html", refusal.status, title=refusal.title, message=refusal.message,
                reference=refusal.reference, at=refusal.at)


def _audit_refusal(refusal: Refusal, at: dt.datetime, reason: str, protocol: str, code: str, connection: str,
                   directory: str | None) -> None:
    try:
        with transaction(current_services().session_factory) as session:
            directory_id = session.scalar(select(Directory.id).where(Directory.name == directory)) if directory else None
            audit.record(session, action=REFUSED_ACTION, target_type="login", target_id=refusal.reference,
                         directory_id=directory_id, actor=f"sso:{connection}", at=at,
                         detail={"reason": reason[:500], "code": code, "protocol": protocol, "connection": connection,
                                 "status": refusal.status})
    except Exception:  # the visitor still gets the page; the log line above has the reason
        log.exception("refusal %s could not be audited", refusal.reference)


def sealed_refusal(token: str | None) -> Refusal | None:
    """The refusal a ``/refused`` link carries, if this installation sealed it within the hour."""
    try:
        data = json.loads(unseal(current_services(), _PURPOSE, token or "", REFUSAL_LINK_SECONDS))
        return Refusal(int(data["status"]), str(data["title"]), str(data["message"]), str(data["reference"]),
                       str(data["at"]))
    except (SealBroken, ValueError, KeyError, TypeError):
        return None
