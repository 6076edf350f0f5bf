"""A requests-based client for the JSM Cloud REST API subset the bridge uses.

API reference: https://developer.atlassian.com/cloud/jira/service-desk/rest/ (OpenAPI copy in
``shared/reference/jsm-servicedeskapi-openapi.json``) and, for user search,
https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-user-search/.

One client may be shared by threads: it holds a single ``requests.Session`` with a pooled
adapter and no other mutable state.

Every exchange is bounded (``jsm_client.bounded_http``): ``timeout`` is the total time of one
attempt (connect, headers and the whole body, not per read), ``max_retry_seconds`` the total time
of one call including its retries (waits that JSM asked for, ``Retry-After`` and pacing, are
bounded by ``max_rate_limit_seconds`` instead), ``max_body_bytes`` the largest body read. Calls are
paced per route by a :class:`jsm_client.pacing.Pacer` (pass a shared one, ``pacer_for``, so that
every client of a process keeps within one budget). Redirects are never
followed (a POST turned into a GET to another host would carry data there), and the site must be
https unless it is on a loopback address (the emulator) or ``allow_http`` is set.
"""

from __future__ import annotations

import base64
import ipaddress
import itertools
import json
import logging
import time
from typing import Any, Callable, Iterable, Iterator, Mapping
from urllib.parse import quote, urlsplit

import requests

from jsm_client import bounded_http
from jsm_client.errors import JsmBadRequest, JsmConflict, JsmError, JsmNotFound, JsmUnavailable, error_class_for
from jsm_client.models import Customer, Organization, ServiceDesk
from jsm_client.pacing import Pacer
from jsm_client.retry import RETRYABLE_STATUSES, BackoffPolicy, parse_rate_limit_reset, parse_retry_after

log = logging.getLogger("jsm_client")

OnCall = Callable[[str, str, "int | None"], None]

# Templated paths: also the metric/route labels passed to ``on_call`` (as "METHOD path").
CUSTOMER = "/rest/servicedeskapi/customer"
CUSTOMER_REVOKE = "/rest/servicedeskapi/customer/user/{id}/revoke-portal-only-access"
ORGANIZATIONS = "/rest/servicedeskapi/organization"
ORGANIZATION = "/rest/servicedeskapi/organization/{id}"
ORGANIZATION_USERS = "/rest/servicedeskapi/organization/{id}/user"
ORGANIZATION_PROPERTY = "/rest/servicedeskapi/organization/{id}/property/{key}"
SERVICE_DESKS = "/rest/servicedeskapi/servicedesk"
SERVICE_DESK = "/rest/servicedeskapi/servicedesk/{id}"
SERVICE_DESK_ORGANIZATIONS = "/rest/servicedeskapi/servicedesk/{id}/organization"
SERVICE_DESK_CUSTOMERS = "/rest/servicedeskapi/servicedesk/{id}/customer"
USER_SEARCH = "/rest/api/3/user/search"
SERVER_INFO = "/rest/servicedeskapi/info"
MYSELF = "/rest/api/3/myself"
MY_PERMISSIONS = "/rest/api/3/mypermissions"
USER = "/rest/api/3/user"

PAGE_LIMIT = 50  # JSM's default and usual cap; the server may still return fewer.
USER_SEARCH_PAGE = 50
USER_SEARCH_MAX = 1000  # user/search only ever looks at the first 1000 matches.
MAX_BODY_BYTES = 10 * 1024 * 1024  # a page of 50 customers is a few KB; nothing legitimate comes near

