"""The layout's rules, checked on the source (docs/architecture.md explains them).

Every ``import`` in ``workers/`` and ``dashboard/`` (also those inside functions) is read with ``ast``
and resolved to the project module it names. Then:

- no import loop between project modules;
- ``workers/`` never imports ``dashboard/``;
- a read module (``selectors`` in its dotted path) imports only models, rules, ``workers.db`` and
  other reads from the domain: never a write (service) module;
- ``workers/rules/`` is pure: no ORM, no other domain module;
- pages (``dashboard/`` outside its management commands) never reach the Azure adapter or emulator;
- only ``workers/azure/client.py`` imports an Azure SDK;
- no leftovers of parallel building (``get_model(``, ``import_module(``, ``noqa: E402/F401``);
- no hand-written ``.py``/``.js`` file over 400 lines.
"""
from __future__ import annotations

import ast
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("workers", "dashboard")
MAX_LINES = 400


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            found[_module_name(path)] = path
    return found


def _imported_names(module: str, path: Path) -> Iterator[str]:
    """Every dotted name the module imports, absolute, including ``from pkg import name`` as
    ``pkg.name`` (the caller keeps it when it is a module, else falls back to ``pkg``)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                yield f"{base}.{alias.name}"


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (itself, or its longest known prefix), or None."""
    modules = _modules()
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


@cache
def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for module, path in _modules().items():
        edges = set()
        for name in _imported_names(module, path):
            target = _resolve(name)
            if target and target != module:
                edges.add(target)
        graph[module] = edges
    return graph


@cache
def _external_imports() -> dict[str, set[str]]:
    """Top-level names of the non-project packages each module imports (``django.db``, ``azure``)."""
    found: dict[str, set[str]] = {}
    for module, path in _modules().items():
        found[module] = {n for n in _imported_names(module, path) if not n.startswith(PACKAGES)}
    return found


def _is_read(module: str) -> bool:
    return "selectors" in module.split(".")


def _in(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def _package_edge(source: str, target: str) -> bool:
    """A package's ``__init__`` importing its own submodules (a public-API re-export) is not a loop
    back from those submodules: they never import the package itself (checked by the caller)."""
    return target.startswith(source + ".")


def test_it_has_no_import_loops():
    graph = {m: {t for t in edges if not _package_edge(m, t)} for m, edges in _graph().items()}
    assert _cycles(graph) == []


def test_it_finds_a_loop_when_there_is_one():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_workers_never_imports_dashboard():
    bad = {m: sorted(t for t in e if _in(t, "dashboard")) for m, e in _graph().items() if _in(m, "workers")}
    assert {m: t for m, t in bad.items() if t} == {}


def test_reads_import_only_models_rules_db_and_other_reads():
    allowed = ("workers.models", "workers.rules", "workers.db")
    bad = {}
    for module, edges in _graph().items():
        if not (_in(module, "workers") and _is_read(module)):
            continue
        wrong = sorted(t for t in edges if _in(t, "workers") and not (_in(t, *allowed) or _is_read(t)))
        if wrong:
            bad[module] = wrong
    assert bad == {}


def test_rules_are_pure():
    bad = {}
    for module, edges in _graph().items():
        if not _in(module, "workers.rules"):
            continue
        wrong = sorted(t for t in edges if not _in(t, "workers.rules"))
        wrong += sorted(n for n in _external_imports()[module] if _in(n, "django.db"))
        if wrong:
            bad[module] = wrong
    assert bad == {}


def test_pages_never_reach_the_azure_adapter_or_the_emulator():
    bad = {}
    for module, edges in _graph().items():
        if _in(module, "dashboard") and not _in(module, "dashboard.management"):
            wrong = sorted(t for t in edges if _in(t, "workers.azure", "workers.emulator"))
            if wrong:
                bad[module] = wrong
    assert bad == {}


def test_only_the_client_module_imports_an_azure_sdk():
    importers = sorted(m for m, names in _external_imports().items() if any(_in(n, "azure") for n in names))
    # arm: the credential, retries and read budget every ARM client shares; machines: Arc/VM state
    # (hybridcompute, compute); metrics: HybridWorkerPing (mgmt-monitor)
    assert importers == ["workers.azure.arm", "workers.azure.client", "workers.azure.machines", "workers.azure.metrics"]


def _product_sources() -> list[Path]:
    return [path for path in _modules().values()] + sorted((ROOT / "static" / "js").glob("*.js"))


def test_it_has_no_leftover_guards():
    needles = ("get_model(", "import_module(", "noqa: E402", "noqa: F401")
    found = [f"{p.relative_to(ROOT)}: {n}" for p in _product_sources() for n in needles if n in p.read_text()]
    assert found == []


@cache
def _tracked_sources() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py", "*.js"],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if "/migrations/" not in name and "/vendor/" not in name
            and "node_modules" not in name and (ROOT / name).exists()]


def test_no_hand_written_file_is_over_400_lines():
    long = {str(p.relative_to(ROOT)): n for p in _tracked_sources() if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
