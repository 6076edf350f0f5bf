"""Pure application of SCIM PATCH operations (RFC 7644 §3.5.2) to a stored document.

Group membership is not part of the stored document: operations on ``members`` become
:class:`MemberChange` set operations that the store runs in SQL, so a PATCH never loads a group.
IdP dialects handled here: Entra's capitalised ops (normalised by the message schema), booleans as
strings, pathless values with dotted keys and extension URN keys; Okta's pathless replace with the
group ``id`` in the value; ``add`` on a single-valued attribute replacing it; Entra's member removal
``{"op": "remove", "path": "members", "value": [{"value": ID}]}`` removing only those members.
"""
from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable

from scim_server.scim import limits
from scim_server.scim.attributes import GROUP, AttributeDef, core_schema, find_attribute, resolve_schema, schemas_for
from scim_server.scim.errors import ScimError
from scim_server.scim.filter_ast import PatchPath
from scim_server.scim.parser import parse_patch_path
from scim_server.scim.resources import check_immutable, deserialize_value, validate_document
from scim_server.scim.value_filters import value_filter_predicate

MEMBERS = "members"


@dataclass(frozen=True)
class MemberChange:
    """A set operation on a group's members: add / remove / replace ids, remove all or by predicate."""

    kind: str
    ids: tuple[str, ...] = ()
    predicate: Callable[[dict[str, Any]], bool] | None = None


@dataclass
class PatchResult:
    document: dict[str, Any]
    member_changes: list[MemberChange] = field(default_factory=list)


def no_target(detail: str) -> ScimError:
    return ScimError(400, detail, "noTarget")


def mutability(detail: str) -> ScimError:
    return ScimError(400, detail, "mutability")


_EQ_TERM = re.compile(r'\s*([A-Za-z$][\w$-]*)\s+eq\s+("(?:[^"\\]|\\.)*"|true|false)\s*', re.IGNORECASE)


def equality_terms(path: str, joiner: str) -> list[tuple[str, Any]] | None:
    """``[type eq "work" and primary eq true]`` as pairs, when the value filter is only ``eq`` terms
    joined by ``joiner`` ("and" / "or"); None for any other filter."""
    start, end = path.find("["), path.rfind("]")
    if start < 0 or end < start:
        return None
    text, position, terms = path[start + 1 : end], 0, []
    separator = re.compile(rf"{joiner}\b", re.IGNORECASE)
    while True:
        match = _EQ_TERM.match(text, position)
        if match is None:
            return None
        literal = match.group(2)
        try:
            terms.append((match.group(1), json.loads(literal if literal.startswith('"') else literal.lower())))
        except ValueError:  # an invalid escape: the full parser reports it
            return None
        position = match.end()
        if position == len(text):
            return terms
        joined = separator.match(text, position)
        if joined is None:
            return None
        position = joined.end()


def _without_identity(elements: list[Any], removed: list[Any]) -> list[Any]:
    removed_ids = {id(element) for element in removed}
    return [element for element in elements if id(element) not in removed_ids]


def _single_primary(elements: list[Any], preferred: list[Any]) -> None:
    """Setting ``primary`` on a value clears it on the others (RFC 7643 §2.4: at most one)."""
    chosen = next((e for e in reversed(preferred) if isinstance(e, dict) and e.get("primary") is True), None)
    if chosen is None:
        return
    for element in elements:
        if element is not chosen and isinstance(element, dict) and element.get("primary") is True:
            element["primary"] = False


@dataclass
class _Target:
    path: str
    parsed: PatchPath
    definition: AttributeDef
    sub: AttributeDef | None


