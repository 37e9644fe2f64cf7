"""The import rules of the package, read from the source: the workload layer
does not import the cost model, and no two workload modules import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import deepopt_mip.formulation as formulation

FORMULATION = Path(formulation.__path__[0])
WORKLOAD_MODULES = ("layers", "graph", "workload", "networks", "onnx_graph", "onnx_import")


def imported_modules(module: str) -> set[str]:
    """Every ``deepopt_mip...`` module named by an import statement anywhere in the file (also inside functions)."""
    tree = ast.parse((FORMULATION / f"{module}.py").read_text(encoding="utf-8"))
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
            out.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {name for name in out if name.startswith("deepopt_mip")}


@pytest.mark.parametrize("module", WORKLOAD_MODULES)
def test_workload_does_not_import_the_cost_model(module):
    assert not [m for m in imported_modules(module) if m.startswith("deepopt_mip.formulation.costmodel")]


def test_workload_modules_import_each_other_without_a_cycle():
    edges = {m: {other for other in WORKLOAD_MODULES if other != m
                 and f"deepopt_mip.formulation.{other}" in imported_modules(m)} for m in WORKLOAD_MODULES}
    assert "networks" not in edges["onnx_import"]  # the loader dispatch (networks) feeds on the importer
    visiting: list[str] = []

    def visit(module: str) -> None:
        assert module not in visiting, f"import cycle: {' -> '.join([*visiting, module])}"
        visiting.append(module)
        for other in edges[module]:
            visit(other)
        visiting.pop()

    for module in WORKLOAD_MODULES:
        visit(module)


def test_cost_model_uses_the_workload_shape_type():
    from deepopt_mip.formulation.costmodel import common
    from deepopt_mip.formulation.layers import LayerShape

    assert common.LayerShape is LayerShape
