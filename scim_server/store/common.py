"""What every storage function shares: the caller's scope, paging, uniqueness and write bookkeeping."""
from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Iterator, TypeVar

from sqlalchemy import ARRAY, ColumnElement, String, any_, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from scim_server import audit
from scim_server.db import chunked, utcnow
from scim_server.models import Group, User
from scim_server.scim import limits
from scim_server.scim.errors import ScimError, not_found
from scim_server.store.filter_sql import filter_to_sql, sort_expression
from scim_server.store.marks import mark_dirty, mark_params, upsert_statement

MAX_PAGE_SIZE = limits.MAX_COUNT

T = TypeVar("T")
M = TypeVar("M", User, Group)


@dataclass(frozen=True)
class Scope:
    """Who writes: the directory every query is confined to and the API key for the audit trail."""

    directory_id: int
    key_id: str | None = None
    actor: str | None = None  # who else writes (a login: ``sso:CONNECTION``); default the key, else ``cli``


@dataclass(frozen=True)
class ListQuery:
    filter: str | None = None
    sort_by: str | None = None
    descending: bool = False
    start_index: int = 1
    count: int = MAX_PAGE_SIZE

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "ListQuery":
        """RFC 7644 §3.4.2.4: startIndex below 1 means 1, a negative count means 0."""
        start = params.get("startIndex")
        count = params.get("count")
        limits.check_start_index(start)
        return cls(
            filter=params.get("filter"),
            sort_by=params.get("sortBy"),
            descending=params.get("sortOrder") == "descending",
            start_index=max(1, start) if start is not None else 1,
            count=min(max(0, count), MAX_PAGE_SIZE) if count is not None else MAX_PAGE_SIZE,
        )


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def id_batches(session: Session, values: Iterable[T]) -> Iterator[list[T]]:
    """``values`` in as few batches as the database takes: all at once on PostgreSQL (they travel
    as one array parameter), chunks of ``db.IN_CHUNK`` on SQLite (bound variables are limited)."""
    if _is_postgresql(session):
        batch = list(values)
        if batch:
            yield batch
        return
    yield from chunked(values)


