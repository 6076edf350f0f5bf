"""Evaluation of a value filter over one value of a complex attribute, in Python (PATCH paths
such as ``emails[type eq "work"]``); filters over stored resources run in SQL instead."""
from __future__ import annotations

import datetime as dt
from typing import Any, Callable

from scim_server.scim.attributes import AttributeDef
from scim_server.scim.filter_ast import STRING_TYPES, And, Filter, Not, Or, ValuePath


def value_filter_predicate(filter: Filter, complex_attr_def: AttributeDef) -> Callable[[dict[str, Any]], bool]:
    """A predicate telling whether one value (a dict) of ``complex_attr_def`` matches ``filter``.

    Used by PATCH for ``emails[type eq "work"]``: sub-attribute keys are matched case-insensitively,
    string comparisons honour the sub-attribute's ``caseExact``.
    """

    def evaluate(node: Filter, element: dict[str, Any]) -> bool:
        if isinstance(node, And):
            return evaluate(node.left, element) and evaluate(node.right, element)
        if isinstance(node, Or):
            return evaluate(node.left, element) or evaluate(node.right, element)
        if isinstance(node, Not):
            return not evaluate(node.operand, element)
        if isinstance(node, ValuePath):
            return evaluate(node.filter, element)
        sub = complex_attr_def.sub(node.path.sub_attribute or "value")
        if sub is None:
            return False
        return _matches(sub, node.op, node.value, _lookup(element, sub.name))

    return lambda element: isinstance(element, dict) and evaluate(filter, element)


def _lookup(element: dict[str, Any], name: str) -> Any:
    lowered = name.lower()
    return next((v for k, v in element.items() if isinstance(k, str) and k.lower() == lowered), None)


def _matches(definition: AttributeDef, op: str, expected: Any, actual: Any) -> bool:
    if op == "pr":
        return actual is not None and actual != "" and actual != [] and actual != {}
    if expected is None:
        return (actual is None) == (op == "eq")
    if actual is None:
        return op == "ne"
    if definition.type == "boolean":
        if isinstance(actual, str):
            actual = actual.lower() == "true"
        return bool((bool(actual) == expected) == (op == "eq"))
    if definition.type == "dateTime":
        try:
            actual = dt.datetime.fromisoformat(str(actual))
        except ValueError:
            return op == "ne"
        actual = actual if actual.tzinfo else actual.replace(tzinfo=dt.timezone.utc)
    elif definition.type in STRING_TYPES:
        actual = str(actual)
        if not definition.case_exact:
            actual, expected = actual.lower(), expected.lower()
    return bool(_PYTHON_OPERATORS[op](actual, expected))


_PYTHON_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "ne": lambda a, b: a != b,
    "co": lambda a, b: b in a,
    "sw": lambda a, b: a.startswith(b),
    "ew": lambda a, b: a.endswith(b),
    "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b,
    "lt": lambda a, b: a < b,
    "le": lambda a, b: a <= b,
}
