"""How JSM compares organization names, and finding an organization by name in JSM's listing.

JSM keeps a lower-cased copy of every organization name next to the name itself and looks names
up through it (the ``LOWER_NAME`` column of Jira Service Management's organization table), so
"Acme Corp" and "acme corp" are one organization; the web UI trims surrounding whitespace. The
bridge therefore compares names by :func:`organization_key` (trimmed, lower-cased; inner
whitespace and accents are significant) everywhere: the catalog, ownership, rules, renames.

Because JSM's rule is not documented for the REST API, the catalog stays tolerant: an exact match
wins; otherwise exactly one organization with the same key is adopted; several candidates (a JSM
that compares case-sensitively after all) are refused rather than guessed.
"""
from __future__ import annotations

from typing import Iterable


class AmbiguousOrganization(LookupError):
    """JSM has several organizations whose names match one name the way JSM compares them."""

    def __init__(self, name: str, candidates: Iterable[str]) -> None:
        listed = ", ".join(repr(c) for c in sorted(candidates))
        super().__init__(f"JSM has several organizations matching {name!r} ({listed}); the bridge adopts none "
                         "of them: rename or delete all but one in JSM")
        self.name = name


def organization_key(name: str) -> str:
    """The identity of an organization name as JSM compares names."""
    return name.strip().lower()


def match_organization(organizations: Iterable[tuple[str, str]], name: str) -> str | None:
    """The id of the organization called ``name`` among ``(name, id)`` pairs; ``None`` when absent.

    Raises ``AmbiguousOrganization`` when no name is exactly ``name`` and several have its key.
    """
    key = organization_key(name)
    candidates = {org_id: candidate for candidate, org_id in organizations if organization_key(candidate) == key}
    exact = [org_id for org_id, candidate in candidates.items() if candidate == name]
    if exact:
        return exact[0]
    if len(candidates) > 1:
        raise AmbiguousOrganization(name, candidates.values())
    return next(iter(candidates), None)
