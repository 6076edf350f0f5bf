"""Tokens of SCIM filters and paths: literals masked, then scim2-filter-parser's lexer.

The package's lexer cannot read escaped quotes or numbers of more than one digit, so before lexing
every literal (JSON string with escapes, number, ``true``/``false``/``null`` in any case) is
replaced by a numbered placeholder string, which the lexer reads as one token.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Callable

from scim2_filter_parser.lexer import SCIMLexer

from scim_server.scim import limits
from scim_server.scim.errors import ScimError

_STRING_LITERAL = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BARE_LITERAL = re.compile(
    r"(?i)(?<![\w$])(eq|ne|co|sw|ew|gt|ge|lt|le)(\s+)"
    r"(true|false|null|-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?)(?![\w.:$-])"
)
_JSON = json.JSONDecoder(strict=False)  # a tab inside a quoted value is data, not an error
MAX_FILTER_LENGTH = limits.MAX_FILTER_LENGTH


@dataclass(frozen=True)
class Token:
    type: str
    value: str
    index: int


def mask_literals(text: str, error: Callable[[str], ScimError]) -> tuple[str, list[Any]]:
    """Replace every literal with a placeholder ``"<n>"``; return the masked text and the values."""
    literals: list[Any] = []

    def placeholder(value: Any) -> str:
        literals.append(value)
        return f'"{len(literals) - 1}"'

    def mask_bare(segment: str) -> str:
        def replace(match: re.Match[str]) -> str:
            word = match.group(3)
            keywords: dict[str, Any] = {"true": True, "false": False, "null": None}
            value = keywords[word.lower()] if word.lower() in keywords else (
                json.loads(word) if re.fullmatch(r"-?\d+", word) else float(word))
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


def tokenize(text: str, error: Callable[[str], ScimError]) -> tuple[list[Token], list[Any]]:
    if len(text) > MAX_FILTER_LENGTH:
        raise error(f"The expression is longer than {MAX_FILTER_LENGTH} characters")
    masked, literals = mask_literals(text, error)
    try:
        tokens = [Token(t.type, t.value, t.index) for t in SCIMLexer().tokenize(masked)]
    except ValueError as exc:  # the lexer's "Illegal character ..."
        raise error(str(exc)) from None
    return tokens, literals
