"""The syntax tree of SCIM filters (RFC 7644 §3.4.2.2) and PATCH paths (§3.5.2): plain data.

``scim_server.scim.parser`` builds it, ``scim_server.scim.value_filters`` evaluates it over one
value in Python (PATCH), ``scim_server.store.filter_sql`` translates it to SQL.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from scim_server.scim.errors import ScimError
from scim_server.scim.paths import AttrPath

COMPARISON_OPERATORS = ("eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le")
ORDERING_OPERATORS = ("gt", "ge", "lt", "le")
SUBSTRING_OPERATORS = ("co", "sw", "ew")
STRING_TYPES = ("string", "reference", "binary")


@dataclass(frozen=True)
class Comparison:
    """``path op value`` (``op`` lowercase; ``pr`` has no value). Inside a value filter the path is
    the full path of the sub-attribute (``emails.type``)."""

    path: AttrPath
    op: str
    value: Any = None


@dataclass(frozen=True)
class And:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Or:
    left: Filter
    right: Filter


@dataclass(frozen=True)
class Not:
    operand: Filter


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: ``filter`` must hold for one and the same value of the complex attribute."""

    path: AttrPath
    filter: Filter


Filter = Union[Comparison, And, Or, Not, ValuePath]


@dataclass(frozen=True)
class PatchPath:
    """A PATCH target.

    ``attr`` is the attribute path written before any ``[...]`` (so ``name.givenName`` has
    ``attr.sub_attribute == "givenName"``); ``value_filter`` is the bracketed filter over the
    attribute's values (its comparisons carry full paths such as ``emails.type``); ``sub_attribute``
    is the sub-attribute written after ``]`` (``emails[type eq "work"].value``). ``target_sub``
    gives whichever sub-attribute is addressed.
    """

    attr: AttrPath
    value_filter: Filter | None = None
    sub_attribute: str | None = None

    @property
    def target_sub(self) -> str | None:
        return self.sub_attribute or self.attr.sub_attribute


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")

