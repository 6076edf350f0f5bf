"""Plain immutable values returned by :class:`jsm_client.JsmClient`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Customer:
    """A JSM customer account. ``email`` is ``None`` when privacy settings hide it."""

    account_id: str
    email: str | None
    display_name: str
    active: bool = True

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Customer:
        return cls(
            account_id=str(data["accountId"]),
            email=data.get("emailAddress"),
            display_name=data.get("displayName") or "",
            active=bool(data.get("active", True)),
        )


@dataclass(frozen=True)
class Organization:
    """``scim_managed``: Atlassian Guard's own SCIM manages it (``scimManaged``; absent on older
    organizations and in older API versions, then ``False``)."""

    id: str
    name: str
    scim_managed: bool = False

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Organization:
        return cls(id=str(data["id"]), name=data.get("name", ""), scim_managed=data.get("scimManaged") is True)


@dataclass(frozen=True)
class ServiceDesk:
    id: str
    project_id: str
    project_key: str
    project_name: str

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ServiceDesk:
        return cls(
            id=str(data["id"]),
            project_id=str(data.get("projectId", "")),
            project_key=data.get("projectKey", ""),
            project_name=data.get("projectName", ""),
        )
