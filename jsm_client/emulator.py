"""A JSM Cloud emulator: a real HTTP server for the REST subset the bridge uses.

Follows Atlassian's OpenAPI document (``shared/reference/jsm-servicedeskapi-openapi.json``)
for paths, JSON shapes, pagination, status codes and error bodies. It shares no code with
the client on purpose: it is a second implementation of the contract, not a mock.

Test-only endpoints live under ``/_emulator/`` (state, stats, faults, reset); see
CONTRACT.md, section "JSM emulator".
"""

from __future__ import annotations

import html
import json
import logging
import threading
import time
from datetime import datetime, timedelta, timezone
from hmac import compare_digest
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import urlencode

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

from jsm_client.emulator_limits import BurstLimiter
from jsm_client.emulator_sso import EmulatorSso
from jsm_client.emulator_state import ApiError, CustomerRecord, EmulatorState, OrganizationRecord, ServiceDeskRecord
from jsm_client.emulator_store import load_state, save_state

log = logging.getLogger("jsm_client.emulator")

SD = "/rest/servicedeskapi"
PAGE_CAP = 50
USER_SEARCH_CAP = 1000
EXPERIMENTAL_MESSAGE = (
    "This API is experimental. Experimental APIs are not guaranteed to be stable within the preview "
    "period. You must set the header 'X-ExperimentalApi: opt-in' to opt into using this API."
)
FAULT_KEYS = frozenset({"rate_limit_every", "retry_after_s", "error_every", "latency_ms", "error_retry_after_s",
                        "burst_limit", "burst_window_s"})
#: How often a changed state is written to the state file (at most), in seconds.
SAVE_INTERVAL_S = 1.0
#: Effective state changes made through the REST API (``stats["effects"]``): a call that changes
#: nothing (a member already present, an existing organization name) counts no effect, so tests can
#: prove that nothing was applied twice.
EFFECTS = ("customers_created", "organizations_created", "organizations_deleted", "members_added",
           "members_removed", "desk_links_added", "desk_links_removed")

# (method, templated path, handler name); the template is also the stats label.
ROUTES: tuple[tuple[str, str, str], ...] = (
    ("POST", f"{SD}/customer", "create_customer"),
    ("PUT", f"{SD}/customer/user/{{id}}/revoke-portal-only-access", "revoke_portal_only_access"),
    ("GET", f"{SD}/organization", "list_organizations"),
    ("POST", f"{SD}/organization", "create_organization"),
    ("GET", f"{SD}/organization/{{id}}", "get_organization"),
    ("DELETE", f"{SD}/organization/{{id}}", "delete_organization"),
    ("GET", f"{SD}/organization/{{id}}/user", "list_organization_users"),
    ("POST", f"{SD}/organization/{{id}}/user", "add_organization_users"),
    ("DELETE", f"{SD}/organization/{{id}}/user", "remove_organization_users"),
    ("GET", f"{SD}/organization/{{id}}/property", "list_property_keys"),
    ("GET", f"{SD}/organization/{{id}}/property/{{key}}", "get_property"),
    ("PUT", f"{SD}/organization/{{id}}/property/{{key}}", "set_property"),
    ("DELETE", f"{SD}/organization/{{id}}/property/{{key}}", "delete_property"),
    ("GET", f"{SD}/servicedesk", "list_service_desks"),
    ("GET", f"{SD}/servicedesk/{{id}}", "get_service_desk"),
    ("GET", f"{SD}/servicedesk/{{id}}/organization", "list_desk_organizations"),
    ("POST", f"{SD}/servicedesk/{{id}}/organization", "add_desk_organization"),
    ("DELETE", f"{SD}/servicedesk/{{id}}/organization", "remove_desk_organization"),
    ("GET", f"{SD}/servicedesk/{{id}}/customer", "list_desk_customers"),
    ("POST", f"{SD}/servicedesk/{{id}}/customer", "add_desk_customers"),
    ("DELETE", f"{SD}/servicedesk/{{id}}/customer", "remove_desk_customers"),
    ("GET", "/rest/api/3/user/search", "user_search"),
    ("GET", f"{SD}/info", "info"),
    ("GET", "/rest/api/3/myself", "myself"),
    ("GET", "/rest/api/3/mypermissions", "my_permissions"),
    ("GET", "/rest/api/3/user", "get_user"),
)
# Answered without credentials (the OpenAPI doc: "the user does not need to be logged in").
ANONYMOUS = frozenset({("GET", f"{SD}/info")})
# Flagged "x-experimental" in the OpenAPI doc: 412 without X-ExperimentalApi.
EXPERIMENTAL = frozenset({("GET", f"{SD}/servicedesk/{{id}}/customer"), ("DELETE", f"{SD}/servicedesk/{{id}}/customer")})