class Patcher:
    """Applies operations one by one to a copy of the document."""

    def __init__(self, resource_type: str, document: dict[str, Any], resource_id: str) -> None:
        self.resource_type = resource_type
        self.resource_id = resource_id
        self.original = document
        self.document = copy.deepcopy(document)
        self.member_changes: list[MemberChange] = []

    # -- entry points -----------------------------------------------------------------------------
    def apply(self, op: str, path: str | None, value: Any) -> None:
        if op == "remove" and path is not None and self.resource_type == GROUP:
            ids = _member_ids_in_filter(path)
            if ids is not None:  # Okta's removal, up to one operation per member: no parsing needed
                self._change_members(MemberChange("remove", ids))
                return
        extension = resolve_schema(self.resource_type, path) if path else None
        if path is None:
            self._apply_pathless(op, value)
        elif extension is not None and extension != core_schema(self.resource_type):
            self._apply_extension(op, extension, value)
        else:
            self._apply_path(op, self._target(path), value)

    def _apply_extension(self, op: str, extension: str, value: Any) -> None:
        """A path naming a whole extension schema: remove it, or add/replace its attributes."""
        if op == "remove":
            self.document.pop(extension, None)
            return
        if op == "replace":
            self.document.pop(extension, None)
        self._apply_pathless(op, {extension: value})

    def result(self) -> PatchResult:
        document = validate_document(self.resource_type, self.document)
        check_immutable(self.resource_type, self.original, document)
        return PatchResult(document, coalesced(self.member_changes))

    # -- pathless: the value is a set of attributes -------------------------------------------------
    def _apply_pathless(self, op: str, value: Any) -> None:
        if op == "remove":
            raise no_target("A remove operation needs a path")
        if not isinstance(value, dict):
            raise ScimError(400, "A PATCH operation without path needs an object value", "invalidValue")
        for key, item in value.items():
            self._apply_pathless_key(op, str(key), item)

    def _apply_pathless_key(self, op: str, key: str, value: Any) -> None:
        if key.lower() == "schemas":
            return
        extension = resolve_schema(self.resource_type, key)
        if extension is not None and extension != core_schema(self.resource_type):
            if not isinstance(value, dict):
                raise ScimError(400, f"The value of {extension} must be an object", "invalidValue")
            for sub_key, item in value.items():
                if str(sub_key).lower() != "schemas":
                    self.apply(op, f"{extension}:{sub_key}", item)
            return
        if key.lower().startswith("urn:") and not self._is_known_urn_path(key):
            return  # an extension this server does not implement: ignored, as on create
        definition = find_attribute(self.resource_type, None, key)
        if definition is not None and definition.mutability == "readOnly":
            self._check_read_only_echo(definition, value)
            return
        self.apply(op, key, value)

    def _is_known_urn_path(self, key: str) -> bool:
        return any(key.lower().startswith(urn.lower() + ":") for urn in schemas_for(self.resource_type))

    def _check_read_only_echo(self, definition: AttributeDef, value: Any) -> None:
        """Okta repeats the ``id`` in a pathless replace: fine when unchanged, an error otherwise."""
        if definition.name == "id" and value != self.resource_id:
            raise mutability("Attribute 'id' is readOnly and cannot be changed")

    # -- with a path --------------------------------------------------------------------------------
    def _target(self, path: str) -> _Target:
        parsed = parse_patch_path(self.resource_type, path)
        definition = find_attribute(self.resource_type, parsed.attr.schema, parsed.attr.attribute)
        if definition is None:
            raise ScimError(400, f"Unknown attribute in path '{path}'", "invalidPath")
        sub_name = parsed.attr.sub_attribute or parsed.sub_attribute
        sub = definition.sub(sub_name) if sub_name else None
        if sub_name and sub is None:
            raise ScimError(400, f"Unknown sub-attribute in path '{path}'", "invalidPath")
        if definition.mutability == "readOnly" or (sub is not None and sub.mutability == "readOnly"):
            raise mutability(f"Attribute '{path}' is readOnly")
        return _Target(path, parsed, definition, sub)

    def _container(self, definition: AttributeDef) -> dict[str, Any]:
        if definition.schema == core_schema(self.resource_type):
            return self.document
        section: dict[str, Any] = self.document.setdefault(definition.schema, {})
        return section

    def _apply_path(self, op: str, target: _Target, value: Any) -> None:
        if self.resource_type == GROUP and target.definition.name == MEMBERS:
            self._apply_members(op, target, value)
        elif target.parsed.value_filter is not None:
            self._apply_filtered(op, target, value)
        elif target.sub is not None:
            self._apply_sub_attribute(op, target, value)
        else:
            self._apply_attribute(op, target, value)

    def _apply_attribute(self, op: str, target: _Target, value: Any) -> None:
        definition, container = target.definition, self._container(target.definition)
        name = definition.name
        if op == "remove":
            if value is not None and definition.multi_valued and definition.is_complex:
                self._remove_listed_values(container, definition, value)
            else:
                container.pop(name, None)
            return
        new = deserialize_value(definition, value, target.path)
        if new is None:
            if op == "replace":
                container.pop(name, None)
            return
        if definition.multi_valued:
            existing = container.get(name) or []
            added = [item for item in new if item not in existing] if op == "add" else new
            elements = existing + added if op == "add" else new
            limits.check_multi_values(len(elements), target.path)
            _single_primary(elements, added)
            container[name] = elements
        elif definition.is_complex:
            container[name] = {**(container.get(name) or {}), **new}
        else:
            container[name] = new

    def _remove_listed_values(self, container: dict[str, Any], definition: AttributeDef, value: Any) -> None:
        """Entra's remove form: ``"value": [{"value": X}]`` removes only the listed values."""
        listed = deserialize_value(definition, value, definition.name) or []
        values = {item.get("value") for item in listed if isinstance(item, dict)}
        container[definition.name] = [e for e in container.get(definition.name) or [] if e.get("value") not in values]

    def _apply_sub_attribute(self, op: str, target: _Target, value: Any) -> None:
        definition, sub = target.definition, target.sub
        assert sub is not None
        container = self._container(definition)
        new = None if op == "remove" else deserialize_value(sub, value, target.path)
        if definition.multi_valued:
            elements = container.get(definition.name) or ([] if op == "remove" else [{}])
            for element in elements:
                self._set_sub(element, sub.name, new)
            container[definition.name] = elements
            return
        current = container.get(definition.name) or {}
        self._set_sub(current, sub.name, new)
        container[definition.name] = current

    @staticmethod
    def _set_sub(element: dict[str, Any], name: str, value: Any) -> None:
        if value is None:
            element.pop(name, None)
        else:
            element[name] = value

    def _apply_filtered(self, op: str, target: _Target, value: Any) -> None:
        definition = target.definition
        container = self._container(definition)
        current = container.get(definition.name)
        elements = list(current or []) if definition.multi_valued else ([current] if current else [])
        assert target.parsed.value_filter is not None  # a filtered target
        matches = value_filter_predicate(target.parsed.value_filter, definition)
        matched = [element for element in elements if matches(element)]
        if op == "remove":
            if not matched:
                raise no_target(f"No value matches '{target.path}'")
            if target.sub is not None:
                for element in matched:
                    element.pop(target.sub.name, None)
            else:
                elements = _without_identity(elements, matched)
        else:
            if not matched:
                matched = [self._synthesized_element(target)]
                elements.append(matched[0])
                limits.check_multi_values(len(elements), target.path)
            elements = self._update_matched(op, target, value, elements, matched)
            _single_primary(elements, matched)
        if definition.multi_valued:
            container[definition.name] = elements
        else:
            container[definition.name] = elements[0] if elements else None

    def _update_matched(self, op: str, target: _Target, value: Any, elements: list[Any], matched: list[Any]) -> list[Any]:
        if target.sub is not None:
            new = deserialize_value(target.sub, value, target.path)
            for element in matched:
                self._set_sub(element, target.sub.name, new)
            return elements
        replacement = self._one_element(target, value)
        for element in matched:
            if op == "replace":
                element.clear()
            element.update(copy.deepcopy(replacement))
        return elements

    def _one_element(self, target: _Target, value: Any) -> dict[str, Any]:
        loaded = deserialize_value(target.definition, value, target.path)
        if isinstance(loaded, list):
            if len(loaded) != 1:
                raise ScimError(400, f"'{target.path}' needs exactly one value", "invalidValue")
            loaded = loaded[0]
        if not isinstance(loaded, dict):
            raise ScimError(400, f"'{target.path}' needs a complex value", "invalidValue")
        return loaded

    def _synthesized_element(self, target: _Target) -> dict[str, Any]:
        """``emails[type eq "work"].value`` with no work e-mail yet creates it (what Entra expects)."""
        terms = equality_terms(target.path, "and")
        if terms is None:
            raise no_target(f"No value matches '{target.path}'")
        return self._one_element(target, dict(terms))

    # -- group members as set operations -----------------------------------------------------------
    def _apply_members(self, op: str, target: _Target, value: Any) -> None:
        if target.sub is not None:
            raise ScimError(400, "Member sub-attributes cannot be modified", "invalidPath")
        if target.parsed.value_filter is not None:
            self._remove_filtered_members(op, target)
        elif op == "remove" and value is None:
            self._change_members(MemberChange("remove_all"))
        else:
            self._change_members(MemberChange(op, member_ids(value)))

    def _remove_filtered_members(self, op: str, target: _Target) -> None:
        if op != "remove":
            raise ScimError(400, "A filtered members path can only be removed", "invalidPath")
        ids = _member_ids_in_filter(target.path)
        if ids is not None:
            self._change_members(MemberChange("remove", ids))
            return
        assert target.parsed.value_filter is not None  # a filtered target
        predicate = value_filter_predicate(target.parsed.value_filter, target.definition)
        self._change_members(MemberChange("remove_matching", predicate=predicate))

    def _change_members(self, change: MemberChange) -> None:
        self.member_changes.append(change)


