"""What an installation decides about propagation beyond the rules file (read from the settings once).

``keep_deleted_organizations``: an organization the bridge created is deleted in JSM when its last
group is deleted (or its rule removed); with this set it is kept (the bridge takes back its members
and desk links and stops managing it), so requests shared with it and org-based queues stay intact.
``revoke_portal_access_on_delete``: revoke the portal-only access of accounts the bridge created
when their user is deleted in the IdP (off by default: JSM's API has no operation to restore it).
``bridge_url`` and ``OWNERSHIP_PROPERTY`` name the bridge in the property it sets on the
organizations it owns (``ownership_value``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scim_server.settings import Settings

#: The JSM organization property (``PUT /organization/{id}/property/{key}``) on organizations the bridge owns.
OWNERSHIP_PROPERTY = "jsm-scim-bridge"
MANAGED_BY = "jsm-scim-bridge"


@dataclass(frozen=True)
class SyncPolicy:
    keep_deleted_organizations: bool = False
    bridge_url: str = ""
    revoke_portal_access_on_delete: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> "SyncPolicy":
        return cls(settings.keep_deleted_organizations, settings.effective_public_url,
                   settings.revoke_portal_access_on_delete)

    def ownership_value(self, directory: str | None) -> dict[str, Any]:
        """The property value: which bridge manages the organization, for which directory."""
        return {"managedBy": MANAGED_BY, "bridge": self.bridge_url, "directory": directory or ""}


def names_this_bridge(value: Any, directory: str | None, bridge_url: str) -> bool:
    """Whether a property value read from JSM says this bridge owns the organization for ``directory``."""
    return (isinstance(value, dict) and value.get("managedBy") == MANAGED_BY
            and value.get("bridge") == bridge_url and value.get("directory") == (directory or ""))
