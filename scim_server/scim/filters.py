"""SCIM filters (RFC 7644 §3.4.2.2): parsing, translation to SQL, and value-path predicates.

Parsing uses the lexer of scim2-filter-parser for attribute paths, operators and grouping tokens,
with two repairs around it, because the package's own parser is unsafe here: it silently drops
unknown attributes (a broadened query), matches attribute names case-sensitively, cannot read
escaped quotes or numbers of more than one digit, and gives ``and`` the same precedence as ``or``.
1. Before lexing, every literal (JSON string with escapes, number, ``true``/``false``/``null`` in any
   case) is replaced by a numbered placeholder string, which the lexer reads as one token.
2. A small recursive-descent parser builds our AST from the tokens with RFC precedence
   (``not`` > ``and`` > ``or``), resolves every attribute against the schema registry
   (case-insensitively; unknown ones are a 400 ``invalidFilter``) and checks each literal against
   the attribute type (e.g. ``active gt true`` is a 400 ``invalidFilter``).

Translation builds one SQLAlchemy boolean expression over ``models.User`` or ``models.Group``;
nothing is filtered in Python. Multi-valued attributes stored one row per value (``emails``,
``phoneNumbers``, ``ims``, ``photos``, ``roles``, ``entitlements``, ``x509Certificates`` in
``user_values``; ``groups``/``members`` in ``group_members``) become ``id IN (SELECT ...)`` subqueries, and a
value-path filter ``emails[type eq "work" and value co "@x"]`` applies to one and the same row.
String comparisons honour ``caseExact``; ``co``/``sw``/``ew`` use LIKE with ``%``, ``_`` and the escape
character escaped. Attributes kept only in the JSON document (``addresses``, ``name.middleName``,
``password``, ...) cannot be filtered: a 400 ``invalidFilter`` says so. Comparisons are two-valued
(an absent attribute never equals, and ``ne``/``not`` match it), so ``not (...)`` is exact.
Case-insensitive comparisons use SQL ``lower()`` where no ``*_lower`` column exists; on SQLite
that folds ASCII letters only.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Union

from scim2_filter_parser.lexer import SCIMLexer
from sqlalchemy import ColumnElement, Select, and_, func, literal, not_, or_, select, true
from sqlalchemy.sql import visitors
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.orm import aliased

from scim_server.models import Group, GroupMember, User, UserValue
from scim_server.scim.attributes import (
    GROUP,
    GROUP_SCHEMA,
    USER,
    USER_SCHEMA,
    AttributeDef,
    resolve_schema,
)
from scim_server.scim.columns import GROUP_DOCUMENT_COLUMNS, USER_DOCUMENT_COLUMNS, USER_VALUE_ATTRIBUTES
from scim_server.scim.errors import ScimError
from scim_server.scim.paths import AttrPath, PatchPath, attribute_definition, parse_attr_path, resolve_attr_path

# ---------------------------------------------------------------------------------------------
# AST
# ---------------------------------------------------------------------------------------------

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
    left: "Filter"
    right: "Filter"


@dataclass(frozen=True)
class Or:
    left: "Filter"
    right: "Filter"


@dataclass(frozen=True)
class Not:
    operand: "Filter"


@dataclass(frozen=True)
class ValuePath:
    """``attr[filter]``: ``filter`` must hold for one and the same value of the complex attribute."""

    path: AttrPath
    filter: "Filter"


Filter = Union[Comparison, And, Or, Not, ValuePath]


def invalid_filter(detail: str) -> ScimError:
    return ScimError(400, detail, "invalidFilter")


# ---------------------------------------------------------------------------------------------
# Tokens
# ---------------------------------------------------------------------------------------------

_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BARE_LITERAL = re.compile(
    r"(?i)(?<![\w$])(eq|ne|co|sw|ew|gt|ge|lt|le)(\s+)"
    r"(true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.:$-])"
)
_OPERATOR_TOKENS = {op.upper(): op for op in (*COMPARISON_OPERATORS, "pr")}
_JSON = json.JSONDecoder(strict=False)  # a tab inside a quoted value is data, not an error
_MAX_FILTER_LENGTH = 10_000
_MAX_DEPTH = 50
_TOKEN_WORDS = {"COMP_VALUE": "a value", "ATTRNAME": "an attribute name", "SUBATTR": "a sub-attribute",
                "LPAREN": "'('", "RPAREN": "')'", "LBRACKET": "'['", "RBRACKET": "']'"}


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True)
class _Token:
    type: str
    value: str
    index: int


def _mask_literals(text: str, error: Callable[[str], ScimError]) -> tuple[str, list[Any]]:
    """Replace every literal with a placeholder ``"<n>"``; return the masked text and the values."""
    literals: list[Any] = []

    def placeholder(value: Any) -> str:
        literals.append(value)
        return f'"{len(literals) - 1}"'

    def mask_bare(segment: str) -> str:
        def replace(match: re.Match[str]) -> str:
            word = match.group(3)
            value = {"true": True, "false": False, "null": None}.get(word.lower(), word)
            if value is word:
                value = json.loads(word) if re.fullmatch(r"-?\d+", word) else float(word)
            return f"{match.group(1)}{match.group(2)}{placeholder(value)}"

        return _BARE_LITERAL.sub(replace, segment)

    parts, position = [], 0
    for match in _STRING_LITERAL.finditer(text):
        parts.append(mask_bare(text[position:match.start()]))
        try:
            parts.append(placeholder(_JSON.decode(match.group(0))))
        except ValueError:
            raise error(f"Invalid string literal {match.group(0)!r}") from None
        position = match.end()
    parts.append(mask_bare(text[position:]))
    return "".join(parts), literals


def _tokenize(text: str, error: Callable[[str], ScimError]) -> tuple[list[_Token], list[Any]]:
    if len(text) > _MAX_FILTER_LENGTH:
        raise error(f"The expression is longer than {_MAX_FILTER_LENGTH} characters")
    masked, literals = _mask_literals(text, error)
    try:
        tokens = [_Token(t.type, t.value, t.index) for t in SCIMLexer().tokenize(masked)]
    except ValueError as exc:  # the lexer's "Illegal character ..."
        raise error(str(exc)) from None
    return tokens, literals


# ---------------------------------------------------------------------------------------------
# Parser
# ---------------------------------------------------------------------------------------------


@dataclass
class _Parser:
    """Recursive descent over the lexer's tokens::

        filter    = and_expr *("or" and_expr)
        and_expr  = unary *("and" unary)
        unary     = "not" "(" filter ")" / "(" filter ")" / attr_expr
        attr_expr = path "[" filter "]" [subAttr compareOp value] / path "pr" / path compareOp value
        path      = [SCHEMA_URI] ATTRNAME [SUBATTR]
    """

    resource_type: str
    tokens: list[_Token]
    literals: list[Any]
    scim_type: str
    position: int = 0
    depth: int = 0
    parent: AttrPath | None = None  # set inside "[...]": names are sub-attributes of this path
    text: str = field(default="", repr=False)

    # -- token helpers -------------------------------------------------------------------------
    def error(self, detail: str) -> ScimError:
        return ScimError(400, detail, self.scim_type)

    def peek(self) -> str | None:
        return self.tokens[self.position].type if self.position < len(self.tokens) else None

    def take(self, *types: str) -> _Token:
        if self.peek() not in types:
            raise self.error(self.unexpected(f"expected {' or '.join(_TOKEN_WORDS.get(t, t) for t in types)}"))
        token = self.tokens[self.position]
        self.position += 1
        return token

    def unexpected(self, expectation: str) -> str:
        if self.position >= len(self.tokens):
            return f"Unexpected end of the {self.kind()} {_shorten(self.text)!r} ({expectation})"
        token = self.tokens[self.position]
        shown = json.dumps(self.literals[int(token.value)]) if token.type == "COMP_VALUE" else token.value
        return f"Unexpected {shown!r} in the {self.kind()} {_shorten(self.text)!r} ({expectation})"

    def kind(self) -> str:
        return "filter" if self.scim_type == "invalidFilter" else "path"

    def at_end(self) -> None:
        if self.peek() is not None:
            raise self.error(self.unexpected("expected the end"))

    # -- grammar -------------------------------------------------------------------------------
    def filter(self) -> Filter:
        self.depth += 1
        if self.depth > _MAX_DEPTH:
            raise self.error(f"The {self.kind()} is nested too deeply")
        node = self.and_expr()
        while self.peek() == "OR":
            self.take("OR")
            node = Or(node, self.and_expr())
        self.depth -= 1
        return node

    def and_expr(self) -> Filter:
        node = self.unary()
        while self.peek() == "AND":
            self.take("AND")
            node = And(node, self.unary())
        return node

    def unary(self) -> Filter:
        if self.peek() == "NOT":
            self.take("NOT")
            return Not(self.grouped())
        if self.peek() == "LPAREN":
            return self.grouped()
        return self.attr_expr()

    def grouped(self) -> Filter:
        self.take("LPAREN")
        node = self.filter()
        self.take("RPAREN")
        return node

    def attr_expr(self) -> Filter:
        path = self.path()
        if self.peek() == "LBRACKET":
            return self.value_path(path)
        return self.comparison(path)

    def value_path(self, path: AttrPath) -> Filter:
        inner = self.bracketed_filter(path)
        if self.peek() != "SUBATTR":
            return ValuePath(path, inner)
        # emails[type eq "work"].value eq "x": both conditions on the same value (Entra ID sends it)
        sub = self.take("SUBATTR").value
        sub_path = resolve_attr_path(self.resource_type, path.schema, path.attribute, sub, scim_type=self.scim_type)
        return ValuePath(path, And(inner, self.comparison(sub_path)))

    def bracketed_filter(self, path: AttrPath) -> Filter:
        if self.parent is not None:
            raise self.error("Value filters cannot be nested")
        if path.sub_attribute is not None or not attribute_definition(self.resource_type, path).is_complex:
            raise self.error(f"{path} is not a complex attribute: it cannot have a value filter")
        self.take("LBRACKET")
        self.parent = path
        inner = self.filter()
        self.parent = None
        self.take("RBRACKET")
        return inner

    def path(self) -> AttrPath:
        uri = self.take("SCHEMA_URI").value if self.peek() == "SCHEMA_URI" else None
        name = self.take("ATTRNAME").value
        sub = self.take("SUBATTR").value if self.peek() == "SUBATTR" else None
        if self.parent is None:
            if uri is not None and sub is None and resolve_schema(self.resource_type, f"{uri}:{name}"):
                raise self.error(f"{uri}:{name} is a schema, not an attribute: name one of its attributes")
            return resolve_attr_path(self.resource_type, uri, name, sub, scim_type=self.scim_type)
        if uri is not None or sub is not None:
            raise self.error(f"Inside {self.parent.attribute}[...] only its sub-attributes may be named")
        return resolve_attr_path(self.resource_type, self.parent.schema, self.parent.attribute, name,
                                 scim_type=self.scim_type)

    def comparison(self, path: AttrPath) -> Comparison:
        operator = self.peek()
        if operator not in _OPERATOR_TOKENS:
            raise self.error(self.unexpected("expected an operator such as eq, co or pr"))
        self.take(operator)
        op = _OPERATOR_TOKENS[operator]
        if op == "pr":
            return Comparison(path, "pr")
        token = self.take("COMP_VALUE")
        return _checked_comparison(self.resource_type, path, op, self.literals[int(token.value)], self.error)

    # -- PATCH paths ---------------------------------------------------------------------------
    def patch_path(self) -> PatchPath:
        path = self.path()
        value_filter, sub = None, None
        if self.peek() == "LBRACKET":
            value_filter = self.bracketed_filter(path)
            if self.peek() == "SUBATTR":
                sub_name = self.take("SUBATTR").value
                sub = resolve_attr_path(self.resource_type, path.schema, path.attribute, sub_name,
                                        scim_type=self.scim_type).sub_attribute
        self.at_end()
        return PatchPath(path, value_filter, sub)


def _checked_comparison(
    resource_type: str, path: AttrPath, op: str, value: Any, error: Callable[[str], ScimError]
) -> Comparison:
    """A comparison whose literal fits the attribute type (coerced where unambiguous)."""
    definition = attribute_definition(resource_type, path)
    if definition.is_complex:
        value_sub = definition.sub("value")
        if not definition.multi_valued or value_sub is None:
            raise error(f"{path} is complex: compare one of its sub-attributes, e.g. {path}.<name>")
        path = AttrPath(path.schema, path.attribute, value_sub.name)  # "emails eq x" is "emails.value eq x"
        definition = value_sub
    if value is None:
        if op not in ("eq", "ne"):
            raise error(f"null can only be compared with eq or ne, not {op}")
        return Comparison(path, op, None)
    return Comparison(path, op, _coerce_literal(definition, path, op, value, error))


def _coerce_literal(definition: AttributeDef, path: AttrPath, op: str, value: Any,
                    error: Callable[[str], ScimError]) -> Any:
    kind = definition.type
    if kind == "boolean":
        if op not in ("eq", "ne"):
            raise error(f"{path} is a boolean: the operator {op} is not allowed on it")
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise error(f"{path} is a boolean: compare it with true or false")
        return value
    if kind == "binary" and op in ORDERING_OPERATORS:
        raise error(f"{path} is binary: the operator {op} is not allowed on it")
    if kind in STRING_TYPES:
        if isinstance(value, bool):
            raise error(f"{path} is a string: compare it with a string value")
        return value if isinstance(value, str) else json.dumps(value)
    if kind == "dateTime":
        return _datetime_literal(path, op, value, error)
    if kind in ("integer", "decimal"):
        if op in SUBSTRING_OPERATORS or isinstance(value, bool) or not isinstance(value, (int, float)):
            raise error(f"{path} is a number: compare it with a number using eq, ne, gt, ge, lt or le")
        return value
    raise error(f"{path} cannot be compared")


def _datetime_literal(path: AttrPath, op: str, value: Any, error: Callable[[str], ScimError]) -> dt.datetime:
    if op in SUBSTRING_OPERATORS:
        raise error(f"{path} is a dateTime: the operator {op} is not allowed on it")
    try:
        moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        moment = None
    if moment is None:
        raise error(f"{path} is a dateTime: {value!r} is not an xsd:dateTime such as \"2024-01-01T00:00:00Z\"")
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def _parser(resource_type: str, text: str, scim_type: str) -> _Parser:
    def error(detail: str) -> ScimError:
        return ScimError(400, detail, scim_type)

    if not isinstance(text, str) or not text.strip():
        raise error("The filter is empty" if scim_type == "invalidFilter" else "The path is empty")
    tokens, literals = _tokenize(text, error)
    return _Parser(resource_type, tokens, literals, scim_type, text=text)


def parse_filter(resource_type: str, text: str) -> Filter:
    """Parse and validate a filter; ScimError 400 ``invalidFilter`` on any syntax error, unknown
    attribute or literal that does not fit its attribute."""
    parser = _parser(resource_type, text, "invalidFilter")
    node = parser.filter()
    parser.at_end()
    return node


def parse_path_expression(resource_type: str, text: str, scim_type: str = "invalidPath") -> PatchPath:
    """Parse ``attrPath`` or ``valuePath [subAttr]`` (used by ``scim_server.scim.paths``)."""
    return _parser(resource_type, text, scim_type).patch_path()


# ---------------------------------------------------------------------------------------------
# Python evaluation of value filters (PATCH)
# ---------------------------------------------------------------------------------------------


def value_filter_predicate(filter: Filter, complex_attr_def: AttributeDef) -> Callable[[dict], bool]:
    """A predicate telling whether one value (a dict) of ``complex_attr_def`` matches ``filter``.

    Used by PATCH for ``emails[type eq "work"]``: sub-attribute keys are matched case-insensitively,
    string comparisons honour the sub-attribute's ``caseExact``.
    """

    def evaluate(node: Filter, element: dict) -> bool:
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


def _lookup(element: dict, name: str) -> Any:
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
        return (bool(actual) == expected) == (op == "eq")
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
    return _PYTHON_OPERATORS[op](actual, expected)


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

# ---------------------------------------------------------------------------------------------
# Where attributes live in the database
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Column:
    """A singular attribute stored in a column; ``lower`` is a stored lowercase copy, if any."""

    column: Any
    lower: Any = None


@dataclass(frozen=True)
class _RowSet:
    """One row per value of a multi-valued attribute, correlated with the outer resource row.

    ``columns`` maps sub-attribute (canonical name) to its column; ``order`` picks the value a
    sort uses (primary first), or None when the attribute cannot be sorted on.
    """

    select_from: Any
    key: Any  # the row's reference to the resource (user_values.user_id, ...)
    outer_key: Any  # the resource's id (users.id, groups.id)
    scope: ColumnElement[bool]  # which rows belong to the attribute (user_values.attribute = ...)
    columns: dict[str, _Column]
    outer: Any
    order: tuple[Any, ...] | None = None

    @property
    def correlation(self) -> ColumnElement[bool]:
        return and_(self.key == self.outer_key, self.scope)


def _user_values(attribute: str) -> _RowSet:
    row = aliased(UserValue)
    return _RowSet(
        select_from=row,
        key=row.user_id,
        outer_key=User.id,
        scope=row.attribute == attribute,
        columns={"value": _Column(row.value, row.value_lower), "type": _Column(row.type),
                 "primary": _Column(row.primary), "display": _Column(row.display)},
        outer=User,
        order=(row.primary.desc(), row.id),
    )


def _user_groups() -> _RowSet:
    membership, group = aliased(GroupMember), aliased(Group)
    return _RowSet(
        select_from=membership,
        key=membership.user_id,
        outer_key=User.id,
        scope=true(),
        columns={"value": _Column(membership.group_id),
                 "display": _Column(_scalar(group.display_name, group.id == membership.group_id))},
        outer=User,
    )


def _group_members() -> _RowSet:
    membership, member = aliased(GroupMember), aliased(User)
    return _RowSet(
        select_from=membership,
        key=membership.group_id,
        outer_key=Group.id,
        scope=true(),
        columns={"value": _Column(membership.user_id), "type": _Column(literal("User")),
                 "display": _Column(_scalar(member.display_name, member.id == membership.user_id))},
        outer=Group,
    )


def _scalar(column: Any, condition: ColumnElement[bool]) -> Any:
    return select(column).where(condition).scalar_subquery()


_ROW_SETS: dict[tuple[str, str, str], Callable[[], _RowSet]] = {
    **{(USER, USER_SCHEMA, name): (lambda name=name: _user_values(name)) for name in USER_VALUE_ATTRIBUTES},
    (USER, USER_SCHEMA, "groups"): _user_groups,
    (GROUP, GROUP_SCHEMA, "members"): _group_members,
}


def _columns() -> dict[tuple[str, AttrPath], _Column]:
    """Every filterable singular attribute: the document columns (shared with the store) plus the
    columns the server itself maintains (``id``, ``active``, ``meta``)."""
    u, g = USER_SCHEMA, GROUP_SCHEMA
    user = {path: _Column(getattr(User, name)) for path, name in USER_DOCUMENT_COLUMNS.items()}
    user.update({
        AttrPath(u, "id"): _Column(User.id),
        AttrPath(u, "userName"): _Column(User.user_name, User.user_name_lower),
        AttrPath(u, "active"): _Column(User.active),
        AttrPath(u, "meta", "created"): _Column(User.created_at),
        AttrPath(u, "meta", "lastModified"): _Column(User.updated_at),
        AttrPath(u, "meta", "resourceType"): _Column(literal(USER)),
    })
    group = {path: _Column(getattr(Group, name)) for path, name in GROUP_DOCUMENT_COLUMNS.items()}
    group.update({
        AttrPath(g, "id"): _Column(Group.id),
        AttrPath(g, "displayName"): _Column(Group.display_name, Group.display_name_lower),
        AttrPath(g, "meta", "created"): _Column(Group.created_at),
        AttrPath(g, "meta", "lastModified"): _Column(Group.updated_at),
        AttrPath(g, "meta", "resourceType"): _Column(literal(GROUP)),
    })
    return {**{(USER, p): c for p, c in user.items()}, **{(GROUP, p): c for p, c in group.items()}}


_COLUMNS = _columns()


def _not_filterable(path: AttrPath) -> ScimError:
    if path.attribute == "addresses":
        return invalid_filter("Filtering on addresses is not supported: they are kept only in the resource document")
    return invalid_filter(f"Filtering or sorting on {path} is not supported")


def _row_set(resource_type: str, path: AttrPath) -> _RowSet | None:
    factory = _ROW_SETS.get((resource_type, path.schema, path.attribute))
    return factory() if factory else None


def _column(resource_type: str, path: AttrPath) -> _Column:
    column = _COLUMNS.get((resource_type, path))
    if column is None:
        raise _not_filterable(path)
    return column


# ---------------------------------------------------------------------------------------------
# SQL translation
# ---------------------------------------------------------------------------------------------


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
    rows: tuple[AttrPath, _RowSet] | None = None  # inside an EXISTS over this attribute's rows

    def translate(self, node: Filter) -> ColumnElement[bool]:
        if isinstance(node, And):
            left, right = self.translate(node.left), self.translate(node.right)
            if _cost(right) < _cost(left):  # same meaning; SQLite evaluates terms in the order given
                left, right = right, left
            return and_(left, right)
        if isinstance(node, Or):
            return or_(self.translate(node.left), self.translate(node.right))
        if isinstance(node, Not):
            return not_(self.translate(node.operand))
        if isinstance(node, ValuePath):
            return self.value_path(node)
        return self.comparison(node)

    def value_path(self, node: ValuePath) -> ColumnElement[bool]:
        if attribute_definition(self.resource_type, node.path).multi_valued:
            return self.exists(node.path, node.filter)
        return self.translate(node.filter)  # singular complex: name[givenName eq "x"]

    def exists(self, path: AttrPath, inner: Filter | None) -> ColumnElement[bool]:
        rows = _row_set(self.resource_type, path)
        if rows is None:
            raise _not_filterable(path)
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
                raise _not_filterable(path)
            return _compare(column, definition, node.op, node.value)
        if parent.is_complex and path.sub_attribute is None:
            return self.complex_presence(node, parent)
        return _compare(_column(self.resource_type, path), definition, node.op, node.value)

    def complex_presence(self, node: Comparison, definition: AttributeDef) -> ColumnElement[bool]:
        """``name pr`` / ``manager pr``: any indexed sub-attribute present."""
        present = []
        for sub in definition.sub_attributes.values():
            column = _COLUMNS.get((self.resource_type, AttrPath(node.path.schema, node.path.attribute, sub.name)))
            if column is not None:
                present.append(_compare(column, sub, "pr", None))
        if not present:
            raise _not_filterable(node.path)
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


def _compare(target: _Column, definition: AttributeDef, op: str, value: Any) -> ColumnElement[bool]:
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


# ---------------------------------------------------------------------------------------------
# Sorting
# ---------------------------------------------------------------------------------------------


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
        target = _column(resource_type, path)
    except ScimError as exc:
        raise ScimError(400, f"Cannot sort by {path}: {exc.detail}", "invalidValue") from None
    return _sortable(target, definition)


def _multi_valued_sort(resource_type: str, path: AttrPath) -> ColumnElement:
    definition = attribute_definition(resource_type, path.parent())
    sub = definition.sub(path.sub_attribute or "value")
    rows = _row_set(resource_type, path.parent())
    if rows is None or rows.order is None or sub is None or sub.name not in rows.columns:
        raise _not_filterable(path)
    column = _sortable(rows.columns[sub.name], sub)
    return (select(column).select_from(rows.select_from).where(rows.correlation)
            .order_by(*rows.order).limit(1).correlate(rows.outer).scalar_subquery())


def _sortable(target: _Column, definition: AttributeDef) -> Any:
    if definition.type in STRING_TYPES and not definition.case_exact:
        return target.lower if target.lower is not None else func.lower(target.column)
    return target.column


__all__ = [
    "And", "Comparison", "Filter", "Not", "Or", "ValuePath",
    "USER_VALUE_ATTRIBUTES", "filter_to_sql", "parse_filter", "parse_path_expression", "sort_expression", "value_filter_predicate",
]
