"""The mapping rules file (TOML, see CONTRACT.md): parsed, validated, and reloaded when it changes.

Global sections (``[organizations]``, ``[portals]``) apply to every directory; a directory's own
sections (``[directories.NAME.organizations...]``, ``[directories.NAME.portals]``) come first for
that directory. ``[shared_organizations]`` names the organizations that several directories may
lead to (see docs/tenants.md).

``Rules`` is a plain immutable value used by the pure planner; ``RulesProvider`` watches the file
(mtime and size first, then a content hash) and keeps the last valid rules when an edit is broken.
"""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from scim_server.settings import Settings
from scim_server.sync.names import organization_key

log = logging.getLogger(__name__)

MAX_ORG_NAME = 200  # JSM's limit on organization names
_TOP_LEVEL = {"organizations", "portals", "directories", "shared_organizations"}
_ORG_KEYS = {"on_the_fly", "groups", "domains"}
_DIRECTORY_KEYS = {"organization_prefix", "organizations", "portals"}


class RulesError(ValueError):
    """The rules file is missing, unreadable or invalid; the message says where."""


@dataclass(frozen=True)
class DirectoryRules:
    """One directory's own rules (``[directories.NAME]``); ``on_the_fly`` ``None`` = the global value."""

    on_the_fly: bool | None = None
    organization_prefix: str = ""  # prepended to the names of this directory's on-the-fly organizations
    groups: Mapping[str, str] = field(default_factory=dict)
    domains: Mapping[str, str] = field(default_factory=dict)
    portals: Mapping[str, tuple[str, ...]] | None = None


@dataclass(frozen=True)
class Rules:
    """Validated mapping rules. ``portals`` is ``None`` when the file has no ``[portals]`` section
    (nothing is linked and every portal is allowed); group keys are matched case-insensitively.
    ``shared`` maps an organization key (``planner.organization_key``) to the directories that
    share it."""

    on_the_fly: bool = True
    groups: Mapping[str, str] = field(default_factory=dict)  # casefolded IdP group name -> org
    domains: Mapping[str, str] = field(default_factory=dict)  # lower-case e-mail domain -> org
    portals: Mapping[str, tuple[str, ...]] | None = None  # org -> project keys
    digest: str = "default"
    directories: Mapping[str, DirectoryRules] = field(default_factory=dict)
    shared: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def of(self, directory: str) -> DirectoryRules:
        """The directory's own rules (empty when the file has none for it)."""
        return self.directories.get(directory, _NO_DIRECTORY_RULES)


_NO_DIRECTORY_RULES = DirectoryRules()


DEFAULT_RULES = Rules()


