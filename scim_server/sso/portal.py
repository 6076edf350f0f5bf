"""Which JSM portals a signed-in customer may use, and where their links point.

The decision is the sync feature's (``scim_server.sync.access.allowed_project_keys`` over the
current mapping rules), so the SAML shim and propagation never disagree. Project keys become
service desk IDs through JSM's own listing, cached briefly.
"""
from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Callable, Iterable

from jsm_client import JsmClient, JsmError, ServiceDesk
from scim_server.services import Services
from scim_server.sync.rules import RulesProvider

log = logging.getLogger(__name__)

DESK_CACHE_SECONDS = 60.0
_DESK_ID = re.compile(r"^[0-9]{1,10}\Z")
PORTAL_PATH = re.compile(r"^/portal/([0-9]{1,10})\Z")  # \Z: "$" would allow a trailing newline
MAX_RELAY_STATE = 2000


class PortalsUnavailable(RuntimeError):
    """JSM could not be asked for its service desks."""


@dataclass(frozen=True)
class Portal:
    desk_id: str
    project_key: str
    name: str
    login_url: str  # our /portal/<id> link
    portal_url: str  # the JSM customer portal


def is_desk_id(value: str) -> bool:
    return bool(_DESK_ID.match(value))


def safe_target(relay_state: str | None, public_url: str | None = None) -> str | None:
    """Map RelayState to one of our own ``/portal/<digits>`` paths, or None.

    Only those paths, our own absolute portal links ``PUBLIC_URL/portal/<digits>`` (when
    ``public_url`` is given) and bare service desk IDs (as some IdPs' "default RelayState" fields
    are filled) are honoured; other absolute URLs, scheme-relative ``//host``, backslash tricks
    and ``javascript:`` never match, so RelayState cannot become an open redirect.
    """
    if not relay_state or len(relay_state) > MAX_RELAY_STATE:
        return None
    if public_url and relay_state.startswith(public_url.rstrip("/") + "/"):
        relay_state = relay_state[len(public_url.rstrip("/")) :]
    if is_desk_id(relay_state):
        return f"/portal/{relay_state}"
    return relay_state if PORTAL_PATH.match(relay_state) else None


_NEXT = re.compile(r"^/(?![/\\])[A-Za-z0-9._~!$&'()*+,;=:@%/?-]{0,1999}\Z")


def safe_next(value: str | None, public_url: str | None = None) -> str | None:
    """``value`` if it is a relative path on this host (``/x...``, not ``//host`` or ``/\\host``), else None.

    Our own absolute URLs ``PUBLIC_URL/...`` are accepted as their path. Backslashes, control and
    non-ASCII characters never pass, so a browser cannot read the value as another host.
    """
    if not value or len(value) > 2000:
        return None
    if public_url and value.startswith(public_url.rstrip("/") + "/"):
        value = value[len(public_url.rstrip("/")) :]
    return value if _NEXT.match(value) else None


def make_client(services: Services) -> JsmClient:
    """The JSM client from the sync feature's factory."""
    from scim_server.sync.jsm import make_jsm_client

    return make_jsm_client(services.settings)


class PortalCatalog:
    """Service desks (cached for ``ttl`` seconds) and the access decision for one user."""

    def __init__(
        self,
        services: Services,
        client_factory: Callable[[Services], JsmClient] = make_client,
        ttl: float = DESK_CACHE_SECONDS,
    ) -> None:
        self.services = services
        self._client_factory = client_factory
        self._client: JsmClient | None = None
        self._rules = RulesProvider(services.settings)
        self._ttl = ttl
        self._lock = threading.Lock()
        self._desks: list[ServiceDesk] | None = None
        self._loaded_at = 0.0

    @property
    def client(self) -> JsmClient:
        if self._client is None:
            try:
                self._client = self._client_factory(self.services)
            except ValueError as exc:
                raise PortalsUnavailable(str(exc)) from None
        return self._client

    def desks(self) -> list[ServiceDesk]:
        with self._lock:
            if self._desks is None or time.monotonic() - self._loaded_at > self._ttl:
                try:
                    self._desks = list(self.client.iter_service_desks())
                except JsmError as exc:
                    raise PortalsUnavailable(f"JSM service desks could not be listed: {exc}") from None
                self._loaded_at = time.monotonic()
            return list(self._desks)

    def has_desk(self, desk_id: str) -> bool:
        """Whether JSM has a service desk ``desk_id`` (from the cached listing)."""
        return any(desk.id == desk_id for desk in self.desks())

    def portals(self, desks: Iterable[ServiceDesk] | None = None) -> list[Portal]:
        public_url = self.services.settings.effective_public_url
        return [
            Portal(
                desk_id=desk.id,
                project_key=desk.project_key,
                name=desk.project_name or desk.project_key,
                login_url=f"{public_url}/portal/{desk.id}",
                portal_url=self.client.portal_url(desk.id),
            )
            for desk in (self.desks() if desks is None else desks)
        ]

    def allowed_portals(self, user_id: str) -> list[Portal]:
        """The portals ``user_id`` may use under the current mapping rules."""
        keys = self.allowed_project_keys(user_id)
        desks = self.desks()
        if keys is not None:
            wanted = {key.upper() for key in keys}
            desks = [desk for desk in desks if desk.project_key.upper() in wanted]
        return self.portals(desks)

    def allowed_project_keys(self, user_id: str) -> set[str] | None:
        """Project keys the user may use; None means every portal."""
        from scim_server.sync.access import allowed_project_keys

        rules = self._rules.current()
        with self.services.session_factory() as session:
            keys = allowed_project_keys(session, rules, user_id)
        return None if keys is None else set(keys)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
