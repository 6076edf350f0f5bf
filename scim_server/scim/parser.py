"""The SCIM filter and path grammar (RFC 7644 §3.4.2.2, §3.10, §3.5.2): tokens to a validated tree.

A small recursive-descent parser over the tokens of ``scim_server.scim.tokens`` (the package's own
parser silently drops unknown attributes, matches names case-sensitively and gives ``and`` the
precedence of ``or``). It applies RFC precedence (``not`` > ``and`` > ``or``), resolves every
attribute against the schema registry (case-insensitively; unknown ones are a 400) and checks each
literal against the attribute type (``active gt true`` is a 400 ``invalidFilter``).

- ``parse_filter(resource_type, text) -> Filter``
- ``parse_attr_path(resource_type, text) -> AttrPath``: ``userName``, ``name.givenName``,
  ``urn:...:enterprise:2.0:User:manager.value``
- ``parse_patch_path(resource_type, text) -> PatchPath``: ``attrPath`` or ``valuePath [subAttr]``,
  e.g. ``emails[type eq "work"].value``, ``members[value eq "x"]``

Errors are ``ScimError(400, ..., "invalidFilter")`` for filters and ``"invalidPath"`` for paths.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Callable

from scim_server.scim import limits
from scim_server.scim.attributes import AttributeDef, resolve_schema
from scim_server.scim.errors import ScimError
from scim_server.scim.filter_ast import (
    COMPARISON_OPERATORS,
    ORDERING_OPERATORS,
    STRING_TYPES,
    SUBSTRING_OPERATORS,
    And,
    Comparison,
    Filter,
    Not,
    Or,
    PatchPath,
    ValuePath,
)
from scim_server.scim.paths import AttrPath, attribute_definition, resolve_attr_path
from scim_server.scim.tokens import Token, tokenize

_OPERATOR_TOKENS = {op.upper(): op for op in (*COMPARISON_OPERATORS, "pr")}
MAX_DEPTH = 50
_TOKEN_WORDS = {"COMP_VALUE": "a value", "ATTRNAME": "an attribute name", "SUBATTR": "a sub-attribute",
                "LPAREN": "'('", "RPAREN": "')'", "LBRACKET": "'['", "RBRACKET": "']'"}


def _shorten(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


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
    tokens: list[Token]
    literals: list[Any]
    scim_type: str
    position: int = 0
    depth: int = 0
    terms: int = 0
    parent: AttrPath | None = None  # set inside "[...]": names are sub-attributes of this path
    text: str = field(default="", repr=False)

    # -- token helpers -------------------------------------------------------------------------
    def error(self, detail: str) -> ScimError:
        return ScimError(400, detail, self.scim_type)

    def peek(self) -> str | None:
        return self.tokens[self.position].type if self.position < len(self.tokens) else None

    def take(self, *types: str) -> Token:
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
        if self.depth > MAX_DEPTH:
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
        self.terms += 1
        if self.terms > limits.MAX_FILTER_TERMS:
            raise self.error(f"The {self.kind()} has more than {limits.MAX_FILTER_TERMS} comparisons")
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
    tokens, literals = tokenize(text, error)
    return _Parser(resource_type, tokens, literals, scim_type, text=text)


def parse_filter(resource_type: str, text: str) -> Filter:
    """Parse and validate a filter; ScimError 400 ``invalidFilter`` on any syntax error, unknown
    attribute or literal that does not fit its attribute."""
    parser = _parser(resource_type, text, "invalidFilter")
    node = parser.filter()
    parser.at_end()
    return node


def parse_path_expression(resource_type: str, text: str, scim_type: str = "invalidPath") -> PatchPath:
    """Parse ``attrPath`` or ``valuePath [subAttr]`` into a PatchPath (``scim_type`` names its errors)."""
    return _parser(resource_type, text, scim_type).patch_path()



def parse_attr_path(resource_type: str, text: str, *, scim_type: str = "invalidPath") -> AttrPath:
    """Parse ``[URI:]attr[.sub]``; raises ScimError 400 ``scim_type`` when invalid or unknown."""
    patch_path = _parse_path(resource_type, text, scim_type)
    if patch_path.value_filter is not None:
        raise ScimError(400, f"A value filter is not allowed in an attribute path: {text!r}", scim_type)
    return patch_path.attr


def parse_patch_path(resource_type: str, text: str) -> PatchPath:
    """Parse a PATCH ``path``: ``attrPath`` or ``attrPath "[" valFilter "]" [.subAttr]``."""
    return _parse_path(resource_type, text, "invalidPath")


def _parse_path(resource_type: str, text: str, scim_type: str) -> PatchPath:
    if not isinstance(text, str) or not text.strip():
        raise ScimError(400, "The path is empty", scim_type)
    return parse_path_expression(resource_type, text, scim_type)
