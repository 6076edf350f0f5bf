"""scim2-server's application, built as its ``scim2-server`` command builds it, for a production
WSGI server (``compare_scim2_server.py`` runs it under gunicorn: one process, since its storage is
in memory, with keep-alive connections like ours).

The command's own server (``wsgiref`` with a thread per request) answers HTTP/1.0, so every request
opens a new connection, and its listen backlog of 5 overflows under 8 client threads: the client
then waits a 1 s SYN retransmission (the 1,050 ms maxima of earlier runs). That measured the test
server, not scim2-server. Environment: SCIM2_BENCH_TOKEN, the bearer token to accept.
"""
from __future__ import annotations

import os
import secrets

from scim2_models import ScimProvider
from scim2_server.memory import InMemoryStorage
from scim2_server.service import ScimService
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME, BearerTokenApplication
from scim2_server.utils import load_default_resource_types, load_default_schemas, load_default_service_provider_config


def make_app() -> BearerTokenApplication:
    config = load_default_service_provider_config()
    config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
    provider = ScimProvider.from_discovery(load_default_schemas().values(), load_default_resource_types().values(),
                                           config=config, policy=None)
    service = ScimService(provider, secret=os.environ.get("SCIM2_SERVER_SECRET") or secrets.token_urlsafe(32))
    return BearerTokenApplication(InMemoryStorage(), provider, service=service,
                                  bearer_tokens=[os.environ["SCIM2_BENCH_TOKEN"]])


app = make_app()