def parse_rules(text: str, source: str = "rules") -> Rules:
    """Parse and validate TOML rules text; raises ``RulesError`` naming the offending entry."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{source}: invalid TOML: {exc}") from exc
    _reject_unknown(data, _TOP_LEVEL, source, "")
    on_the_fly, groups, domains = _organizations(data, source, "")
    directories = {name: _directory(name, table, source)
                   for name, table in _table(data, "directories", source).items()}
    return Rules(
        on_the_fly=True if on_the_fly is None else on_the_fly,
        groups=groups,
        domains=domains,
        portals=_portals(data, source, "") if "portals" in data else None,
        digest=hashlib.sha256(text.encode("utf-8")).hexdigest(),
        directories=directories,
        shared=_shared(data, source),
    )


def _organizations(data: Mapping[str, Any], source: str, prefix: str
                   ) -> tuple[bool | None, dict[str, str], dict[str, str]]:
    """(on_the_fly or None, groups, domains) of an ``[organizations]`` section under ``prefix``."""
    orgs = _table(data, "organizations", source, prefix)
    where = f"{prefix}organizations"
    _reject_unknown(orgs, _ORG_KEYS, source, f"{where}.")
    on_the_fly = orgs.get("on_the_fly")
    if on_the_fly is not None and not isinstance(on_the_fly, bool):
        raise RulesError(f"{source}: {where}.on_the_fly must be true or false")
    groups = _name_map(_table(orgs, "groups", source, f"{where}."), source, f"{where}.groups")
    domains = _name_map(_table(orgs, "domains", source, f"{where}."), source, f"{where}.domains")
    for domain in domains:
        if "@" in domain or "." not in domain or " " in domain:
            raise RulesError(f"{source}: {where}.domains: {domain!r} is not an e-mail domain")
    return (on_the_fly, {k.casefold(): v for k, v in groups.items()},
            {k.lower().lstrip("@"): v for k, v in domains.items()})


def _directory(name: str, table: Any, source: str) -> DirectoryRules:
    from scim_server.store.directories import validate_directory_name

    where = f'directories."{name}"'
    try:
        validate_directory_name(name)
    except ValueError as exc:
        raise RulesError(f"{source}: {where}: {exc}") from None
    if not isinstance(table, dict):
        raise RulesError(f"{source}: {where} must be a table")
    _reject_unknown(table, _DIRECTORY_KEYS, source, f"{where}.")
    prefix = table.get("organization_prefix", "")
    if not isinstance(prefix, str) or len(prefix) > MAX_ORG_NAME // 2 or (prefix and not prefix.strip()):
        raise RulesError(f"{source}: {where}.organization_prefix must be a short text")
    on_the_fly, groups, domains = _organizations(table, source, f"{where}.")
    portals = _portals(table, source, f"{where}.") if "portals" in table else None
    return DirectoryRules(on_the_fly, prefix, groups, domains, portals)


def _shared(data: Mapping[str, Any], source: str) -> dict[str, frozenset[str]]:
    from scim_server.store.directories import validate_directory_name

    shared: dict[str, frozenset[str]] = {}
    for org, names in _table(data, "shared_organizations", source).items():
        where = f'shared_organizations."{org}"'
        _org_name(org, source, "shared_organizations key")
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise RulesError(f"{source}: {where} must be a list of directory names")
        for name in names:
            try:
                validate_directory_name(name)
            except ValueError as exc:
                raise RulesError(f"{source}: {where}: {exc}") from None
        key = organization_key(org)
        if key in shared:
            raise RulesError(f"{source}: {where} is listed twice (names are compared as JSM does)")
        shared[key] = frozenset(names)
    return shared


def load_rules(path: str | os.PathLike[str]) -> Rules:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the rules file: {exc.strerror or exc}") from exc
    return parse_rules(text, str(path))


def _reject_unknown(data: Mapping[str, Any], allowed: set[str], source: str, prefix: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise RulesError(f"{source}: unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(allowed))})")


def _table(data: Mapping[str, Any], key: str, source: str, prefix: str = "") -> Mapping[str, Any]:
    value = data.get(key, {})
    if not isinstance(value, dict):
        raise RulesError(f"{source}: {prefix}{key} must be a table")
    return value


def _org_name(value: Any, source: str, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise RulesError(f"{source}: {where} must be a non-empty organization name")
    if len(value) > MAX_ORG_NAME:
        raise RulesError(f"{source}: {where} is longer than {MAX_ORG_NAME} characters")
    return value


def _name_map(table: Mapping[str, Any], source: str, where: str) -> dict[str, str]:
    result: dict[str, str] = {}
    seen: dict[str, str] = {}
    for key, value in table.items():
        if not key.strip():
            raise RulesError(f"{source}: {where} has an empty key")
        folded = key.casefold()
        if folded in seen:
            raise RulesError(f"{source}: {where}: {key!r} and {seen[folded]!r} differ only in case")
        seen[folded] = key
        result[key] = _org_name(value, source, f'{where}."{key}"')
    return result


def _portals(data: Mapping[str, Any], source: str, prefix: str) -> dict[str, tuple[str, ...]]:
    portals: dict[str, tuple[str, ...]] = {}
    for org, keys in _table(data, "portals", source, prefix).items():
        _org_name(org, source, f"{prefix}portals key")
        where = f'{prefix}portals."{org}"'
        if not isinstance(keys, list) or not all(isinstance(k, str) and k.strip() for k in keys):
            raise RulesError(f"{source}: {where} must be a list of service desk project keys")
        portals[org] = tuple(dict.fromkeys(k.strip().upper() for k in keys))
    return portals


def rule_collisions(rules: Rules) -> list[str]:
    """Organizations that rules of several directories lead to without ``[shared_organizations]``
    saying so: only the owner's users will join them (the others are refused as conflicts)."""
    targets: dict[str, set[str]] = {}
    for directory, own in rules.directories.items():
        for org in (*own.groups.values(), *own.domains.values()):
            targets.setdefault(organization_key(org), set()).add(directory)
    return [f"organization {key!r} is the target of rules of directories {', '.join(sorted(names))} but is not "
            "in [shared_organizations]: only its owner's users will join it"
            for key, names in sorted(targets.items()) if len(names) > 1 and key not in rules.shared]


class RulesProvider:
    """The current rules: re-read when the file changes, last valid version kept on a bad edit.

    Thread-safe. ``current()`` costs one ``stat`` when nothing changed. Without a configured file
    the rules are the defaults (on-the-fly group mapping, no portal restrictions).
    """

    def __init__(self, settings: Settings) -> None:
        self.path = Path(settings.mappings_path) if settings.mappings_path else None
        self._lock = threading.Lock()
        self._rules: Rules | None = None if self.path else DEFAULT_RULES
        self._signature: tuple[int, int] | None = None
        self.last_error: str | None = None

    def current(self) -> Rules:
        """The rules in force; raises ``RulesError`` only if no valid version was ever loaded."""
        if self.path is None:
            return DEFAULT_RULES
        with self._lock:
            self._refresh()
            if self._rules is None:
                raise RulesError(self.last_error or f"{self.path}: no valid rules")
            return self._rules

    def _refresh(self) -> None:
        assert self.path is not None
        try:
            stat = self.path.stat()
        except OSError as exc:
            self._remember_error(f"{self.path}: cannot read the rules file: {exc.strerror or exc}")
            return
        signature = (stat.st_mtime_ns, stat.st_size)
        if signature == self._signature:
            return
        try:
            rules = load_rules(self.path)
        except RulesError as exc:
            self._remember_error(str(exc))
            return
        self._signature = signature
        self.last_error = None
        if self._rules is None or rules.digest != self._rules.digest:
            # a first load happens in every provider (each login's): DEBUG; a change of the file: INFO
            log.log(logging.DEBUG if self._rules is None else logging.INFO, "mapping rules loaded from %s (digest %s)",
                    self.path, rules.digest[:12])
            self._rules = rules

    def _remember_error(self, message: str) -> None:
        if message != self.last_error:
            log.error("mapping rules not reloaded, keeping the last valid version: %s", message)
        self.last_error = message
