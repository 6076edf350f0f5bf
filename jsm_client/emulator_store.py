"""The emulator's state in a file (0600), so a demo's "JSM" survives a restart of ``jsm-scim serve``.

Records are dataclasses; they are written field by field (sets as sorted lists) and read back
the same way, so a field added to a record is kept without a change here. Writes are atomic
(a temporary file, then a rename).
"""
from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any, Iterable, Mapping, TypeVar

from jsm_client.emulator_state import CustomerRecord, EmulatorState, OrganizationRecord, ServiceDeskRecord

FORMAT = 1
R = TypeVar("R")


def save_state(state: EmulatorState, path: Path) -> None:
    """Write ``state`` to ``path`` atomically, mode 0600."""
    document = {
        "format": FORMAT,
        "site_id": state.site_id,
        "next_org_id": state._next_org_id,
        "customers": [_record(c) for c in state.customers.values()],
        "organizations": [_record(o) for o in state.organizations.values()],
        "servicedesks": [_record(d) for d in state.service_desks],
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(document, handle)
    os.replace(temporary, path)


def load_state(path: Path, service_desks: Iterable[str | Mapping[str, Any]] | None = None) -> EmulatorState:
    """The state saved in ``path``; a fresh state (``service_desks``) when there is no file.

    ``ValueError`` when the file is not a saved state (it is never overwritten silently)."""
    state = EmulatorState(service_desks)
    if not path.exists():
        return state
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        if document.get("format") != FORMAT:
            raise ValueError("unknown format")
        state.site_id = str(document["site_id"])
        state.customers = {c.account_id: c for c in _records(CustomerRecord, document["customers"])}
        state._by_email = {c.email.casefold(): c.account_id for c in state.customers.values()}
        state.organizations = {o.id: o for o in _records(OrganizationRecord, document["organizations"])}
        state._next_org_id = int(document["next_org_id"])
        state.service_desks = list(_records(ServiceDeskRecord, document["servicedesks"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path} is not a saved JSM emulator state ({exc})") from None
    return state


def _record(record: Any) -> dict[str, Any]:
    return {f.name: _plain(getattr(record, f.name)) for f in dataclasses.fields(record)}


def _plain(value: Any) -> Any:
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    return value


def _records(cls: type[R], rows: list[dict[str, Any]]) -> Iterable[R]:
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    for row in rows:
        values = {}
        for name, value in row.items():
            if name not in fields:
                continue  # written by a newer emulator: dropped
            factory = fields[name].default_factory
            values[name] = set(value) if factory is set and isinstance(value, list) else value
        yield cls(**values)
