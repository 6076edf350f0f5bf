"""``attributes`` / ``excludedAttributes`` (RFC 7644 §3.4.2.5) and the ``returned`` rules (RFC 7643 §7).

``always`` attributes (``id``) are always returned, ``never`` ones (``password``) never, ``request``
ones only when named in ``attributes``. Names are resolved case-insensitively; an unknown name in
either list is ignored (it selects nothing), as most providers do.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from scim_server.scim.attributes import core_schema, extension_schemas, find_attribute, resolve_schema
from scim_server.scim.errors import ScimError
from scim_server.scim.parser import parse_attr_path

# (schema URN, attribute name, sub-attribute name or None); attribute None selects a whole extension.
Selector = tuple[str, str | None, str | None]


@dataclass(frozen=True)
class Projection:
    resource_type: str
    attributes: frozenset[Selector] | None = None
    excluded: frozenset[Selector] = frozenset()

    def wants(self, name: str) -> bool:
        """Whether the core attribute ``name`` would be returned (so computed values need loading)."""
        schema = core_schema(self.resource_type)
        definition = find_attribute(self.resource_type, schema, name)
        if definition is None or definition.returned == "never":
            return False
        if definition.returned == "always":
            return True
        if self.attributes is not None:
            return any(s == schema and n in (definition.name, None) for s, n, _ in self.attributes)
        return definition.returned != "request" and (schema, definition.name, None) not in self.excluded

    def apply(self, document: dict[str, Any]) -> dict[str, Any]:
        output: dict[str, Any] = {}
        extensions = set(extension_schemas(self.resource_type))
        for key, value in document.items():
            if key == "schemas":
                output[key] = value
            elif key in extensions:
                section = self._project_section(key, value)
                if section:
                    output[key] = section
            else:
                self._project_into(output, core_schema(self.resource_type), key, value)
        return output

    def _project_section(self, schema: str, values: dict[str, Any]) -> dict[str, Any]:
        section: dict[str, Any] = {}
        for name, value in values.items():
            self._project_into(section, schema, name, value)
        return section

    def _project_into(self, output: dict[str, Any], schema: str, name: str, value: Any) -> None:
        definition = find_attribute(self.resource_type, schema, name)
        returned = definition.returned if definition else "default"
        selected = self._select(schema, name, returned, value)
        if selected is not None:
            output[name] = selected

    def _select(self, schema: str, name: str, returned: str, value: Any) -> Any:
        if returned == "never":
            return None
        if returned == "always":
            return value
        if self.attributes is not None:
            return self._included(schema, name, value)
        if returned == "request" or (schema, name, None) in self.excluded or (schema, None, None) in self.excluded:
            return None
        excluded_subs = {sub for s, n, sub in self.excluded if s == schema and n == name and sub}
        return _drop_subs(value, excluded_subs) if excluded_subs else value

    def _included(self, schema: str, name: str, value: Any) -> Any:
        assert self.attributes is not None
        if (schema, name, None) in self.attributes or (schema, None, None) in self.attributes:
            return value
        subs = {sub for s, n, sub in self.attributes if s == schema and n == name and sub}
        return _keep_subs(value, subs) if subs else None


def _filter_complex(value: Any, keep: Callable[[str], bool]) -> Any:
    if isinstance(value, list):
        items = [_filter_complex(item, keep) for item in value]
        items = [item for item in items if item]
        return items or None
    if isinstance(value, dict):
        return {key: item for key, item in value.items() if keep(key)} or None
    return value


def _keep_subs(value: Any, subs: set[str]) -> Any:
    return _filter_complex(value, lambda key: key in subs)


def _drop_subs(value: Any, subs: set[str]) -> Any:
    return _filter_complex(value, lambda key: key not in subs)


def _selectors(resource_type: str, names: Iterable[str]) -> frozenset[Selector]:
    selectors: set[Selector] = set()
    for text in names:
        whole_extension = resolve_schema(resource_type, text.strip())
        if whole_extension is not None:
            selectors.add((whole_extension, None, None))
            continue
        try:
            path = parse_attr_path(resource_type, text.strip())
        except ScimError:
            continue
        selectors.add((path.schema, path.attribute, path.sub_attribute))
    return frozenset(selectors)


def projection(resource_type: str, attributes: list[str] | None, excluded: list[str] | None) -> Projection:
    """A projection from the request's lists; ``attributes`` wins when both are given (RFC 7644)."""
    if attributes:
        return Projection(resource_type, attributes=_selectors(resource_type, attributes))
    return Projection(resource_type, excluded=_selectors(resource_type, excluded or ()))
