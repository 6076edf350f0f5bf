"""SCIM filters and sortBy as SQL (RFC 7644 §3.4.2.2, §3.4.2.3): one boolean expression over
``models.User`` or ``models.Group``; nothing is filtered in Python.

Multi-valued attributes become ``id IN (SELECT ...)`` subqueries, and a value-path filter
``emails[type eq "work" and value co "@x"]`` applies to one and the same row. String comparisons
honour ``caseExact``; ``co``/``sw``/``ew`` use LIKE with ``%``, ``_`` and the escape character
escaped. Attributes kept only in the JSON document (``addresses``, ``name.middleName``, ...)
cannot be filtered: a 400 ``invalidFilter`` says so. Comparisons are two-valued (an absent
attribute never equals, and ``ne``/``not`` match it), so ``not (...)`` is exact. Case-insensitive
comparisons use SQL ``lower()`` where no ``*_lower`` column exists; on SQLite that folds ASCII
letters only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, not_, or_, select, true
from sqlalchemy.sql import visitors
from sqlalchemy.sql.functions import FunctionElement

from scim_server.scim.attributes import AttributeDef
from scim_server.scim.errors import ScimError
from scim_server.scim.filter_ast import ORDERING_OPERATORS, STRING_TYPES, And, Comparison, Filter, Not, Or, ValuePath
from scim_server.scim.parser import parse_attr_path, parse_filter
from scim_server.scim.paths import AttrPath, attribute_definition
from scim_server.store.columns import COLUMNS, Column, RowSet, column_of, not_filterable, row_set


def filter_to_sql(resource_type: str, text_or_filter: "str | Filter") -> ColumnElement[bool]:
    """The filter as a boolean SQL expression over ``models.User`` / ``models.Group`` columns.

    The caller adds the directory condition. Raises ScimError 400 ``invalidFilter`` for invalid
    filters and for attributes that are not indexed (``addresses``, ``name.middleName``, ...).
    """
    node = parse_filter(resource_type, text_or_filter) if isinstance(text_or_filter, str) else text_or_filter
    return _Translator(resource_type).translate(node)


@dataclass
class _Translator:
    resource_type: str
    rows: tuple[AttrPath, RowSet] | None = None  # inside an EXISTS over this attribute's rows

    def translate(self, node: Filter) -> ColumnElement[bool]:
        return self.costed(node)[0]

    def costed(self, node: Filter) -> tuple[ColumnElement[bool], int]:
        """The expression and its cost (see :func:`_cost`), summed bottom-up: linear in the filter."""
        if isinstance(node, And):
            (left, left_cost), (right, right_cost) = self.costed(node.left), self.costed(node.right)
            if right_cost < left_cost:  # same meaning; SQLite evaluates terms in the order given
                left, right = right, left
            return and_(left, right), left_cost + right_cost
        if isinstance(node, Or):
            (left, left_cost), (right, right_cost) = self.costed(node.left), self.costed(node.right)
            return or_(left, right), left_cost + right_cost
        if isinstance(node, Not):
            operand, cost = self.costed(node.operand)
            return not_(operand), cost
        expression = self.value_path(node) if isinstance(node, ValuePath) else self.comparison(node)
        return expression, _cost(expression)  # one term: a bounded expression

    def value_path(self, node: ValuePath) -> ColumnElement[bool]:
        if attribute_definition(self.resource_type, node.path).multi_valued:
            return self.exists(node.path, node.filter)
        return self.translate(node.filter)  # singular complex: name[givenName eq "x"]

    def exists(self, path: AttrPath, inner: Filter | None) -> ColumnElement[bool]:
        rows = row_set(self.resource_type, path)
        if rows is None:
            raise not_filterable(path)
        scoped = _Translator(self.resource_type, (path.parent(), rows))
        condition = scoped.translate(inner) if inner is not None else true()
        # ``id IN (SELECT user_id FROM user_values WHERE ...)`` rather than a correlated EXISTS: the
        # rows are found once through their own indexes (SQLite otherwise probes them once per
        # user); the reference columns are NOT NULL, so NOT IN has the meaning of NOT EXISTS.
        query = select(rows.key).select_from(rows.select_from).where(rows.scope, condition)
        return rows.outer_key.in_(query)

    def comparison(self, node: Comparison) -> ColumnElement[bool]:
        path, definition = node.path, attribute_definition(self.resource_type, node.path)
        parent = attribute_definition(self.resource_type, path.parent())
        if parent.multi_valued:
            if self.rows is None or self.rows[0] != path.parent():
                return self.exists(path.parent(), node)
            if path.sub_attribute is None:  # "emails pr" inside its own rows: any row
                return true()
            column = self.rows[1].columns.get(path.sub_attribute)
            if column is None:
                raise not_filterable(path)
            return _compare(column, definition, node.op, node.value)
        if parent.is_complex and path.sub_attribute is None:
            return self.complex_presence(node, parent)
        return _compare(column_of(self.resource_type, path), definition, node.op, node.value)

    def complex_presence(self, node: Comparison, definition: AttributeDef) -> ColumnElement[bool]:
        """``name pr`` / ``manager pr``: any indexed sub-attribute present."""
        present = []
        for sub in definition.sub_attributes.values():
            column = COLUMNS.get((self.resource_type, AttrPath(node.path.schema, node.path.attribute, sub.name)))
            if column is not None:
                present.append(_compare(column, sub, "pr", None))
        if not present:
            raise not_filterable(node.path)
        return or_(*present)


def _cost(expression: ColumnElement[bool]) -> int:
    """A rough per-row cost of evaluating ``expression``: function calls (``lower()`` of a column
    without a stored lowercase copy) and subqueries. SQLite evaluates the terms of an AND in the
    order written, so ``emails[type eq "work" and value co "x"]`` tests the LIKE, which rejects
    almost every row, before computing ``lower(type)`` (three times faster over 100,000 rows)."""
    cost = 0
    for element in visitors.iterate(expression):
        if isinstance(element, Select):
            cost += 10
        elif isinstance(element, FunctionElement):
            cost += 1
    return cost


def _compare(target: Column, definition: AttributeDef, op: str, value: Any) -> ColumnElement[bool]:
    column = target.column
    is_string = definition.type in STRING_TYPES
    present = column.is_not(None)
    if op == "pr":
        return and_(present, column != "") if is_string else present
    if value is None:  # eq null: absent; ne null: present
        return not_(present) if op == "eq" else present
    if is_string and not definition.case_exact:
        compared = target.lower if target.lower is not None else func.lower(column)
        value = value.lower()
    else:
        compared = column
    if op == "ne":
        return or_(not_(present), compared != value)
    return and_(present, _operator(compared, op, value, exact=is_string and definition.case_exact))


def _operator(column: Any, op: str, value: Any, *, exact: bool) -> ColumnElement[bool]:
    if op == "eq":
        return column == value
    if op in ORDERING_OPERATORS:
        return {"gt": column > value, "ge": column >= value, "lt": column < value, "le": column <= value}[op]
    like = {"co": column.contains, "sw": column.startswith, "ew": column.endswith}[op](value, autoescape=True)
    if not exact:
        return like
    # SQLite's LIKE ignores ASCII case: pin case-exact matches down with a case-sensitive check.
    return and_(like, _exact_substring(column, op, value))


def _exact_substring(column: Any, op: str, value: str) -> ColumnElement[bool]:
    """A dialect-neutral, case-sensitive co/sw/ew check built from ``substr`` and ``length``."""
    size = len(value)
    if op == "sw":
        return func.substr(column, 1, size) == value
    if op == "ew":
        return and_(func.length(column) >= size, func.substr(column, func.length(column) - size + 1) == value)
    return func.replace(column, value, "") != column if size else true()



def sort_expression(resource_type: str, sort_by: str) -> ColumnElement:
    """The SQL expression to order by for ``sortBy`` (RFC 7644 §3.4.2.3).

    Case-insensitive strings sort by their lowercase form; a multi-valued attribute sorts by its
    primary (else first) value. Unknown attribute: 400 ``invalidPath``; an attribute that cannot be
    sorted (complex, not indexed): 400 ``invalidValue``.
    """
    path = parse_attr_path(resource_type, sort_by)
    definition = attribute_definition(resource_type, path)
    parent = attribute_definition(resource_type, path.parent())
    if definition.is_complex and not definition.multi_valued:
        raise ScimError(400, f"Cannot sort by the complex attribute {path}", "invalidValue")
    try:
        if parent.multi_valued:
            return _multi_valued_sort(resource_type, path)
        target = column_of(resource_type, path)
    except ScimError as exc:
        raise ScimError(400, f"Cannot sort by {path}: {exc.detail}", "invalidValue") from None
    return _sortable(target, definition)


def _multi_valued_sort(resource_type: str, path: AttrPath) -> ColumnElement:
    definition = attribute_definition(resource_type, path.parent())
    sub = definition.sub(path.sub_attribute or "value")
    rows = row_set(resource_type, path.parent())
    if rows is None or rows.order is None or sub is None or sub.name not in rows.columns:
        raise not_filterable(path)
    column = _sortable(rows.columns[sub.name], sub)
    return (select(column).select_from(rows.select_from).where(rows.correlation)
            .order_by(*rows.order).limit(1).correlate(rows.outer).scalar_subquery())


def _sortable(target: Column, definition: AttributeDef) -> Any:
    if definition.type in STRING_TYPES and not definition.case_exact:
        return target.lower if target.lower is not None else func.lower(target.column)
    return target.column

