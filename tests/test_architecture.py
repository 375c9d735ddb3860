"""The rooms and their doors: no import cycles in webapp/, even through imports inside functions, and
views reach storage, the queue and the scanner only through services."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "webapp"


def module_name(path):
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def imports_of(name):
    """The webapp modules name imports anywhere in its body (`from pkg import sub` counts as sub)."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module:
            subs = {f"{node.module}.{alias.name}" for alias in node.names}
            found |= subs & MODULES.keys()
            if node.module in MODULES and not subs <= MODULES.keys():
                found.add(node.module)
    return found - {name}


GRAPH = {name: imports_of(name) for name in MODULES}


def cycle_from(start):
    """One import path that leads from start back to start, or None."""
    stack, seen = [(start, [start])], set()
    while stack:
        name, path = stack.pop()
        for target in GRAPH[name]:
            if target == start:
                return path + [start]
            if target not in seen:
                seen.add(target)
                stack.append((target, path + [target]))
    return None


def test_the_graph_is_read():
    assert "webapp.services.uploads" in GRAPH["webapp.api.views"]
    assert "webapp.queue" in GRAPH["webapp.services.uploads"]


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_import_cycles(name):
    assert cycle_from(name) is None, " -> ".join(cycle_from(name))


@pytest.mark.parametrize("view", sorted(name for name in MODULES if name.endswith(".views")))
def test_views_use_services_not_plumbing(view):
    scanning = {name for name in MODULES if name.startswith("webapp.scanning")}
    plumbing = {"webapp.queue", "webapp.storage", "webapp.jobs", "webapp.outbound"} | scanning
    assert not GRAPH[view] & plumbing
