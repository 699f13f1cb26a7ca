"""Project-wide checks: ruff, mypy strict on core and stats, import-linter contracts, and the
non-GUI packages working with PySide6 imports blocked."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def _run(*cmd: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env, timeout=600)


def test_ruff_is_clean() -> None:
    r = _run(str(BIN / "ruff"), "check", "scorer", "tests")
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_is_clean_and_strict_on_the_layers_below_the_facade() -> None:
    # Plain ``mypy`` from the repository root, as a developer runs it: pyproject's ``files``
    # (the whole ``scorer`` package, the GUI included), nothing excluded.
    r = _run(sys.executable, "-m", "mypy", "--cache-dir", "/dev/null")
    assert r.returncode == 0, r.stdout + r.stderr
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["mypy"]
    assert config["files"] == ["scorer"] and "exclude" not in config
    r = _run(
        sys.executable,
        "-m",
        "mypy",
        "--strict",
        "--cache-dir",
        "/dev/null",
        "scorer/core",
        "scorer/stats",
        "scorer/imaging",
        "scorer/store",
        "scorer/services",
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_import_contracts_hold() -> None:
    r = _run(str(BIN / "lint-imports"), "--no-cache")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "broken" not in r.stdout.lower().replace("0 broken", "")


BLOCKER = textwrap.dedent(
    """
    import importlib.abc, sys

    class _NoQt(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in ("PySide6", "shiboken6"):
                raise ImportError(f"blocked for this test: {name}")
            return None

    sys.meta_path.insert(0, _NoQt())
    """
)


def test_non_gui_packages_never_need_qt(tmp_path: Path) -> None:
    """Import every module outside scorer.gui, and run `scorer analyze`, with PySide6 blocked."""
    script = BLOCKER + textwrap.dedent(
        f"""
        import pkgutil, importlib, scorer
        names = [m.name for m in pkgutil.walk_packages(scorer.__path__, "scorer.")
                 if not m.name.startswith("scorer.gui") and m.name != "scorer.__main__"]
        for n in names:
            importlib.import_module(n)
        assert "PySide6" not in sys.modules
        from scorer.cli import main
        rc = main(["example", "--out", {str(tmp_path / "ex.csv")!r}])
        assert rc == 0
        rc = main(["analyze", {str(tmp_path / "ex.csv")!r}, "--format", "json",
                   "--out", {str(tmp_path / "out.json")!r}])
        assert rc == 0
        assert "PySide6" not in sys.modules
        print("imported", len(names))
        """
    )
    r = _run(sys.executable, "-c", script)
    assert r.returncode == 0, r.stdout + r.stderr
    assert int(r.stdout.split()[-1]) >= 10
    assert (tmp_path / "out.json").stat().st_size > 1000


def test_statsmodels_loads_only_for_the_endpoint_report(tmp_path: Path) -> None:
    """statsmodels (and pandas) are runtime dependencies of `scorer report endpoints` alone:
    importing every scorer module — the command line, the workspace, the reading window —
    and running `scorer analyze` loads neither; the endpoint models load them when called."""
    script = textwrap.dedent(
        f"""
        import os, sys, pkgutil, importlib
        os.environ["QT_QPA_PLATFORM"] = "offscreen"
        import scorer
        import scorer.cli, scorer.workspace, scorer.gui.reading, scorer.gui.workstation
        for m in pkgutil.walk_packages(scorer.__path__, "scorer."):
            if m.name != "scorer.__main__":
                importlib.import_module(m.name)
        from scorer.cli import main
        assert main(["example", "--out", {str(tmp_path / "ex.csv")!r}]) == 0
        assert main(["analyze", {str(tmp_path / "ex.csv")!r}, "--format", "json",
                     "--out", {str(tmp_path / "out.json")!r}]) == 0
        heavy = sorted(n for n in sys.modules if n.split(".")[0] in ("statsmodels", "pandas"))
        print("loaded:", heavy[:5])
        assert not heavy, heavy
        from scorer.stats.endpoint_models import newcombe_interval
        newcombe_interval(1, 2, 1, 3)
        assert "statsmodels" in sys.modules
        print("ok")
        """
    )
    r = _run(sys.executable, "-c", script)
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.split()[-1] == "ok"


def test_no_module_imports_pyplot() -> None:
    """Plots and PDFs use matplotlib's Figure API: pyplot keeps global state, is not
    thread-safe, and reports are drawn on worker threads (the monitor's exports)."""
    import ast

    found = []
    for path in sorted((REPO / "scorer").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            if any(n == "matplotlib.pyplot" or n.startswith("matplotlib.pyplot.") for n in names):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert found == [], found


#: Longest class and function under scorer/, in lines (issue 26). A function may be longer
#: only if a comment on the line above its ``def`` starts with ``# long:`` and says why
#: (generated-image code); Alembic revisions are never edited and are not counted.
MAX_CLASS_LINES = 600
MAX_FUNCTION_LINES = 100


def _sources() -> list[Path]:
    return [
        p
        for p in sorted((REPO / "scorer").rglob("*.py"))
        if "migrations" not in p.relative_to(REPO / "scorer").parts
    ]


def test_no_class_over_600_and_no_function_over_100_lines() -> None:
    import ast

    too_long = []
    for path in _sources():
        text = path.read_text(encoding="utf-8")
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, ast.ClassDef):
                limit = MAX_CLASS_LINES
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                limit = MAX_FUNCTION_LINES
                first = min([node.lineno] + [d.lineno for d in node.decorator_list])
                if first > 1 and lines[first - 2].strip().startswith("# long:"):
                    continue
            else:
                continue
            length = (node.end_lineno or node.lineno) - node.lineno + 1
            if length > limit:
                too_long.append(f"{path.relative_to(REPO)}:{node.lineno} {node.name}: {length}")
    assert too_long == [], too_long


def _import_graph() -> dict[str, set[str]]:
    """Module -> the scorer modules it imports at run time (anywhere in the module, lazy
    imports in functions included; imports under ``if TYPE_CHECKING:`` are not run)."""
    import ast

    modules: dict[str, Path] = {}
    for path in sorted((REPO / "scorer").rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        typing_only = {
            id(inner)
            for node in ast.walk(tree)
            if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
            for stmt in node.body
            for inner in ast.walk(stmt)
        }
        package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
        deps: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                deps |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[: len(package) - (node.level - 1)]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                for a in node.names:
                    deps.add(f"{module}.{a.name}" if f"{module}.{a.name}" in modules else module)
        graph[name] = {d for d in deps if d in modules and d != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
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


def test_the_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": set()}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle_between_modules() -> None:
    graph = _import_graph()
    assert "scorer.services.reading" in graph["scorer.workspace"]  # the graph sees imports
    assert _cycles(graph) == []
