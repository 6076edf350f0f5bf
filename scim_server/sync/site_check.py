"""Is the JSM site usable for propagation? (``jsm-scim jsm check``, and ``serve``/``worker`` on start.)

What is checked, and through which operation (docs/jsm-api.md):
- reachable: ``GET /rest/servicedeskapi/info`` (answers without credentials);
- credentials: ``GET /rest/api/3/myself`` (401 when the e-mail or API token is wrong);
- permission: creating customers needs the Jira Administrator global permission, and with it
  organizations can be managed whatever the site's organization-management setting
  (``GET /rest/api/3/mypermissions?permissions=ADMINISTER``);
- every service desk (project key) the rules name exists;
- each desk's customer access, open or restricted: no operation reports it; JSM refuses to remove
  customers from a desk with open access or public sign-up, so an empty removal tells
  (``JsmClient.probe_customer_access``; inferred, unverified on a real site: never a failure).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from jsm_client import JsmAuthError, JsmClient, JsmError
from scim_server.settings import Settings
from scim_server.sync.rules import Rules

OPEN_MEANING = ("open: any customer of the site may use this portal; portal rules and deprovisioning "
                "have no effect on it")
RESTRICTED_MEANING = ("restricted: only customers on the desk or in a linked organization may use it; "
                      "portal rules and deprovisioning apply")


@dataclass(frozen=True)
class Check:
    """One finding; ``ok`` False fails the check, None is a warning (could not tell, or no effect)."""

    name: str
    ok: bool | None
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True)
class DeskAccess:
    id: str
    project_key: str
    name: str
    access: str  # "open", "restricted" or "unknown"
    meaning: str
    in_rules: bool

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "projectKey": self.project_key, "name": self.name, "customerAccess": self.access,
                "meaning": self.meaning, "namedInRules": self.in_rules}


@dataclass
class SiteReport:
    site: str
    checks: list[Check] = field(default_factory=list)
    desks: list[DeskAccess] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """Propagation can work: nothing failed (warnings allowed)."""
        return all(check.ok is not False for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {"site": self.site, "ok": self.ok, "checks": [c.as_dict() for c in self.checks],
                "servicedesks": [d.as_dict() for d in self.desks]}


def rules_project_keys(rules: Rules) -> dict[str, list[str]]:
    """Project key -> the organizations whose portal rules name it (global and per directory)."""
    named: dict[str, list[str]] = {}
    tables = [rules.portals or {}] + [own.portals or {} for own in rules.directories.values()]
    for table in tables:
        for organization, keys in table.items():
            for key in keys:
                named.setdefault(key.upper(), []).append(organization)
    return named


def check_site(client: JsmClient, rules: Rules) -> SiteReport:
    """Every check, in order; a site that does not answer or rejects the credentials ends the report."""
    report = SiteReport(client.base_url)
    if not _reachable(client, report) or not _authenticated(client, report):
        return report
    _permission(client, report)
    _desks(client, rules, report)
    return report


def _reachable(client: JsmClient, report: SiteReport) -> bool:
    try:
        client.server_info()
    except JsmError as exc:
        report.checks.append(Check("reachable", False, f"{client.base_url} does not answer as a JSM site: {exc}"))
        return False
    report.checks.append(Check("reachable", True, f"{client.base_url} answers"))
    return True


def _authenticated(client: JsmClient, report: SiteReport) -> bool:
    try:
        account = client.myself()
    except JsmAuthError as exc:
        report.checks.append(Check("credentials", False, f"rejected for {client.email} ({exc.status}): check "
                                                         "JSM_SCIM_JSM_EMAIL and JSM_SCIM_JSM_API_TOKEN"))
        return False
    except JsmError as exc:
        report.checks.append(Check("credentials", False, f"could not be checked: {exc}"))
        return False
    who = account.get("emailAddress") or account.get("displayName") or client.email
    report.checks.append(Check("credentials", True, f"valid (service account {who})"))
    return True


def _permission(client: JsmClient, report: SiteReport) -> None:
    name = "permission"
    try:
        granted = client.my_permissions("ADMINISTER").get("ADMINISTER")
    except JsmError as exc:
        report.checks.append(Check(name, None, f"could not be checked ({exc}); creating customers needs the "
                                               "Jira Administrator global permission"))
        return
    if granted is None:
        report.checks.append(Check(name, None, "JSM did not report the ADMINISTER permission; creating customers "
                                               "needs the Jira Administrator global permission"))
    elif granted:
        report.checks.append(Check(name, True, "Jira administrator: may create customers and manage organizations"))
    else:
        report.checks.append(Check(name, False, "the service account is not a Jira administrator: JSM refuses to "
                                                "create customers (and, by site setting, organizations) for it"))


def _desks(client: JsmClient, rules: Rules, report: SiteReport) -> None:
    try:
        desks = list(client.iter_service_desks())
    except JsmError as exc:
        report.checks.append(Check("service desks", False, f"could not be listed: {exc}"))
        return
    named = rules_project_keys(rules)
    known = {desk.project_key.upper() for desk in desks}
    missing = sorted(set(named) - known)
    for key in missing:
        report.checks.append(Check("service desks", False, f"the rules name {key} (for {', '.join(named[key])}) "
                                                           "but JSM has no service desk with that project key"))
    if not missing:
        report.checks.append(Check("service desks", True, f"{len(desks)} on the site; every one the rules name "
                                                          f"exists ({len(named)})"))
    for desk in desks:
        access, meaning = _access(client, desk.id)
        in_rules = desk.project_key.upper() in named
        report.desks.append(DeskAccess(desk.id, desk.project_key, desk.project_name, access, meaning, in_rules))
        if access == "open" and in_rules:
            report.checks.append(Check(f"customer access {desk.project_key}", None, OPEN_MEANING))


def _access(client: JsmClient, desk_id: str) -> tuple[str, str]:
    try:
        restricted = client.probe_customer_access(desk_id)
    except JsmError as exc:
        return "unknown", f"could not be determined ({exc})"
    return ("restricted", RESTRICTED_MEANING) if restricted else ("open", OPEN_MEANING + " (inferred)")


def preflight(settings: Settings, log: logging.Logger) -> SiteReport:
    """The checks ``serve`` and ``worker`` run on start against a configured site.

    ``ValueError`` (one line, the process refuses to start) when the credentials are missing or
    rejected; every other finding is logged, and the process starts (the worker retries what fails).
    """
    from scim_server.sync.jsm import make_jsm_client
    from scim_server.sync.rules import RulesError, RulesProvider

    with make_jsm_client(settings, max_attempts=2, max_retry_seconds=10.0) as client:
        try:
            rules = RulesProvider(settings).current()
        except RulesError:
            rules = Rules()  # reported on its own by the worker
        report = check_site(client, rules)
    for check in report.checks:
        if check.name == "credentials" and check.ok is False and check.detail.startswith("rejected"):
            raise ValueError(f"JSM at {report.site}: credentials {check.detail}")
        level = logging.INFO if check.ok else logging.WARNING
        log.log(level, "JSM check %s: %s", check.name, check.detail)
    return report
