"""The notebooks in notebooks/: stored clean, built only on the pipeline's own code, and run top to
bottom on the session's small world, so a notebook that no longer works fails the suite."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb"))
# what a notebook may import from this project: the features, the models and the loading API
ALLOWED_FIRST_PARTY = ("features", "models", "pipelines.notebook")
FIRST_PARTY = ("features", "models", "pipelines", "demo", "benchmarks")


def _code(path: Path) -> list[str]:
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"]


def test_there_are_the_three_notebooks():
    assert [p.stem for p in NOTEBOOKS] == [
        "01_touchpoint_journeys",
        "02_model_and_drivers",
        "03_retention_list",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_are_stored_without_outputs(path: Path):
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, (
                f"{path.name} is stored with outputs: clear them before committing "
                "(in JupyterLab: Edit > Clear Outputs of All Cells)"
            )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebooks_import_the_pipeline_instead_of_copying_it(path: Path):
    """No function or class of its own, and from this project only what ALLOWED_FIRST_PARTY
    holds: the logic a notebook shows is the pipeline's."""
    for source in _code(path):
        for node in ast.walk(ast.parse(source)):
            assert not isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef), (
                f"{path.name} defines {node.name}: put it in features/ or models/ and import it"
            )
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                if name.split(".")[0] in FIRST_PARTY:
                    assert name.startswith(ALLOWED_FIRST_PARTY), f"{path.name} imports {name}"


def _with_parameters(path: Path, values: dict[str, str]) -> nbformat.NotebookNode:
    """The notebook with a cell setting `values` after its "parameters" cell (papermill's way)."""
    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", ()))
    assignments = "\n".join(f"{name} = {value!r}" for name, value in values.items())
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(assignments))
    return nb


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_top_to_bottom(path: Path, pipeline_run, tmp_path: Path):
    """Executed in a kernel of this environment; a failing cell raises CellExecutionError.
    NOTEBOOKS_EXECUTED_TO=<folder> keeps the executed copies (to render them for a look)."""
    nb = _with_parameters(
        path,
        {
            "DATA_ROOT": str(pipeline_run.data_root),
            "TRACKING_URI": pipeline_run.tracking_uri,
            **({"EXPORT_TO": str(tmp_path / "exports")} if "EXPORT_TO" in _code(path)[0] else {}),
        },
    )
    NotebookClient(nb, timeout=300, resources={"metadata": {"path": str(tmp_path)}}).execute()
    images = sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
    )
    assert images >= 2, f"{path.name} drew {images} plots"
    if keep := os.environ.get("NOTEBOOKS_EXECUTED_TO"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, Path(keep) / path.name)
    if "EXPORT_TO" in _code(path)[0]:
        exported = sorted(p.suffix for p in (tmp_path / "exports").iterdir())
        assert exported == [".csv", ".parquet", ".xlsx"]