_NO_BODY = object()
# Transport failures worth retrying; SSLError (a ConnectionError) is not among them.
_RETRYABLE_EXCEPTIONS = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class JsmClient:
    """JSM Cloud REST client with retries, pagination and typed errors.

    Retries 429 (honouring ``Retry-After``), 5xx, timeouts and connection errors with
    exponential backoff and full jitter, bounded by ``max_attempts`` and by
    ``max_retry_seconds`` of total elapsed time. Membership POST/DELETE calls are
    idempotent in JSM, so retrying them is safe.
    """

    def __init__(
        self,
        base_url: str,
        email: str,
        api_token: str,
        *,
        timeout: float = 10.0,
        max_retry_seconds: float = 60.0,
        max_attempts: int = 8,
        backoff_base: float = 0.5,
        backoff_cap: float = 30.0,
        batch_size: int = 50,
        on_call: OnCall | None = None,
        sleep: Callable[[float], None] = time.sleep,
        pool_size: int = 20,
        desk_lookup_fallback: bool = True,
        clock: Callable[[], float] = time.monotonic,
        max_body_bytes: int = MAX_BODY_BYTES,
        allow_http: bool = False,
        pacer: Pacer | None = None,
        max_rate_limit_seconds: float = 900.0,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        check_site_url(base_url, allow_http=allow_http)
        self.base_url = base_url.rstrip("/")
        self.max_body_bytes = max_body_bytes
        self.email = email
        self.timeout = timeout
        self.batch_size = batch_size
        self.policy = BackoffPolicy(max_attempts, max_retry_seconds, backoff_base, backoff_cap,
                                    max_rate_limit_seconds=max_rate_limit_seconds)
        self.pacer = pacer if pacer is not None else Pacer()
        self._on_call = on_call
        self._sleep = sleep
        self._clock = clock
        self._desk_lookup_fallback = desk_lookup_fallback
        self._secrets = _secret_forms(email, api_token)
        self._session = _make_session(email, api_token, max(20, pool_size))

    def __repr__(self) -> str:
        return f"JsmClient({self.base_url!r}, email={self.email!r})"

    def __enter__(self) -> JsmClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._session.close()

    def portal_url(self, service_desk_id: str | int) -> str:
        """Customer portal link; the portal ID is assumed to equal the service desk ID (unverified)."""
        return f"{self.base_url}/servicedesk/customer/portal/{service_desk_id}"

    # ------------------------------------------------------------------ customers

    def create_customer(self, email: str, display_name: str) -> Customer:
        """Create a portal-only customer; :class:`JsmConflict` if the e-mail exists.

        A create retried after a timeout may find that its first attempt succeeded and
        then fail with a conflict: :meth:`ensure_customer` resolves that by lookup. JSM
        answers a duplicate with 400 unless ``strictConflictStatusCode=true`` (sent here);
        a 400 is reported as a conflict only when a lookup finds the account, since the
        error text is not a stable contract.
        """
        body = {"email": email, "displayName": display_name}
        try:
            resp = self._call("POST", CUSTOMER, params={"strictConflictStatusCode": "true"}, body=body)
        except JsmBadRequest as exc:
            existing = self.find_customer_by_email(email)
            if existing is None:
                raise
            raise JsmConflict(
                exc.message, existing=existing, status=exc.status, method=exc.method, path=exc.path
            ) from exc
        return Customer.from_json(resp.json())

    def find_customer_by_email(self, email: str) -> Customer | None:
        """Exact, case-insensitive e-mail lookup.

        Tries Jira's user search first; whether it returns portal-only customers is
        unverified, so it falls back to each service desk's customer search (which only
        sees customers already on that desk) unless ``desk_lookup_fallback`` is off.
        """
        found = self._search_users(email)
        if found is None and self._desk_lookup_fallback:
            found = self._search_service_desks(email)
        return found

    def ensure_customer(self, email: str, display_name: str) -> tuple[Customer, bool]:
        """Find or create a customer; returns ``(customer, created)``.

        Cheap lookup first, then create; a conflict (another worker, or our own retried
        create) is resolved with the full lookup.
        """
        existing = self._search_users(email)
        if existing is not None:
            return existing, False
        try:
            return self.create_customer(email, display_name), True
        except JsmConflict as exc:
            found = exc.existing or self.find_customer_by_email(email)
            if found is None:
                raise
            return found, False

    def revoke_portal_only_access(self, account_id: str) -> None:
        """Stop a portal-only customer from signing in (site administrators only; 204). JSM's REST
        API has no operation that grants the access again: an admin does that in Atlassian
        Administration (Portal customers > Grant access)."""
        self._call("PUT", CUSTOMER_REVOKE, ids={"id": account_id})

    def get_customer(self, account_id: str) -> Customer | None:
        """The account with this id (Jira's "Get user"), or ``None`` when JSM has no such account.

        Whether the platform API shows portal-only customers is unverified: a ``None`` here is a
        hint to check (e.g. by creating the customer again), not proof that the account is gone.
        """
        try:
            resp = self._call("GET", USER, params={"accountId": account_id})
        except JsmNotFound:
            return None
        data = resp.json()
        return Customer.from_json(data) if isinstance(data, dict) and data.get("accountId") else None

    def _search_users(self, email: str) -> Customer | None:
        # GET /rest/api/3/user/search filters first, then pages the matches (prefix match
        # on displayName and emailAddress, at most 1000): a short page is the last one.
        # Privacy settings may hide emailAddress, in which case there is no match here.
        wanted = email.casefold()
        for start in range(0, USER_SEARCH_MAX, USER_SEARCH_PAGE):
            params = {"query": email, "startAt": start, "maxResults": USER_SEARCH_PAGE}
            users = self._call("GET", USER_SEARCH, params=params).json()
            if not isinstance(users, list):
                return None
            match = _match_email(users, wanted)
            if match is not None or len(users) < USER_SEARCH_PAGE:
                return match
        return None

    def _search_service_desks(self, email: str) -> Customer | None:
        wanted = email.casefold()
        for desk in self.iter_service_desks():
            users = self._paged(SERVICE_DESK_CUSTOMERS, ids={"id": desk.id}, params={"query": email})
            match = _match_email(users, wanted)
            if match is not None:
                return match
        return None

    # -------------------------------------------------------------- organizations

    def iter_organizations(self, account_id: str | None = None) -> Iterator[Organization]:
        """All organizations (or those ``account_id`` belongs to); JSM has no name filter."""
        params = {"accountId": account_id} if account_id else None
        for raw in self._paged(ORGANIZATIONS, params=params):
            yield Organization.from_json(raw)

    def create_organization(self, name: str) -> Organization:
        """Create an organization; JSM returns the existing one when the name exists."""
        return Organization.from_json(self._call("POST", ORGANIZATIONS, body={"name": name}).json())

    def get_organization(self, org_id: str) -> Organization:
        return Organization.from_json(self._call("GET", ORGANIZATION, ids={"id": org_id}).json())

    def delete_organization(self, org_id: str) -> None:
        self._call("DELETE", ORGANIZATION, ids={"id": org_id})

    def iter_organization_users(self, org_id: str) -> Iterator[Customer]:
        for raw in self._paged(ORGANIZATION_USERS, ids={"id": org_id}):
            yield Customer.from_json(raw)

    def add_organization_users(self, org_id: str, account_ids: Iterable[str]) -> int:
        """Add accounts in batches; returns the number of batch requests sent (0 if none)."""
        return self._send_batches("POST", ORGANIZATION_USERS, org_id, account_ids)

    def remove_organization_users(self, org_id: str, account_ids: Iterable[str]) -> int:
        """Remove accounts in batches; returns the number of batch requests sent."""
        return self._send_batches("DELETE", ORGANIZATION_USERS, org_id, account_ids)

    def set_organization_property(self, org_id: str, key: str, value: Any) -> None:
        """Store a JSON value on the organization (201 created / 200 updated)."""
        self._call("PUT", ORGANIZATION_PROPERTY, ids={"id": org_id, "key": key}, body=value)

    def get_organization_property(self, org_id: str, key: str) -> Any | None:
        """The property's value, or ``None`` when the property (or organization) is missing."""
        try:
            resp = self._call("GET", ORGANIZATION_PROPERTY, ids={"id": org_id, "key": key})
        except JsmNotFound:
            return None
        return resp.json().get("value")

    def delete_organization_property(self, org_id: str, key: str) -> None:
        self._call("DELETE", ORGANIZATION_PROPERTY, ids={"id": org_id, "key": key})

    # -------------------------------------------------------------- service desks

    def iter_service_desks(self) -> Iterator[ServiceDesk]:
        for raw in self._paged(SERVICE_DESKS):
            yield ServiceDesk.from_json(raw)

    def get_service_desk(self, desk_id: str) -> ServiceDesk:
        """One service desk by ID or project key (``HELP`` or ``projectKey:HELP``)."""
        return ServiceDesk.from_json(self._call("GET", SERVICE_DESK, ids={"id": desk_id}).json())

    def iter_service_desk_organizations(self, desk_id: str) -> Iterator[Organization]:
        for raw in self._paged(SERVICE_DESK_ORGANIZATIONS, ids={"id": desk_id}):
            yield Organization.from_json(raw)

    def add_service_desk_organization(self, desk_id: str, org_id: str) -> None:
        """Grant an organization access; 204 also when it already has it."""
        self._call("POST", SERVICE_DESK_ORGANIZATIONS, ids={"id": desk_id}, body={"organizationId": int(org_id)})

    def remove_service_desk_organization(self, desk_id: str, org_id: str) -> None:
        """Revoke an organization's access; 204 also when it had none."""
        self._call("DELETE", SERVICE_DESK_ORGANIZATIONS, ids={"id": desk_id}, body={"organizationId": int(org_id)})

    def iter_service_desk_customers(self, desk_id: str, query: str | None = None) -> Iterator[Customer]:
        """Customers on a desk (experimental endpoint), optionally filtered by ``query``."""
        params = {"query": query} if query else None
        for raw in self._paged(SERVICE_DESK_CUSTOMERS, ids={"id": desk_id}, params=params):
            yield Customer.from_json(raw)

    def add_service_desk_customers(self, desk_id: str, account_ids: Iterable[str]) -> int:
        return self._send_batches("POST", SERVICE_DESK_CUSTOMERS, desk_id, account_ids)

    def remove_service_desk_customers(self, desk_id: str, account_ids: Iterable[str]) -> int:
        """JSM answers 400 (:class:`JsmBadRequest`) on desks with open access or public sign-up."""
        return self._send_batches("DELETE", SERVICE_DESK_CUSTOMERS, desk_id, account_ids)

    # --------------------------------------------------------- the site itself

    def server_info(self) -> dict[str, Any]:
        """``GET /rest/servicedeskapi/info`` (needs no credentials): proves the site answers."""
        data = self._call("GET", SERVER_INFO).json()
        return data if isinstance(data, dict) else {}

    def myself(self) -> dict[str, Any]:
        """The service account (``GET /rest/api/3/myself``); :class:`JsmAuthError` when the
        credentials are rejected."""
        data = self._call("GET", MYSELF).json()
        return data if isinstance(data, dict) else {}

    def my_permissions(self, *keys: str) -> dict[str, bool]:
        """Whether the service account holds each permission (``GET /rest/api/3/mypermissions``);
        a key JSM does not report is left out."""
        data = self._call("GET", MY_PERMISSIONS, params={"permissions": ",".join(keys)}).json()
        found = (data.get("permissions") if isinstance(data, dict) else None) or {}
        return {key: bool(value.get("havePermission")) for key, value in found.items()
                if key in keys and isinstance(value, dict)}

    def probe_customer_access(self, desk_id: str) -> bool:
        """True when the desk's customer access is restricted, False when it is open.

        No REST operation reports it; JSM documents that removing customers fails (400) on a desk
        with open access or public sign-up, so an empty removal, which changes nothing, tells
        (unverified against a real site: reported as "inferred"). Other errors are raised.
        """
        try:
            self._call("DELETE", SERVICE_DESK_CUSTOMERS, ids={"id": desk_id}, body={"accountIds": []})
        except JsmBadRequest:
            return False
        return True

    # ------------------------------------------------------------------ plumbing

    def _send_batches(self, method: str, template: str, target_id: str, account_ids: Iterable[str]) -> int:
        unique = list(dict.fromkeys(account_ids))
        calls = 0
        for start in range(0, len(unique), self.batch_size):
            batch = unique[start : start + self.batch_size]
            self._call(method, template, ids={"id": target_id}, body={"accountIds": batch})
            calls += 1
        return calls

    def _paged(
        self, template: str, *, ids: Mapping[str, str] | None = None, params: Mapping[str, Any] | None = None
    ) -> Iterator[dict[str, Any]]:
        """Yield every ``values`` item; loops on ``isLastPage`` and advances by what arrived,
        so a server that caps ``limit`` below what was asked is handled."""
        start = 0
        while True:
            query = {**(params or {}), "start": start, "limit": PAGE_LIMIT}
            page = self._call("GET", template, ids=ids, params=query).json()
            values = page.get("values") or []
            yield from values
            if page.get("isLastPage", True) or not values:
                return
            start = int(page.get("start", start)) + len(values)

    def _call(
        self,
        method: str,
        template: str,
        *,
        ids: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        body: Any = _NO_BODY,
    ) -> requests.Response:
        """Send one logical request with retries; return a 2xx/3xx response or raise."""
        path = _expand(template, ids or {})
        route = f"{method} {template}"
        started = self._clock()
        directed = 0.0  # seconds waited because JSM asked (Retry-After, pacing): not our own budget
        wait = 0.0
        for attempt in itertools.count(1):
            pace = self.pacer.reserve(route)
            if max(wait, pace) > 0:
                self._sleep(max(wait, pace))
                directed += max(0.0, pace - wait)  # a retry wait JSM asked for was counted already
            left = self.policy.max_retry_seconds + directed - (self._clock() - started)
            outcome = self._attempt(method, path, route, params, body, min(self.timeout, max(left, 0.001)))
            if isinstance(outcome, requests.Response):
                self.pacer.observe(route, outcome.status_code, outcome.headers)
                if outcome.status_code not in RETRYABLE_STATUSES:
                    return self._checked(outcome, method, path, attempt)
            retry_after = _retry_after(outcome)
            next_wait = self.policy.next_wait(attempt, self._clock() - started, retry_after, directed)
            if next_wait is None:
                raise self._give_up(outcome, method, path, attempt)
            if retry_after is not None:
                directed += next_wait
            wait = next_wait
            log.warning(
                "JSM %s failed (status %s), attempt %d/%d; retrying in %.2fs",
                route, _status_label(outcome), attempt, self.policy.max_attempts, wait,
                extra={"jsm_route": route, "jsm_status": _status_label(outcome), "jsm_attempt": attempt},
            )
        raise AssertionError("unreachable")

    def _attempt(
        self, method: str, path: str, route: str, params: Mapping[str, Any] | None, body: Any, deadline_s: float
    ) -> requests.Response | requests.RequestException:
        """One bounded HTTP exchange: the response, or a retryable transport exception."""
        kwargs: dict[str, Any] = {"params": params}
        if body is not _NO_BODY:
            kwargs["data"] = json.dumps(body)
            kwargs["headers"] = {"Content-Type": "application/json"}
        try:
            resp = bounded_http.send(self._session, method, self.base_url + path, deadline_s=deadline_s,
                                     max_bytes=self.max_body_bytes, **kwargs)
        except requests.exceptions.SSLError as exc:
            self._notify(method, route, None)
            raise JsmError(f"TLS error ({type(exc).__name__})", method=method, path=path) from exc
        except _RETRYABLE_EXCEPTIONS as exc:
            self._notify(method, route, None)
            return exc
        except requests.RequestException as exc:  # BodyTooLarge among them: retrying would not help
            self._notify(method, route, None)
            raise JsmError(f"request failed ({type(exc).__name__}: {exc})", method=method, path=path) from exc
        self._notify(method, route, resp.status_code)
        return resp

    def _notify(self, method: str, route: str, status: int | None) -> None:
        if self._on_call is None:
            return
        try:
            self._on_call(method, route, status)
        except Exception:  # a metrics hook must never break a JSM call
            log.exception("on_call hook failed for %s", route)

    def _checked(self, resp: requests.Response, method: str, path: str, attempts: int) -> requests.Response:
        if resp.status_code < 300:
            return resp
        if resp.status_code < 400:
            where = urlsplit(resp.headers.get("Location", "")).netloc or "the same site"
            raise JsmError(f"JSM answered a redirect (to {where}); redirects are not followed",
                           status=resp.status_code, method=method, path=path, attempts=attempts)
        raise self._error(resp, method, path, attempts)

    def _give_up(
        self, outcome: requests.Response | requests.RequestException, method: str, path: str, attempts: int
    ) -> JsmError:
        suffix = f" (gave up after {attempts} attempt{'s' if attempts != 1 else ''})"
        if isinstance(outcome, requests.Response):
            return self._error(outcome, method, path, attempts, suffix)
        err = JsmUnavailable(f"{type(outcome).__name__}{suffix}", method=method, path=path, attempts=attempts)
        err.__cause__ = outcome
        return err

    def _error(self, resp: requests.Response, method: str, path: str, attempts: int, suffix: str = "") -> JsmError:
        """The typed error for an error response, with JSM's message (credentials redacted)."""
        cls = error_class_for(resp.status_code)
        return cls(self._redact(_error_text(resp)) + suffix, status=resp.status_code, method=method, path=path,
                   attempts=attempts)

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text


def check_site_url(url: str, *, allow_http: bool = False) -> None:
    """``ValueError`` unless ``url`` is https, or http on a loopback address (or ``allow_http``)."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and parts.hostname and (allow_http or _is_loopback(parts.hostname)):
        return
    raise ValueError(f"the JSM site must be an https URL (http only on a loopback address), got {url!r}")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _make_session(email: str, api_token: str, pool_size: int) -> requests.Session:
    session = bounded_http.bounded_session(pool_size)
    session.auth = (email, api_token)
    session.headers.update(
        {
            "Accept": "application/json",
            # Experimental servicedeskapi operations answer 412 without it; ignored elsewhere.
            "X-ExperimentalApi": "opt-in",
            "User-Agent": "jsm-scim-bridge",
        }
    )
    return session


def _secret_forms(email: str, api_token: str) -> tuple[str, ...]:
    """The token as it could appear in text: raw and inside a Basic credential."""
    if len(api_token) < 4:
        return ()
    basic = base64.b64encode(f"{email}:{api_token}".encode()).decode()
    return (basic, api_token)


def _expand(template: str, ids: Mapping[str, str]) -> str:
    return template.format(**{name: quote(str(value), safe="") for name, value in ids.items()})


def _match_email(users: Iterable[Mapping[str, Any]], wanted: str) -> Customer | None:
    for user in users:
        if (user.get("emailAddress") or "").casefold() == wanted:
            return Customer.from_json(user)
    return None


def _retry_after(outcome: requests.Response | requests.RequestException) -> float | None:
    if not isinstance(outcome, requests.Response):
        return None
    seconds = parse_retry_after(outcome.headers.get("Retry-After"))
    if seconds is None and outcome.status_code == 429:
        seconds = parse_rate_limit_reset(outcome.headers.get("X-RateLimit-Reset"))
    return seconds


def _status_label(outcome: requests.Response | requests.RequestException) -> str:
    if isinstance(outcome, requests.Response):
        return str(outcome.status_code)
    return type(outcome).__name__


def _error_text(resp: requests.Response) -> str:
    """JSM's message: ``errorMessage`` (servicedeskapi) or ``errorMessages``/``errors`` (/rest/api/3)."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        message = data.get("errorMessage")
        if isinstance(message, str):
            return message
        parts = [str(m) for m in data.get("errorMessages") or []]
        parts += [f"{k}: {v}" for k, v in (data.get("errors") or {}).items()]
        if parts:
            return "; ".join(parts)
    text = (resp.text or "").strip()
    return text[:300] if text else (resp.reason or f"HTTP {resp.status_code}")
