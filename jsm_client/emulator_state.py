"""Domain state of the JSM emulator: customers, organizations and service desks.

Independent of the client (it must stay a second implementation of Atlassian's
contract, see ``shared/reference/jsm-servicedeskapi-openapi.json``). Not thread-safe by
itself: :class:`jsm_client.emulator.JsmEmulator` serialises access with a lock.
Error texts and i18n keys are modelled on JSM but unverified.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

MAX_ORG_NAME = 200
MAX_PROPERTY_KEY = 255
MAX_PROPERTY_BYTES = 32768
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

DEFAULT_SERVICE_DESKS: tuple[Mapping[str, Any], ...] = (
    {"id": "1", "projectId": "10001", "projectKey": "HELP", "projectName": "Help Desk"},
    {"id": "2", "projectId": "10002", "projectKey": "BILL", "projectName": "Billing"},
)


class ApiError(Exception):
    """An error answer: HTTP status, message and i18n key."""

    def __init__(self, status: int, message: str, i18n_key: str = "", parameters: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.i18n_key = i18n_key
        self.parameters = list(parameters)


@dataclass
class CustomerRecord:
    account_id: str
    email: str
    display_name: str
    active: bool = True
    time_zone: str = "UTC"


@dataclass
class OrganizationRecord:
    id: int
    name: str
    members: set[str] = field(default_factory=set)
    properties: dict[str, Any] = field(default_factory=dict)
    scim_managed: bool = False  # synced by Atlassian Guard's own SCIM (``scimManaged``)


@dataclass
class ServiceDeskRecord:
    id: str
    project_id: str
    project_key: str
    project_name: str
    open_access: bool = False
    organization_ids: set[int] = field(default_factory=set)
    account_ids: set[str] = field(default_factory=set)


class EmulatorState:
    """All objects of one emulated JSM site."""

    def __init__(self, service_desks: Iterable[str | Mapping[str, Any]] | None = None) -> None:
        # Portal-only account IDs look like qm:<site uuid>:<hex>; the uuid is per site.
        self.site_id = str(uuid.uuid4())
        self.customers: dict[str, CustomerRecord] = {}
        self._by_email: dict[str, str] = {}
        self.organizations: dict[int, OrganizationRecord] = {}
        self._next_org_id = 1
        specs = DEFAULT_SERVICE_DESKS if service_desks is None else tuple(service_desks)
        self.service_desks = [_desk_from_spec(spec, index) for index, spec in enumerate(specs, start=1)]

    # ---------------------------------------------------------------- customers

    def create_customer(self, email: Any, display_name: Any, *, strict_conflict: bool) -> CustomerRecord:
        if not isinstance(email, str) or not _EMAIL.match(email.strip()):
            raise ApiError(400, "The email address is invalid.", "sd.customer.create.error.email.invalid")
        email = email.strip()
        if email.casefold() in self._by_email:
            # 409 only when asked for: the OpenAPI doc, POST /rest/servicedeskapi/customer.
            raise ApiError(
                409 if strict_conflict else 400,
                "An account already exists for this email",
                "sd.customer.create.error.email.exists",
            )
        name = display_name if isinstance(display_name, str) and display_name.strip() else email
        record = CustomerRecord(f"qm:{self.site_id}:{secrets.token_hex(12)}", email, name)
        self.customers[record.account_id] = record
        self._by_email[email.casefold()] = record.account_id
        return record

    def customer(self, account_id: str) -> CustomerRecord:
        if account_id not in self.customers:
            raise ApiError(404, f"User {account_id} does not exist.", "sd.user.not.found", [account_id])
        return self.customers[account_id]

    def delete_customer(self, account_id: str) -> None:
        """Forget the account, its memberships and desk access (an Atlassian admin deleting it)."""
        record = self.customer(account_id)
        del self.customers[account_id]
        self._by_email.pop(record.email.casefold(), None)
        for org in self.organizations.values():
            org.members.discard(account_id)
        for desk in self.service_desks:
            desk.account_ids.discard(account_id)

    def search_customers(self, query: str, account_id: str | None = None) -> list[CustomerRecord]:
        """Exact ``account_id``, else a prefix match on e-mail, display name or any word of it."""
        if account_id:
            return [self.customers[account_id]] if account_id in self.customers else []
        return [c for c in self.customers.values() if _matches(c, query)]

    def require_accounts(self, account_ids: Iterable[str]) -> list[str]:
        """The unknown IDs among ``account_ids``."""
        return [a for a in account_ids if a not in self.customers]

    # ------------------------------------------------------------ organizations

    def create_organization(self, name: Any) -> tuple[OrganizationRecord, bool]:
        if not isinstance(name, str) or not name.strip() or len(name) > MAX_ORG_NAME:
            raise ApiError(
                400,
                f"The organization name must contain 1-{MAX_ORG_NAME} characters.",
                "sd.admin.organization.name.invalid",
            )
        for org in self.organizations.values():
            if org.name == name:  # idempotent by name (case sensitivity unverified)
                return org, False
        org = OrganizationRecord(self._next_org_id, name)
        self.organizations[org.id] = org
        self._next_org_id += 1
        return org, True

    def organization(self, org_id: Any) -> OrganizationRecord:
        key = _as_int(org_id)
        org = self.organizations.get(key) if key is not None else None
        if org is None:
            raise ApiError(404, f"Organization {org_id} does not exist.", "sd.admin.organization.not.found", [str(org_id)])
        return org

    def delete_organization(self, org_id: Any) -> None:
        org = self.organization(org_id)
        del self.organizations[org.id]
        for desk in self.service_desks:
            desk.organization_ids.discard(org.id)

    def organizations_of(self, account_id: str | None) -> list[OrganizationRecord]:
        orgs = sorted(self.organizations.values(), key=lambda o: o.id)
        if account_id is None:
            return orgs
        self._require_account(account_id)
        return [o for o in orgs if account_id in o.members]

    def change_members(self, org: OrganizationRecord, account_ids: list[str], *, add: bool) -> None:
        """All-or-nothing: 400 if any account is unknown, nothing changes then."""
        unknown = self.require_accounts(account_ids)
        if unknown:
            raise ApiError(400, _unknown_accounts_message(unknown), "sd.organization.users.invalid", unknown)
        if add:
            org.members.update(account_ids)
        else:
            org.members.difference_update(account_ids)

    def members(self, org: OrganizationRecord) -> list[CustomerRecord]:
        return [self.customers[a] for a in sorted(org.members)]

    # --------------------------------------------------------------- properties

    def set_property(self, org: OrganizationRecord, key: str, value: Any, size: int) -> bool:
        """Store the value; True when the property was created."""
        if not 0 < len(key) <= MAX_PROPERTY_KEY:
            raise ApiError(400, "The property key is invalid.", "jira.properties.service.invalid.key")
        if size > MAX_PROPERTY_BYTES:
            raise ApiError(400, "The property value is too large.", "jira.properties.service.value.too.long")
        created = key not in org.properties
        org.properties[key] = value
        return created

    def get_property(self, org: OrganizationRecord, key: str) -> Any:
        if key not in org.properties:
            raise ApiError(404, f"Property {key} does not exist.", "jira.properties.service.property.not.found", [key])
        return org.properties[key]

    def delete_property(self, org: OrganizationRecord, key: str) -> None:
        self.get_property(org, key)
        del org.properties[key]

    # ------------------------------------------------------------ service desks

    def service_desk(self, ref: str) -> ServiceDeskRecord:
        """By ID, project key (``HELP``) or ``projectKey:HELP``."""
        key = ref[len("projectKey:"):] if ref.startswith("projectKey:") else ref
        for desk in self.service_desks:
            if desk.id == ref or desk.project_key == key:
                return desk
        raise ApiError(404, f"Service desk {ref} does not exist.", "sd.servicedesk.error.not.found", [ref])

    def desk_organizations(self, desk: ServiceDeskRecord, account_id: str | None) -> list[OrganizationRecord]:
        return [o for o in self.organizations_of(account_id) if o.id in desk.organization_ids]

    def link_organization(self, desk: ServiceDeskRecord, org_id: Any, *, add: bool) -> None:
        org = self.organization(org_id)
        if add:
            desk.organization_ids.add(org.id)
        else:
            desk.organization_ids.discard(org.id)

    def desk_customers(self, desk: ServiceDeskRecord, query: str | None) -> list[CustomerRecord]:
        found = [self.customers[a] for a in sorted(desk.account_ids)]
        return [c for c in found if _matches(c, query)] if query else found

    def add_desk_customers(self, desk: ServiceDeskRecord, account_ids: list[str]) -> None:
        """Valid accounts are added even when others are unknown (then 400)."""
        unknown = self.require_accounts(account_ids)
        desk.account_ids.update(a for a in account_ids if a in self.customers)
        if unknown:
            raise ApiError(400, _unknown_accounts_message(unknown), "sd.customers.add.invalid", unknown)

    def remove_desk_customers(self, desk: ServiceDeskRecord, account_ids: list[str]) -> None:
        if desk.open_access:
            raise ApiError(
                400,
                "Customers cannot be removed from a service desk with open access or public sign-up.",
                "sd.customers.remove.open.access",
            )
        desk.account_ids.difference_update(account_ids)

    # ----------------------------------------------------------------- snapshot

    def snapshot(self) -> dict[str, list[dict[str, Any]]]:
        """The ``GET /_emulator/state`` document."""
        return {
            "customers": [
                {"accountId": c.account_id, "emailAddress": c.email, "displayName": c.display_name, "active": c.active}
                for c in self.customers.values()
            ],
            "organizations": [
                _org_state(o) for o in sorted(self.organizations.values(), key=lambda o: o.id)
            ],
            "servicedesks": [
                {
                    "id": d.id,
                    "projectKey": d.project_key,
                    "organizationIds": [str(i) for i in sorted(d.organization_ids)],
                    "accountIds": sorted(d.account_ids),
                }
                for d in self.service_desks
            ],
        }

    def _require_account(self, account_id: str) -> None:
        self.customer(account_id)


def _org_state(org: OrganizationRecord) -> dict[str, Any]:
    """The contract's organization entry; ``properties`` and ``scimManaged`` only when there are any."""
    entry: dict[str, Any] = {"id": str(org.id), "name": org.name, "accountIds": sorted(org.members)}
    if org.properties:
        entry["properties"] = dict(org.properties)
    if org.scim_managed:
        entry["scimManaged"] = True
    return entry


def _desk_from_spec(spec: str | Mapping[str, Any], index: int) -> ServiceDeskRecord:
    """A desk from a project key (``"HR"``) or a mapping shaped like ServiceDeskDTO."""
    if isinstance(spec, str):
        spec = {"projectKey": spec}
    key = str(spec["projectKey"])
    return ServiceDeskRecord(
        id=str(spec.get("id", index)),
        project_id=str(spec.get("projectId", 10000 + index)),
        project_key=key,
        project_name=str(spec.get("projectName", key)),
        open_access=bool(spec.get("openAccess", False)),
    )


def _matches(customer: CustomerRecord, query: str) -> bool:
    q = query.strip().casefold()
    name = customer.display_name.casefold()
    return (
        customer.email.casefold().startswith(q)
        or name.startswith(q)
        or any(word.startswith(q) for word in name.split())
    )


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _unknown_accounts_message(unknown: list[str]) -> str:
    return "The following accounts do not exist: " + ", ".join(unknown)