def _build_url_map() -> Map:
    rules = [
        Rule(template.replace("{", "<").replace("}", ">"), methods=[method], endpoint=(method, template, handler))
        for method, template, handler in ROUTES
    ]
    return Map(rules, strict_slashes=False)


URL_MAP = _build_url_map()


class JsmEmulator:
    """The emulated site: state, request statistics, injected faults and the WSGI app.

    Thread-safe: every request's state access runs under one lock. ``user_search_includes_customers``
    models the unverified question whether ``/rest/api/3/user/search`` returns portal-only accounts.
    """

    def __init__(
        self,
        service_desks: Iterable[str | Mapping[str, Any]] | None = None,
        *,
        expected_email: str | None = None,
        expected_token: str | None = None,
        admin_token: str | None = None,
        user_search_includes_customers: bool = True,
        jira_admin: bool = True,
        state_file: Path | None = None,
    ) -> None:
        self._desk_specs = None if service_desks is None else tuple(service_desks)
        self.expected_email = expected_email
        self.expected_token = expected_token
        self.admin_token = admin_token  # when set, POST /_emulator/* needs "Authorization: Bearer TOKEN"
        self.user_search_includes_customers = user_search_includes_customers
        self.jira_admin = jira_admin  # the service account's global ADMINISTER permission
        self.state_file = state_file  # when set: state loaded from it and saved to it (0600)
        self._lock = threading.RLock()
        self.state = load_state(state_file, self._desk_specs) if state_file else EmulatorState(self._desk_specs)
        self._dirty = False
        self._saver: threading.Thread | None = None
        self._closed = threading.Event()
        self._limiter: BurstLimiter | None = None
        self._faults: dict[str, float] = {}
        self._fault_seq = 0
        self._requests = 0
        self._rate_limited = 0  # 429 answers (burst limit and injected)
        self._by_route: dict[str, int] = {}
        self._effects = dict.fromkeys(EFFECTS, 0)
        self.sso = EmulatorSso(self._sso_sign_in, _text_page, _json)  # customer SSO (off until POST /_emulator/sso)

    # ----------------------------------------------------------- programmatic API

    def state_dict(self) -> dict[str, list[dict[str, Any]]]:
        with self._lock:
            return self.state.snapshot()

    def stats_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"requests": self._requests, "by_route": dict(self._by_route), "effects": dict(self._effects),
                    "rate_limited": self._rate_limited}

    def faults_dict(self) -> dict[str, float]:
        with self._lock:
            return dict(self._faults)

    def set_faults(self, **faults: float | None) -> None:
        """Replace the faults (no arguments clears them) and restart their request count.

        ``rate_limit_every=N``: every Nth API request answers 429 with ``Retry-After:
        retry_after_s`` (default 1). ``error_every=M``: every Mth answers 503 (with
        ``Retry-After: error_retry_after_s`` if given). ``latency_ms``: delay every API request.
        ``burst_limit=N``: at most N requests per route (method and path template) per
        ``burst_window_s`` (default 1) seconds, as Atlassian's burst limits (``emulator_limits``).
        """
        unknown = set(faults) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault settings: {sorted(unknown)}")
        cleaned = {k: float(v) for k, v in faults.items() if v is not None}
        if any(v < 0 for v in cleaned.values()):
            raise ValueError("fault settings must not be negative")
        limit, window = int(cleaned.get("burst_limit", 0)), cleaned.get("burst_window_s", 1.0)
        limiter = BurstLimiter(limit, window) if limit else None  # ValueError for a zero window
        with self._lock:
            self._faults = cleaned
            self._fault_seq = 0
            self._limiter = limiter

    def add_customer(self, email: str, display_name: str | None = None) -> str:
        """Seed a customer in-process (as if created elsewhere); returns its account ID."""
        with self._lock:
            account_id = self.state.create_customer(email, display_name, strict_conflict=True).account_id
        self._changed()
        return account_id

    def add_organization(self, name: str, *, scim_managed: bool = False) -> str:
        """Seed an organization in-process (``scim_managed``: as Atlassian Guard's SCIM makes them)."""
        with self._lock:
            org = self.state.create_organization(name)[0]
            org.scim_managed = scim_managed
            org_id = str(org.id)
        self._changed()
        return org_id

    def delete_customer(self, account_id: str) -> None:
        """Delete an account as an Atlassian admin would (also ``DELETE /_emulator/customers/ID``)."""
        with self._lock:
            self.state.delete_customer(account_id)
        self._changed()

    def reset(self) -> None:
        """Empty state, the initial service desks, cleared stats and faults."""
        with self._lock:
            self.state = EmulatorState(self._desk_specs)
            self._faults, self._fault_seq, self._limiter = {}, 0, None
            self._requests, self._by_route, self._rate_limited = 0, {}, 0
            self._effects = dict.fromkeys(EFFECTS, 0)
        self._changed()

    def configure_site(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """``{"jira_admin": bool, "servicedesks": {KEY: {"openAccess": bool}}}``: the service
        account's Jira administrator permission and each desk's customer access (open or restricted)."""
        unknown = set(settings) - {"jira_admin", "servicedesks"}
        if unknown:
            raise ValueError(f"unknown site settings: {sorted(unknown)}")
        desks = settings.get("servicedesks") or {}
        if not isinstance(desks, dict) or not all(isinstance(v, dict) for v in desks.values()):
            raise ValueError('servicedesks must map project keys to {"openAccess": true|false}')
        with self._lock:
            for key, values in desks.items():
                try:
                    desk = self.state.service_desk(str(key))
                except ApiError:
                    raise ValueError(f"no service desk {key}") from None
                desk.open_access = bool(values.get("openAccess", desk.open_access))
            if "jira_admin" in settings:
                self.jira_admin = bool(settings["jira_admin"])
        self._changed()
        return self.site_dict()

    def site_dict(self) -> dict[str, Any]:
        with self._lock:
            return {"jira_admin": self.jira_admin,
                    "servicedesks": {d.project_key: {"openAccess": d.open_access} for d in self.state.service_desks}}

    # ------------------------------------------------------------ persistence

    def save(self) -> None:
        """Write the state to ``state_file`` now (no-op without one)."""
        if self.state_file is None:
            return
        with self._lock:
            self._dirty = False
            save_state(self.state, self.state_file)

    def close(self) -> None:
        """Stop the background saver and write what changed."""
        self._closed.set()
        if self._saver is not None:
            self._saver.join(timeout=5)
        if self._dirty:
            self.save()

    def _changed(self) -> None:
        """The state changed: saved within ``SAVE_INTERVAL_S`` by one background thread."""
        if self.state_file is None:
            return
        with self._lock:
            self._dirty = True
            if self._saver is None and not self._closed.is_set():
                self._saver = threading.Thread(target=self._save_loop, name="jsm-emulator-save", daemon=True)
                self._saver.start()

    def _save_loop(self) -> None:
        while not self._closed.wait(SAVE_INTERVAL_S):
            if self._dirty:
                try:
                    self.save()
                except OSError:
                    log.exception("could not save the emulator state to %s", self.state_file)

    # ---------------------------------------------------------------- WSGI entry

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._dispatch(request)
        return response(environ, start_response)

    def _dispatch(self, request: Request) -> Response:
        path = request.path
        if path.startswith("/_emulator/sso"):
            return self.sso.admin(request)
        if path.startswith("/_emulator/"):
            return self._admin(request)
        if path.startswith("/servicedesk/customer/portal/"):
            return self._portal_page(request, path.rsplit("/", 1)[-1])
        if path.startswith("/rest/"):
            return self._api(request)
        if path == "/":
            return _text_page("JSM emulator", "Jira Service Management emulator. See /_emulator/state.")
        return _text_page("Not found", "Not found", status=404)

    # ------------------------------------------------------------------ REST API

    def _api(self, request: Request) -> Response:
        platform = request.path.startswith("/rest/api/")
        match = _match(request)
        label = f"{request.method} (unmatched)" if isinstance(match, ApiError) else f"{request.method} {match[0][1]}"
        faults, seq, limits = self._count(label)
        if faults.get("latency_ms"):
            time.sleep(faults["latency_ms"] / 1000)
        fault = _injected_fault(faults, seq, platform)
        request.get_data()  # read (and cache) the body before taking the state lock
        response = self._answer(request, match, platform, fault, limits)
        if response.status_code == 429:
            with self._lock:
                self._rate_limited += 1
        if limits is not None:
            response.headers.update(limits)
        if request.method != "GET" and response.status_code < 400:
            self._changed()
        return response

    def _answer(self, request: Request, match: tuple[tuple[str, str, str], dict[str, str]] | ApiError,
                platform: bool, fault: Response | None, limits: dict[str, str] | None) -> Response:
        try:
            if limits is not None and "Retry-After" in limits:
                raise ApiError(429, "Rate limit exceeded.", "rate.limit.exceeded")
            if fault is not None:
                return fault
            if isinstance(match, ApiError):
                self._authenticate(request)
                raise match
            (method, template, handler), args = match
            if (method, template) not in ANONYMOUS:
                self._authenticate(request)
            if (method, template) in EXPERIMENTAL and not _opted_in(request):
                raise ApiError(412, EXPERIMENTAL_MESSAGE, "sd.rest.experimental.api.optin.required")
            with self._lock:
                answer: Response = getattr(self, f"_h_{handler}")(request, **args)
                return answer
        except ApiError as err:
            return _error(err, platform)

    def _count(self, label: str) -> tuple[dict[str, float], int, dict[str, str] | None]:
        """Count the request; return the fault settings, its number since they were set and, under
        a burst limit, the rate-limit headers of its answer (with ``Retry-After`` when refused)."""
        with self._lock:
            self._requests += 1
            self._by_route[label] = self._by_route.get(label, 0) + 1
            self._fault_seq += 1
            limits = self._limiter.admit(label).headers if self._limiter is not None else None
            return self._faults, self._fault_seq, limits

    def _effect(self, name: str, count: int = 1) -> None:
        """Count an effective change (called by handlers, which run under the state lock)."""
        self._effects[name] += count

    def _authenticate(self, request: Request) -> None:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(401, "Client must be authenticated to access this resource.", "sd.auth.required")
        if self.expected_email is None and self.expected_token is None:
            return
        auth = request.authorization
        ok = (
            auth is not None
            and auth.type == "basic"
            and compare_digest((auth.username or "").encode(), (self.expected_email or "").encode())
            and compare_digest((auth.password or "").encode(), (self.expected_token or "").encode())
        )
        if not ok:
            raise ApiError(401, "Client must be authenticated to access this resource.", "sd.auth.required")

    # -- customers

    def _h_create_customer(self, request: Request) -> Response:
        body = _json_object(request)
        strict = request.args.get("strictConflictStatusCode", "").lower() == "true"
        name = body.get("displayName", body.get("fullName"))
        customer = self.state.create_customer(body.get("email"), name, strict_conflict=strict)
        self._effect("customers_created")
        return _json(_user_dto(customer, request.host_url), 201)

    def _h_revoke_portal_only_access(self, request: Request, id: str) -> Response:
        if not id.startswith("qm:"):
            raise ApiError(400, f"{id} is not a portal-only account.", "sd.customer.revoke.not.portal.only", [id])
        # Shown as "active": false in the state; no API grants it back (an admin does, in Atlassian Administration).
        self.state.customer(id).active = False
        return _no_content()

    def _h_user_search(self, request: Request) -> Response:
        query, account_id = request.args.get("query", ""), request.args.get("accountId")
        if not query.strip() and not account_id:
            raise ApiError(400, "The query parameter 'query' is required, unless accountId or property is specified.")
        start = _int_arg(request, "startAt", 0, minimum=0)
        limit = min(_int_arg(request, "maxResults", 50, minimum=0), USER_SEARCH_CAP)
        found = self.state.search_customers(query, account_id) if self.user_search_includes_customers else []
        # Plain JSON array, filtered first and then paged (Jira platform REST v3 "Find users").
        return _json([_platform_user(c, request.host_url) for c in found[start : start + limit]])

    # -- the site and the service account

    def _h_info(self, request: Request) -> Response:
        host = request.host_url.rstrip("/")
        return _json({"version": "emulator", "platformVersion": "emulator", "buildChangeSet": "emulator",
                      "isLicensedForUse": True, "_links": {"self": f"{host}{SD}/info"}})

    def _h_myself(self, request: Request) -> Response:
        """The service account (an Atlassian account, not a portal-only customer)."""
        email = (request.authorization.username if request.authorization else None) or self.expected_email or ""
        host = request.host_url.rstrip("/")
        return _json({"self": f"{host}/rest/api/3/user?accountId=emulator-service-account",
                      "accountId": "emulator-service-account", "accountType": "atlassian", "emailAddress": email,
                      "displayName": "Bridge service account", "active": True, "timeZone": "UTC", "locale": "en_US"})

    def _h_my_permissions(self, request: Request) -> Response:
        """Jira platform "Get my permissions": ``permissions`` (comma-separated keys) is required."""
        keys = [k.strip() for k in request.args.get("permissions", "").split(",") if k.strip()]
        if not keys:
            raise ApiError(400, "The permissions query parameter is required.")
        granted = {"ADMINISTER": self.jira_admin, "BROWSE_PROJECTS": True}
        return _json({"permissions": {key: {"id": str(index), "key": key, "name": key.replace("_", " ").title(),
                                            "type": "GLOBAL" if key == "ADMINISTER" else "PROJECT",
                                            "description": "", "havePermission": granted.get(key, self.jira_admin)}
                                      for index, key in enumerate(keys)}})
    def _h_get_user(self, request: Request) -> Response:
        account_id = request.args.get("accountId", "")
        if not account_id:
            raise ApiError(400, "The query parameter 'accountId' is required.")
        return _json(_platform_user(self.state.customer(account_id), request.host_url))

    # -- organizations

    def _h_list_organizations(self, request: Request) -> Response:
        orgs = self.state.organizations_of(request.args.get("accountId"))
        return _page(request, orgs, _org_dto)

    def _h_create_organization(self, request: Request) -> Response:
        org, created = self.state.create_organization(_json_object(request).get("name"))
        self._effect("organizations_created", int(created))
        # 201 also for an existing name (the OpenAPI doc: "or the existing organization").
        return _json(_org_dto(org, request.host_url), 201)

    def _h_get_organization(self, request: Request, id: str) -> Response:
        return _json(_org_dto(self.state.organization(id), request.host_url))

    def _h_delete_organization(self, request: Request, id: str) -> Response:
        self.state.delete_organization(id)
        self._effect("organizations_deleted")
        return _no_content()

    def _h_list_organization_users(self, request: Request, id: str) -> Response:
        return _page(request, self.state.members(self.state.organization(id)), _user_dto)

    def _h_add_organization_users(self, request: Request, id: str) -> Response:
        return self._change_members(request, id, add=True)

    def _h_remove_organization_users(self, request: Request, id: str) -> Response:
        return self._change_members(request, id, add=False)

    def _change_members(self, request: Request, org_id: str, *, add: bool) -> Response:
        org = self.state.organization(org_id)
        before = len(org.members)
        self.state.change_members(org, _account_ids(request), add=add)
        self._effect("members_added" if add else "members_removed", abs(len(org.members) - before))
        return _no_content()

    # -- organization properties

    def _h_list_property_keys(self, request: Request, id: str) -> Response:
        org = self.state.organization(id)
        base = f"{request.host_url.rstrip('/')}{SD}/organization/{org.id}/property"
        return _json({"keys": [{"self": f"{base}/{k}", "key": k} for k in org.properties]})

    def _h_get_property(self, request: Request, id: str, key: str) -> Response:
        value = self.state.get_property(self.state.organization(id), key)
        return _json({"key": key, "value": value})

    def _h_set_property(self, request: Request, id: str, key: str) -> Response:
        org = self.state.organization(id)
        raw = request.get_data()
        created = self.state.set_property(org, key, _json_value(request), len(raw))
        return Response(status=201 if created else 200)

    def _h_delete_property(self, request: Request, id: str, key: str) -> Response:
        self.state.delete_property(self.state.organization(id), key)
        return _no_content()

    # -- service desks

    def _h_list_service_desks(self, request: Request) -> Response:
        return _page(request, self.state.service_desks, _desk_dto)

    def _h_get_service_desk(self, request: Request, id: str) -> Response:
        return _json(_desk_dto(self.state.service_desk(id), request.host_url))

    def _h_list_desk_organizations(self, request: Request, id: str) -> Response:
        desk = self.state.service_desk(id)
        return _page(request, self.state.desk_organizations(desk, request.args.get("accountId")), _org_dto)

    def _h_add_desk_organization(self, request: Request, id: str) -> Response:
        return self._link_organization(request, id, add=True)

    def _h_remove_desk_organization(self, request: Request, id: str) -> Response:
        return self._link_organization(request, id, add=False)

    def _link_organization(self, request: Request, desk_id: str, *, add: bool) -> Response:
        desk = self.state.service_desk(desk_id)
        org_id = _json_object(request).get("organizationId")
        if isinstance(org_id, bool) or not isinstance(org_id, (int, str)):
            raise ApiError(400, "organizationId is required and must be an integer.", "sd.organization.id.invalid")
        before = len(desk.organization_ids)
        self.state.link_organization(desk, org_id, add=add)
        self._effect("desk_links_added" if add else "desk_links_removed", abs(len(desk.organization_ids) - before))
        return _no_content()

    def _h_list_desk_customers(self, request: Request, id: str) -> Response:
        desk = self.state.service_desk(id)
        return _page(request, self.state.desk_customers(desk, request.args.get("query")), _user_dto)

    def _h_add_desk_customers(self, request: Request, id: str) -> Response:
        self.state.add_desk_customers(self.state.service_desk(id), _account_ids(request))
        return _no_content()

    def _h_remove_desk_customers(self, request: Request, id: str) -> Response:
        self.state.remove_desk_customers(self.state.service_desk(id), _account_ids(request))
        return _no_content()

    # ------------------------------------------------------------ test endpoints

    def _admin(self, request: Request) -> Response:
        action = (request.method, request.path.rstrip("/"))
        if request.method != "GET" and not self._admin_allowed(request):
            return _json({"error": "this emulator's test endpoints need Authorization: Bearer <its token>"}, 401)
        if action == ("GET", "/_emulator/state"):
            return _json(self.state_dict())
        if action == ("GET", "/_emulator/stats"):
            return _json(self.stats_dict())
        if action == ("GET", "/_emulator/faults"):
            return _json(self.faults_dict())
        if action == ("POST", "/_emulator/faults"):
            return self._admin_faults(request)
        if action == ("POST", "/_emulator/reset"):
            self.reset()
            return _json({"reset": True})
        if action == ("GET", "/_emulator/site"):
            return _json(self.site_dict())
        if action == ("POST", "/_emulator/site"):
            return self._admin_call(request, self.configure_site)
        if request.method == "DELETE" and action[1].startswith("/_emulator/customers/"):
            return self._admin_delete_customer(action[1].removeprefix("/_emulator/customers/"))
        return _json({"error": f"no test endpoint {request.method} {request.path}"}, 404)

    def _admin_allowed(self, request: Request) -> bool:
        if self.admin_token is None:
            return True
        scheme, _, token = (request.headers.get("Authorization") or "").partition(" ")
        return scheme.lower() == "bearer" and compare_digest(token.strip().encode(), self.admin_token.encode())

    def _admin_delete_customer(self, account_id: str) -> Response:
        try:
            self.delete_customer(account_id)
        except ApiError as err:
            return _json({"error": err.message}, err.status)
        return _no_content()

    def _admin_faults(self, request: Request) -> Response:
        def apply(body: dict[str, Any]) -> dict[str, float]:
            self.set_faults(**body)
            return self.faults_dict()

        return self._admin_call(request, apply)

    def _admin_call(self, request: Request, action: Callable[[dict[str, Any]], Any]) -> Response:
        """Run a test endpoint's ``action`` on its JSON object body; 400 for a bad body."""
        try:
            body = json.loads(request.get_data() or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body must be a JSON object")
            return _json(action(body))
        except (ValueError, TypeError) as exc:
            return _json({"error": str(exc)}, 400)

    def _portal_page(self, request: Request, desk_ref: str) -> Response:
        with self._lock:
            try:
                desk = self.state.service_desk(desk_ref)
            except ApiError:
                return _text_page("Portal not found", f"No customer portal {desk_ref}.", status=404)
        text = f"Customer portal {desk.id} of {desk.project_name} ({desk.project_key}) - JSM emulator."
        if self.sso.idp is not None:  # customer SSO on: the portal needs a session
            email = self.sso.signed_in_email(request)
            if email is None:
                return self.sso.login_redirect(request)
            text += f" You are signed in as {email}."
        return _text_page(f"{desk.project_name} portal", text)

    def _sso_sign_in(self, email: str, display_name: str | None) -> None:
        """A customer signed in through SSO: create their account if absent (as JSM does)."""
        with self._lock:
            try:
                self.state.create_customer(email, display_name, strict_conflict=True)
            except ApiError:  # already a customer (409), or an address JSM refuses
                return
        self._changed()


# ----------------------------------------------------------------------- server


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:
        pass


class EmulatorServer:
    """Runs a :class:`JsmEmulator` on a real port in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, emulator: JsmEmulator | None = None,
                 *, quiet: bool = True) -> None:
        self.emulator = emulator if emulator is not None else JsmEmulator()
        self.host = host
        self.port = port
        self._quiet = quiet
        self._server: Any = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "[::1]"}.get(self.host, self.host)
        return f"http://{host}:{self.port}"

    def start(self) -> EmulatorServer:
        if self._server is not None:
            return self
        handler = _QuietHandler if self._quiet else WSGIRequestHandler
        self._server = make_server(self.host, self.port, self.emulator, threaded=True, request_handler=handler)
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="jsm-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server, self._thread = None, None
        self.emulator.close()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def run_emulator(host: str = "127.0.0.1", port: int = 8080, **faults: float | None) -> None:
    """Serve the emulator in the foreground until interrupted (``jsm-scim emulator``); ``faults``
    as ``JsmEmulator.set_faults`` takes them (e.g. ``burst_limit``)."""
    emulator = JsmEmulator()
    emulator.set_faults(**faults)
    server = make_server(host, port, emulator, threaded=True)
    url = EmulatorServer(host, server.server_port).url
    log.info("JSM emulator listening on %s", url)
    print(f"JSM emulator listening on {url} (state: {url}/_emulator/state)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


# ---------------------------------------------------------------------- helpers


def _match(request: Request) -> tuple[tuple[str, str, str], dict[str, str]] | ApiError:
    """``((method, template, handler), path args)``, or the 404/405 to answer."""
    try:
        endpoint, args = URL_MAP.bind_to_environ(request.environ).match()
        return endpoint, dict(args)
    except MethodNotAllowed:
        return ApiError(405, f"Method {request.method} is not allowed here.")
    except NotFound:
        return ApiError(404, f"No resource at {request.path}.")


def _opted_in(request: Request) -> bool:
    return request.headers.get("X-ExperimentalApi", "").strip().lower() in {"opt-in", "true"}


def _json(data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Response:
    return Response(json.dumps(data), status=status, headers=dict(headers or {}), mimetype="application/json")


def _no_content() -> Response:
    return Response(status=204)


def _error(err: ApiError, platform: bool) -> Response:
    """Servicedeskapi's ``errorMessage`` body, or the Jira platform's ``errorMessages``."""
    if platform:
        body: dict[str, Any] = {"errorMessages": [err.message], "errors": {}}
    else:
        body = {"errorMessage": err.message, "i18nErrorMessage": {"i18nKey": err.i18n_key, "parameters": err.parameters}}
    return _json(body, err.status)


def _seconds_header(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _injected_fault(faults: Mapping[str, float], seq: int, platform: bool) -> Response | None:
    """The 429 or 503 that request number ``seq`` gets, if any (decided before any state change)."""
    every_429, every_503 = int(faults.get("rate_limit_every", 0)), int(faults.get("error_every", 0))
    if every_429 and seq % every_429 == 0:
        return _rate_limited(faults.get("retry_after_s", 1.0), platform)
    if every_503 and seq % every_503 == 0:
        return _unavailable(faults.get("error_retry_after_s"), platform)
    return None


def _rate_limited(retry_after: float, platform: bool) -> Response:
    reset = datetime.now(timezone.utc) + timedelta(seconds=retry_after)
    response = _error(ApiError(429, "Rate limit exceeded.", "rate.limit.exceeded"), platform)
    response.headers.update(
        {
            "Retry-After": _seconds_header(retry_after),
            "X-RateLimit-Limit": "100",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": reset.strftime("%Y-%m-%dT%H:%MZ"),
            "RateLimit-Reason": "jira-burst-based",
        }
    )
    return response


def _unavailable(retry_after: float | None, platform: bool) -> Response:
    response = _error(ApiError(503, "Service Unavailable", "service.unavailable"), platform)
    if retry_after is not None:
        response.headers["Retry-After"] = _seconds_header(retry_after)
    return response


def _text_page(title: str, text: str, status: int = 200) -> Response:
    page = (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    )
    return Response(page, status=status, mimetype="text/html")


def _json_value(request: Request) -> Any:
    if request.mimetype != "application/json":
        raise ApiError(415, "Unsupported Media Type: send Content-Type: application/json.")
    try:
        return json.loads(request.get_data() or b"")
    except ValueError:
        raise ApiError(400, "The request body is not valid JSON.", "sd.rest.invalid.json") from None


def _json_object(request: Request) -> dict[str, Any]:
    body = _json_value(request)
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object.", "sd.rest.invalid.json")
    return body


def _account_ids(request: Request) -> list[str]:
    ids = _json_object(request).get("accountIds")
    if not isinstance(ids, list) or not all(isinstance(a, str) for a in ids):
        raise ApiError(400, "accountIds must be a list of account IDs.", "sd.rest.invalid.account.ids")
    return list(dict.fromkeys(ids))


def _int_arg(request: Request, name: str, default: int, *, minimum: int) -> int:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, f"Query parameter {name} must be an integer.", "sd.rest.invalid.parameter", [name]) from None
    if value < minimum:
        raise ApiError(400, f"Query parameter {name} must be at least {minimum}.", "sd.rest.invalid.parameter", [name])
    return value


def _page(request: Request, items: Sequence[Any], render: Callable[[Any, str], dict[str, Any]]) -> Response:
    """A servicedeskapi page: ``start`` 0-based, ``limit`` default 50 and capped at 50."""
    start = _int_arg(request, "start", 0, minimum=0)
    limit = min(_int_arg(request, "limit", PAGE_CAP, minimum=1), PAGE_CAP)
    chunk = items[start : start + limit]
    base = request.host_url.rstrip("/") + SD
    links: dict[str, str] = {"base": base, "context": ""}
    if start + len(chunk) < len(items):
        links["next"] = _page_link(request, start + limit, limit)
    if start > 0:
        links["prev"] = _page_link(request, max(0, start - limit), limit)
    return _json(
        {
            "_expands": [],
            "size": len(chunk),
            "start": start,
            "limit": limit,
            "isLastPage": start + len(chunk) >= len(items),
            "_links": links,
            "values": [render(item, request.host_url) for item in chunk],
        }
    )


def _page_link(request: Request, start: int, limit: int) -> str:
    args = {k: v for k, v in request.args.items() if k not in ("start", "limit")}
    args.update(start=str(start), limit=str(limit))
    return f"{request.base_url}?{urlencode(args)}"


def _avatar_urls(account_id: str) -> dict[str, str]:
    return {size: f"https://avatar.example.invalid/{account_id}?s={size.split('x')[0]}"
            for size in ("48x48", "24x24", "16x16", "32x32")}


def _user_dto(c: CustomerRecord, host_url: str) -> dict[str, Any]:
    host = host_url.rstrip("/")
    return {
        "accountId": c.account_id,
        "emailAddress": c.email,
        "displayName": c.display_name,
        "active": c.active,
        "timeZone": c.time_zone,
        "_links": {
            "jiraRest": f"{host}/rest/api/2/user?accountId={c.account_id}",
            "avatarUrls": _avatar_urls(c.account_id),
            "self": f"{host}/rest/api/2/user?accountId={c.account_id}",
        },
    }


def _platform_user(c: CustomerRecord, host_url: str) -> dict[str, Any]:
    return {
        "self": f"{host_url.rstrip('/')}/rest/api/3/user?accountId={c.account_id}",
        "accountId": c.account_id,
        "accountType": "customer",
        "emailAddress": c.email,
        "avatarUrls": _avatar_urls(c.account_id),
        "displayName": c.display_name,
        "active": c.active,
        "timeZone": c.time_zone,
        "locale": "en_US",
    }


def _org_dto(o: OrganizationRecord, host_url: str) -> dict[str, Any]:
    """OrganizationDTO of the 2023 OpenAPI document; Guard-managed ones also carry ``scimManaged``
    (newer JSM versions send it, the document does not list it yet)."""
    dto: dict[str, Any] = {"id": str(o.id), "name": o.name,
                           "_links": {"self": f"{host_url.rstrip('/')}{SD}/organization/{o.id}"}}
    if o.scim_managed:
        dto["scimManaged"] = True
    return dto


def _desk_dto(d: ServiceDeskRecord, host_url: str) -> dict[str, Any]:
    return {
        "id": d.id,
        "projectId": d.project_id,
        "projectName": d.project_name,
        "projectKey": d.project_key,
        "_links": {"self": f"{host_url.rstrip('/')}{SD}/servicedesk/{d.id}"},
    }