def coalesced(changes: list[MemberChange]) -> list[MemberChange]:
    """Consecutive adds (or removes) of ids as one set operation: Okta's one ``members[value eq "ID"]``
    operation per member becomes one statement, not 10,000."""
    result: list[MemberChange] = []
    run: list[str] = []
    for index, change in enumerate(changes):
        if change.kind in ("add", "remove"):
            run.extend(change.ids)
            following = changes[index + 1] if index + 1 < len(changes) else None
            if following is None or following.kind != change.kind:
                result.append(MemberChange(change.kind, tuple(dict.fromkeys(run))))
                run = []
        else:
            result.append(change)
    return result


_MEMBER_FILTER_PATH = re.compile(r"\s*members\s*(\[.*\])\s*", re.IGNORECASE | re.DOTALL)


def _member_ids_in_filter(path: str) -> tuple[str, ...] | None:
    """The ids of ``members[value eq "a" or value eq "b"]``; None for any other path or filter."""
    match = _MEMBER_FILTER_PATH.fullmatch(path)
    terms = equality_terms(match.group(1), "or") if match else None
    if terms is None or not all(name.lower() == "value" and isinstance(v, str) for name, v in terms):
        return None
    return tuple(dict.fromkeys(v for _, v in terms))


_MEMBER_KEYS = {"value", "$ref", "type", "display"}


