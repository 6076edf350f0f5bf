"""The layer rules of docs/architecture.md, checked on the source: who may import whom, and no cycles.

Every ``import`` statement counts, including those inside functions (a deferred import is still a
dependency); only imports under ``if TYPE_CHECKING:`` are left out (they never run).
"""
from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("scim_server", "jsm_client", "schemas")

# layer (module prefix) -> prefixes it must not import
_ABOVE_FOUNDATION = ("flask", "werkzeug", "scim_server.scim", "scim_server.store", "scim_server.handler",
                     "scim_server.sync", "scim_server.services", "scim_server.api", "scim_server.sso",
                     "scim_server.cli", "scim_server.app", "jsm_client", "schemas")
FORBIDDEN: dict[str, tuple[str, ...]] = {
    # Foundation: settings, database plumbing and models know nothing of the layers built on them.
    "scim_server.settings": _ABOVE_FOUNDATION,
    "scim_server.db": _ABOVE_FOUNDATION,
    "scim_server.models": _ABOVE_FOUNDATION,
    # Pure SCIM rules: no database, no web framework, nothing above them.
    "scim_server.scim": ("sqlalchemy", "flask", "werkzeug", "scim_server.db", "scim_server.models",
                         "scim_server.store", "scim_server.handler", "scim_server.sync", "scim_server.services",
                         "scim_server.api", "scim_server.sso", "scim_server.cli", "scim_server.app", "jsm_client"),
    "schemas": ("sqlalchemy", "flask", "scim_server.db", "scim_server.models", "scim_server.store",
                "scim_server.handler", "scim_server.sync", "scim_server.services", "scim_server.api",
                "scim_server.sso", "scim_server.cli", "scim_server.app"),
    # Storage: SQL over the models and the pure rules; it knows nothing of propagation or HTTP.
    "scim_server.store": ("flask", "werkzeug", "scim_server.handler", "scim_server.sync", "scim_server.services",
                          "scim_server.api", "scim_server.sso", "scim_server.cli", "scim_server.app", "jsm_client"),
    # The SCIM handler: framework-free operations over the store.
    "scim_server.handler": ("flask", "werkzeug", "scim_server.sync", "scim_server.services", "scim_server.api",
                            "scim_server.sso", "scim_server.cli", "scim_server.app", "jsm_client"),
    # Propagation: reads the store, talks to JSM; never the HTTP side.
    "scim_server.sync": ("flask", "werkzeug", "scim_server.handler", "scim_server.services", "scim_server.api",
                         "scim_server.sso", "scim_server.cli", "scim_server.app", "jsm_client.emulator"),
    # The leaf every request, command and worker shares.
    "scim_server.services": ("scim_server.api", "scim_server.sso", "scim_server.sync", "scim_server.handler",
                             "scim_server.store", "scim_server.cli", "scim_server.app", "jsm_client"),
    # Blueprints: never the app factory nor the CLI, nor each other's internals.
    "scim_server.api": ("scim_server.app", "scim_server.cli", "scim_server.sso", "jsm_client.emulator"),
    "scim_server.sso": ("scim_server.app", "scim_server.cli", "scim_server.api", "jsm_client.emulator"),
    "scim_server.idp": ("scim_server.app", "scim_server.cli", "scim_server.api", "jsm_client.emulator"),
    # The JSM client is a library of its own; its emulator is loaded only when asked for.
    "jsm_client": ("scim_server", "schemas"),
}
# Only the entry points import the app factory.
APP_IMPORTERS = ("scim_server.wsgi", "scim_server.cli")
CLIENT_MODULES = ("jsm_client.client", "jsm_client.errors", "jsm_client.models", "jsm_client.retry", "jsm_client.pacing",
                  "jsm_client.bounded_http", "jsm_client")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and _is_type_checking(node):
            yield from (name for child in node.orelse for name in _imports(child, module, is_package))
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")[: len(module.split(".")) - node.level + (1 if is_package else 0)]
                prefix = ".".join(base + ([node.module] if node.module else []))
            else:
                prefix = node.module or ""
            yield prefix
            yield from (f"{prefix}.{alias.name}" for alias in node.names)  # may name a submodule
        yield from _imports(node, module, is_package)


def import_graph() -> dict[str, set[str]]:
    """module -> the modules of our packages it imports (names that are not modules are dropped)."""
    files = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        names = set(_imports(tree, module, path.name == "__init__.py"))
        graph[module] = {name for name in names if name in files and name != module} | {
            name for name in names if name.split(".")[0] not in PACKAGES}
    return graph


GRAPH = import_graph()


def _within(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_graph_sees_our_modules():
    assert "scim_server.handler.operations" in GRAPH and "scim_server.store.filter_sql" in GRAPH["scim_server.store.common"]
    assert "sqlalchemy.orm" in GRAPH["scim_server.store.common"]


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layer_imports_only_what_its_rule_allows(layer: str):
    breaches = sorted(
        f"{module} imports {target}"
        for module, targets in GRAPH.items() if _within(module, layer)
        for target in targets for banned in FORBIDDEN[layer] if _within(target, banned)
    )
    assert not breaches, "\n".join(breaches)


def test_only_entry_points_import_the_app_factory():
    importers = sorted(m for m, targets in GRAPH.items() if "scim_server.app" in targets
                       and not any(_within(m, allowed) for allowed in APP_IMPORTERS))
    assert not importers


def test_the_jsm_client_loads_no_emulator():
    breaches = sorted(f"{m} imports {t}" for m in CLIENT_MODULES for t in GRAPH[m] if "emulator" in t)
    assert not breaches


def test_services_is_a_leaf():
    ours = {t for t in GRAPH["scim_server.services"] if t.split(".")[0] in PACKAGES}
    assert all(_within(t, "scim_server.settings") or _within(t, "scim_server.db") or _within(t, "scim_server.models")
               or _within(t, "scim_server.private_files") for t in ours), ours


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle among our modules (as a path a -> ... -> a), or None."""
    ours = {m: {t for t in targets if t in graph} for m, targets in graph.items()}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(ours[module]):
            if state.get(target) == 1:
                return path[path.index(target):] + [target]
            if target not in state and (found := visit(target)):
                return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(ours):
        if module not in state and (found := visit(module)):
            return found
    return None


def _is_package_init(module: str) -> bool:
    return (ROOT / module.replace(".", "/") / "__init__.py").is_file()


def test_no_import_cycles():
    # A package's __init__ re-exporting its own submodules is not a cycle of design: leave out the
    # edges from a submodule up to its own package's __init__ (``from scim_server import store``
    # in ``store.groups`` would still count, through the other modules it reaches).
    graph = {m: {t for t in targets if not (_is_package_init(t) and _within(m, t))} for m, targets in GRAPH.items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_cycles():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
