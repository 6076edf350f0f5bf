"""JSM Cloud REST client. The JSM emulator (a web server) lives in ``jsm_client.emulator`` and is
imported only when asked for."""

from jsm_client.client import JsmClient
from jsm_client.errors import (
    JsmAuthError,
    JsmBadRequest,
    JsmConflict,
    JsmError,
    JsmNotFound,
    JsmRateLimited,
    JsmUnavailable,
)
from jsm_client.models import Customer, Organization, ServiceDesk

__all__ = [
    "Customer",
    "JsmAuthError",
    "JsmBadRequest",
    "JsmClient",
    "JsmConflict",
    "JsmError",
    "JsmNotFound",
    "JsmRateLimited",
    "JsmUnavailable",
    "Organization",
    "ServiceDesk",
]
