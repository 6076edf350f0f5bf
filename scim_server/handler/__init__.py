"""The SCIM handler layer: create, get, list/search, replace, patch and delete of Users and Groups,
free of any web framework. The Flask views (``scim_server.api.resources``) read the request, call
these and render the ``Answer``; JIT provisioning (``scim_server.sso.jit``) calls the same ones.
"""
from scim_server.handler.kinds import GROUPS, KINDS, USERS, Kind
from scim_server.handler.operations import (
    Answer,
    Caller,
    create,
    delete,
    get,
    list_resources,
    patch,
    replace_resource,
    search,
    search_all,
)

__all__ = [
    "GROUPS", "KINDS", "USERS", "Answer", "Caller", "Kind",
    "create", "delete", "get", "list_resources", "patch", "replace_resource", "search", "search_all",
]
