"""JSM Cloud REST client and a faithful JSM emulator for tests and local runs."""

from jsm_client.client import JsmClient
from jsm_client.emulator import EmulatorServer, JsmEmulator, run_emulator
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
    "EmulatorServer",
    "JsmAuthError",
    "JsmBadRequest",
    "JsmClient",
    "JsmConflict",
    "JsmEmulator",
    "JsmError",
    "JsmNotFound",
    "JsmRateLimited",
    "JsmUnavailable",
    "Organization",
    "ServiceDesk",
    "run_emulator",
]