def in_values(session: Session, column: Any, values: list[Any]) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``= ANY(one array parameter)``, which the server hashes
    when it plans with the values (see :func:`plan_with_values`)."""
    if _is_postgresql(session):
        return column == any_(bindparam(None, list(values), type_=ARRAY(column.type)))
    return column.in_(values)


def plan_with_values(session: Session) -> None:
    """Make PostgreSQL plan each statement of this transaction with its actual parameters.

    psycopg prepares a statement after a few executions and PostgreSQL then switches to a generic
    plan, in which ``= ANY($1)`` is searched linearly for every row visited. A custom plan sees the
    array as a constant and hashes it (PostgreSQL 14+), so one statement handles 10,000 ids.
    """
    if _is_postgresql(session):
        session.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))


@functools.cache
def _by_id(model: Any, for_update: bool) -> Any:
    """The lookup by primary key and directory, built once per model (GET, PUT, PATCH, DELETE by id)."""
    statement = select(model).where(model.id == bindparam("resource_id"), model.directory_id == bindparam("directory_id"))
    return statement.with_for_update() if for_update else statement


def find_in_directory(session: Session, model: type[M], directory_id: int, resource_id: str, *,
                      for_update: bool = False) -> M:
    """The resource with this id in this directory; 404 otherwise (other directories do not exist)."""
    row = session.scalar(_by_id(model, for_update), {"resource_id": resource_id, "directory_id": directory_id})
    if row is None:
        raise not_found(f"{model.__name__} {resource_id} not found")
    return row


def list_page(session: Session, model: Any, resource_type: str, directory_id: int, query: ListQuery) -> tuple[int, list[Any]]:
    """(totalResults, rows of the page) in a stable order: sortBy, then creation time and id.

    The page is read first; a non-empty page shorter than ``count`` ends the result set, so
    totalResults is its offset plus its length and the filter does not run a second time (the
    common case: a filter on userName or externalId finds one user). Otherwise the rows are counted.
    """
    statement = select(model).where(model.directory_id == directory_id)
    if query.filter:
        statement = statement.where(filter_to_sql(resource_type, query.filter))

    def count() -> int:
        return session.scalar(select(func.count()).select_from(statement.order_by(None).subquery())) or 0

    if query.count == 0:
        return count(), []
    order: list[Any] = []
    if query.sort_by:
        try:
            expression = sort_expression(resource_type, query.sort_by)
        except ScimError:
            # As before: a page past the end is empty (200) even with an unusable sortBy.
            total = count()
            if query.start_index > total:
                return total, []
            raise
        order.append(expression.desc() if query.descending else expression.asc())
    order += [model.created_at, model.id]
    offset = query.start_index - 1
    rows = list(session.scalars(statement.order_by(*order).offset(offset).limit(query.count)).all())
    if len(rows) < query.count and (rows or offset == 0):
        return offset + len(rows), rows
    return count(), rows


_EQ_STRING = r'^\s*{name}\s+eq\s+("(?:[^"\\]|\\.)*")\s*$'


@functools.cache
def _eq_pattern(attribute: str) -> re.Pattern[str]:
    return re.compile(_EQ_STRING.format(name=re.escape(attribute)), re.IGNORECASE)


def unique_eq(query: ListQuery, attribute: str) -> str | None:
    """The string value when the query is exactly ``ATTRIBUTE eq "value"`` on its first page with no
    sortBy, else None (the general path, which gives the same answer, handles everything else).

    ``attribute`` is one that is unique per directory (userName, a group's displayName): such a
    lookup matches at most one row, so it needs no ORDER BY, no LIMIT and no count, and its plan is
    the unique index whatever the planner's statistics say (an ORDER BY created_at LIMIT can tempt
    it to walk the creation-time index instead). This is most of what IdPs send before a create.
    """
    if not query.filter or query.sort_by or query.start_index != 1 or query.count == 0:
        return None
    match = _eq_pattern(attribute).match(query.filter)
    if match is None:
        return None
    try:
        value = json.loads(match.group(1))
    except ValueError:
        return None  # the general path reports the malformed string
    return value if isinstance(value, str) else None


def check_lengths(model: Any, values: dict[str, Any], labels: dict[str, str]) -> None:
    """Values longer than their column are a 400, not a database error (PostgreSQL enforces lengths)."""
    for column_name, value in values.items():
        column_type = model.__table__.c[column_name].type
        if isinstance(value, str) and isinstance(column_type, String) and column_type.length:
            if len(value) > column_type.length:
                label = labels.get(column_name, column_name)
                raise ScimError(400, f"{label} is longer than {column_type.length} characters", "invalidValue")


def flush_unique(session: Session, detail: str) -> None:
    """Flush; a unique-constraint race with a concurrent request becomes 409 uniqueness."""
    try:
        session.flush()
    except IntegrityError as exc:
        raise ScimError(409, detail, "uniqueness") from exc


def touch(row: Any) -> None:
    """A new version of the resource (ETag and meta.lastModified)."""
    row.version = (row.version or 0) + 1
    row.updated_at = utcnow()


_MARK = "mark_"


@functools.cache
def _audit_and_mark() -> Any:
    """PostgreSQL: the audit INSERT with the outbox upsert as a data-modifying CTE, one round trip
    for both (PostgreSQL runs a WITH's INSERT exactly once, referenced or not)."""
    return audit.INSERT.add_cte(upsert_statement("postgresql", _MARK).cte("mark"))


def record_write(
    session: Session, scope: Scope, *, kind: str, action: str, entity_id: str, detail: dict[str, Any] | None = None
) -> None:
    """Audit the write and mark the entity for propagation to JSM, in the caller's transaction."""
    event = audit.event_values(action=f"{kind}.{action}", target_type=kind.capitalize(), target_id=entity_id,
                               directory_id=scope.directory_id, key_id=scope.key_id, actor=scope.actor,
                               detail=detail)
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        connection.execute(_audit_and_mark(), {**event, **mark_params(kind, entity_id, scope.directory_id, _MARK)})
        return
    mark_dirty(session, kind, entity_id, scope.directory_id)
    connection.execute(audit.INSERT, event)
