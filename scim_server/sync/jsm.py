"""Building the JSM client from settings, and a small cache of JSM's organizations and desks."""
from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable

from jsm_client import JsmClient
from jsm_client.pacing import pacer_for
from scim_server import metrics
from scim_server.settings import Settings
from scim_server.sync.names import match_organization
from scim_server.sync.site import EMULATOR_EMAIL

log = logging.getLogger(__name__)

#: The token sent to an emulator given by URL alone (one that checks only that some are present).
EMULATOR_TOKEN = "emulator"
__all__ = ["EMULATOR_EMAIL", "EMULATOR_TOKEN", "JsmCatalog", "make_jsm_client"]


def _count_call(method: str, route: str, status: int | None) -> None:
    """``on_call`` hook: count the call in ``jsm_scim_jsm_calls_total`` (route label without the method)."""
    template = route.split(" ", 1)[-1]
    metrics.observe_jsm_call(method, template, status if status is not None else "error")


def make_jsm_client(settings: Settings, base_url: str | None = None, **overrides: Any) -> JsmClient:
    """The JSM client for ``settings`` (or for ``base_url``, e.g. the in-process emulator).

    Every client of one site in this process shares one pacer (``jsm_client.pacing.pacer_for``).
    Raises ``ValueError`` when no JSM site is configured and no URL is given.
    """
    url = base_url or settings.jsm_url
    if not url:
        raise ValueError("JSM_SCIM_JSM_URL is not set (or run `jsm-scim serve`, which starts the emulator)")
    email = settings.jsm_email or (EMULATOR_EMAIL if base_url else None)
    token = settings.jsm_api_token or (EMULATOR_TOKEN if base_url else None)
    if not email or not token:
        raise ValueError("JSM_SCIM_JSM_EMAIL and JSM_SCIM_JSM_API_TOKEN must be set to talk to JSM")
    options = {"batch_size": settings.sync_batch_size, "on_call": _count_call,
               "pacer": pacer_for(url, settings.jsm_rate_limit),
               "max_rate_limit_seconds": settings.jsm_max_rate_limit_wait_s, **overrides}
    return JsmClient(url, email, token, **options)


class JsmCatalog:
    """Organization ids by name and desk ids by project key, read from JSM through its paged API.

    JSM has no organization lookup by name, so one listing serves many lookups. A name missing from
    a listing older than ``max_age`` seconds triggers a fresh listing before we conclude "absent".
    """

    def __init__(self, client: JsmClient, max_age: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.client = client
        self.max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._orgs: dict[str, str] | None = None
        self._guard_managed: set[str] = set()  # ids of organizations Atlassian Guard's SCIM manages
        self._orgs_at = 0.0
        self._desks: dict[str, str] | None = None

    def organization_id(self, name: str) -> str | None:
        """The id of the organization JSM knows as ``name`` (compared as JSM compares names,
        ``sync.names``); raises ``AmbiguousOrganization`` rather than guess between several."""
        with self._lock:
            if self._orgs is None or (match_organization(self._orgs.items(), name) is None
                                      and self._clock() - self._orgs_at > self.max_age):
                listing = list(self.client.iter_organizations())
                self._orgs = {org.name: org.id for org in listing}
                self._guard_managed = {org.id for org in listing if org.scim_managed}
                self._orgs_at = self._clock()
            return match_organization(self._orgs.items(), name)

    def scim_managed(self, org_id: str) -> bool:
        """Whether the last listing showed organization ``org_id`` as managed by Atlassian Guard's SCIM."""
        with self._lock:
            return org_id in self._guard_managed

    def remember_organization(self, name: str, org_id: str | None) -> None:
        with self._lock:
            if self._orgs is not None:
                if org_id is None:
                    self._orgs.pop(name, None)
                else:
                    self._orgs[name] = org_id

    def desk_id(self, project_key: str) -> str | None:
        """The service desk id of a project key; ``None`` when JSM has no such desk."""
        key = project_key.upper()
        with self._lock:
            if self._desks is None or key not in self._desks:
                self._desks = {desk.project_key.upper(): desk.id for desk in self.client.iter_service_desks()}
            return self._desks.get(key)
