"""The layers and their one-way flow, checked statically (ast, nothing imported):

    services (data, models, cache, retrieval, scoring)  <-  contract  <-  methods (baselines, personaplug)
                                                                      <-  orchestration (runs, report, perf)

* the contract imports services only: never orchestration, reporting or a method package;
* services import neither the contract nor anything above it;
* methods never import orchestration or reporting;
* orchestration imports the method registry at module top, never inside a function (no hidden late import).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SERVICES = ("benchmark.data", "benchmark.models", "benchmark.cache", "benchmark.retrieval", "benchmark.scoring")
ORCHESTRATION = ("benchmark.runs", "benchmark.report", "benchmark.perf")
METHODS = ("baselines", "personaplug")


def modules(*folders: str) -> list[Path]:
    return sorted(p for f in folders for p in (REPO / f).rglob("*.py"))


def imports(path: Path) -> list[tuple[str, bool]]:
    """(imported module, inside a function?) for every import statement of ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    out: list[tuple[str, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                out.extend((alias.name, in_function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                out.extend((f"{child.module}.{alias.name}", in_function) for alias in child.names)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return out


def offending(paths: list[Path], forbidden: tuple[str, ...]) -> list[str]:
    return [f"{p.relative_to(REPO)} imports {name}" for p in paths for name, _ in imports(p)
            if any(name == f or name.startswith(f + ".") for f in forbidden)]


def test_the_contract_depends_on_services_only():
    assert offending(modules("benchmark/contract"), ORCHESTRATION + METHODS) == []


def test_services_import_nothing_above_them():
    folders = [s.replace(".", "/") for s in SERVICES]
    assert offending(modules(*folders), ("benchmark.contract",) + ORCHESTRATION + METHODS) == []


def test_methods_never_import_orchestration():
    assert offending(modules(*METHODS), ORCHESTRATION) == []


def test_orchestration_imports_the_registry_at_module_top():
    late = [f"{p.relative_to(REPO)} imports {name} inside a function"
            for p in modules("benchmark/runs", "benchmark/report", "benchmark/perf", "scripts")
            for name, in_function in imports(p) if in_function and name.startswith("benchmark.contract.registry")]
    assert late == []


def test_the_checker_sees_a_late_import(tmp_path):
    """The static check itself: a registry import inside a function is found, one at the top is not late."""
    src = tmp_path / "m.py"
    src.write_text("from benchmark.contract.registry import get_method\n"
                   "def f():\n    from benchmark.contract.registry import method_names\n    return method_names\n")
    assert imports(src) == [("benchmark.contract.registry.get_method", False),
                            ("benchmark.contract.registry.method_names", True)]


@pytest.mark.parametrize("name", ["config.yaml", "../x.jsonl", "notes.txt"])
def test_diagnostics_cannot_overwrite_run_files(tmp_path, name):
    from benchmark.runs.provenance import write_diagnostics
    with pytest.raises(ValueError, match="diagnostics file name"):
        write_diagnostics(tmp_path, {name: []})
