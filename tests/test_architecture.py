"""The layout of docs/architecture.md, checked: no import circles (lazy imports included),
imports only go down the data flow, the thin engine, small files and functions, no module
shadowed by a facade method, the environment read only in config, and no private reach-ins."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "stylesearch"
ROOT = PACKAGE.parent


def _module(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Module → the stylesearch modules it imports anywhere in its body (lazy ones too)."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [target] + [f"{target}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, or None. A package's ``__init__`` re-exporting its own modules is
    not a circle (the modules do not import the package back through it)."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + ".") or node.startswith(nxt + "."):
                continue  # a package and its own modules
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_circle() -> None:
    assert _cycle(_imports()) is None


def test_imports_go_down_the_data_flow() -> None:
    graph = _imports()
    for name, targets in graph.items():
        if name.startswith("stylesearch.model."):
            assert not {t for t in targets if t.startswith(("stylesearch.ingest", "stylesearch.index", "stylesearch.engine"))}, (
                name
            )
        if name.startswith("stylesearch.index."):
            assert not {t for t in targets if t.startswith(("stylesearch.model", "stylesearch.ingest", "stylesearch.engine"))}, (
                name
            )
        if name.startswith(("stylesearch.service", "stylesearch.cli")):
            assert not {t for t in targets if t.startswith(("stylesearch.model", "stylesearch.index.backends"))}, name
        if name == "stylesearch.classify":
            assert targets <= {"stylesearch.config", "stylesearch.errors", "stylesearch.results"}, targets


def test_index_needs_no_torch() -> None:
    """``index/`` works on numpy arrays: only the GPU accelerator imports torch, lazily."""
    for path in (PACKAGE / "index").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        top_level = [n for n in ast.parse(text).body if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not any("torch" in ast.unparse(n) for n in top_level), path


def test_the_engine_is_a_thin_facade() -> None:
    assert len((PACKAGE / "engine.py").read_text(encoding="utf-8").splitlines()) <= 450


def test_files_and_functions_stay_small() -> None:
    """No module over 400 lines (the facade: 450), no function over 80."""
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        limit = 450 if path == PACKAGE / "engine.py" else 400
        assert len(text.splitlines()) <= limit, path
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert node.end_lineno is not None and node.end_lineno - node.lineno < 80, f"{path}: {node.name}"


def test_no_module_is_shadowed_by_a_facade_method() -> None:
    """Inside the facade, a name is a module or a method, never both."""
    import importlib.util

    tree = ast.parse((PACKAGE / "engine.py").read_text(encoding="utf-8"))
    facade = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "StyleSearch")
    methods = {n.name for n in facade.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
    modules = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            base = "stylesearch" + (f".{node.module}" if node.module else "")
            for alias in node.names:
                try:
                    found = importlib.util.find_spec(f"{base}.{alias.name}")
                except ModuleNotFoundError:  # base is a module, not a package: alias is a name in it
                    found = None
                if found is not None:
                    modules.add(alias.asname or alias.name)
    assert modules and not modules & methods, modules & methods


def test_only_config_reads_the_environment() -> None:
    """``model/`` (and every module but config, the service settings and the CLI's server
    start) gets the environment from :func:`stylesearch.config.environment`."""
    allowed = {PACKAGE / "config.py", PACKAGE / "cli" / "serve.py"}
    for path in PACKAGE.rglob("*.py"):
        if path not in allowed:
            text = path.read_text(encoding="utf-8")
            assert "os.environ" not in text and "getenv(" not in text, path


def test_nothing_outside_the_engine_touches_its_private_attributes() -> None:
    pattern = re.compile(r"\b(engine|search|a|b|again|opened)\._(?!_)[a-z]\w*")
    for folder in ("tests", "benchmarks", "stylesearch/service", "stylesearch/cli"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == Path(__file__).name:
                continue
            assert not pattern.search(path.read_text(encoding="utf-8")), path


def test_the_command_line_parser_imports_no_torch() -> None:
    code = "import sys; from stylesearch.cli import build_parser; build_parser(); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "False"