def member_ids(value: Any) -> tuple[str, ...]:
    """The user ids of a ``members`` value (a list of ``{"value": id}``; ``display`` is ignored).

    Checked by hand rather than through the marshmallow schema: a 50,000-member PUT or PATCH would
    otherwise spend seconds building objects that are reduced to their ids anyway.
    """
    items = value if isinstance(value, list) else [value]
    ids: list[str] = []
    for index, item in enumerate(items):
        if item is None:
            continue
        if not isinstance(item, dict):
            raise ScimError(400, f"members[{index}] must be an object", "invalidValue")
        fields = {str(key).lower(): item_value for key, item_value in item.items()}
        unknown = sorted(set(fields) - _MEMBER_KEYS)
        if unknown:
            raise ScimError(400, f"members[{index}]: unknown attribute {unknown[0]}", "invalidSyntax")
        user_id, kind = fields.get("value"), fields.get("type")
        if not isinstance(user_id, str) or not user_id:
            raise ScimError(400, f"members[{index}].value must be a non-empty string", "invalidValue")
        if kind is not None and (not isinstance(kind, str) or kind.lower() != "user"):
            raise ScimError(400, f"members[{index}]: only Users can be group members", "invalidValue")
        ids.append(user_id)
    return tuple(dict.fromkeys(ids))


def take_members(body: dict[str, Any]) -> tuple[str, ...]:
    """Remove ``members`` (any case) from an incoming Group body and return the member ids."""
    keys = [key for key in body if str(key).lower() == MEMBERS]
    values = [body.pop(key) for key in keys]
    return member_ids([member for value in values if value for member in (value if isinstance(value, list) else [value])])


def apply_patch(
    resource_type: str, document: dict[str, Any], operations: list[dict[str, Any]], resource_id: str
) -> PatchResult:
    """Apply validated operations (``op`` lower-case, ``path``, ``value``) all-or-nothing.

    Member operations are cheap set operations (up to ``limits.MAX_PATCH_OPERATIONS``); operations
    on attributes each parse a path and rewrite the document, so fewer are accepted
    (``limits.MAX_ATTRIBUTE_OPERATIONS``), and no multi-valued attribute grows past
    ``limits.MAX_MULTI_VALUES``: together they bound the work of one request.
    """
    limits.check_patch_operations(len(operations))
    patcher = Patcher(resource_type, document, resource_id)
    attribute_operations = 0
    for operation in operations:
        member_changes = len(patcher.member_changes)
        patcher.apply(operation["op"], operation.get("path"), operation.get("value"))
        if len(patcher.member_changes) == member_changes:
            attribute_operations += 1
            limits.check_patch_operations(attribute_operations, limits.MAX_ATTRIBUTE_OPERATIONS,
                                          "operations on attributes")
    return patcher.result()
