"""Every notebook in notebooks/ executes without error in its small setting (KIT_NOTEBOOK_SMALL=1).

Each notebook is executed from a copy in a temporary folder (the committed file is never touched) by a
fresh "python3" kernel with the repository root as its working directory; the executed copy is written
beside it for inspection. The walkthrough's printed results are then checked against facts of the
analytic backbone.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
TIMEOUT_S = 300  # per cell; the small setting of the walkthrough runs in well under a minute in all


def _outputs(notebook, output_type: str) -> list[dict]:
    return [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.outputs
            if o.output_type == output_type]  # fmt: skip


def _text(notebook) -> str:
    """Everything the notebook printed to stdout."""
    return "".join(o.text for o in _outputs(notebook, "stream") if o.name == "stdout")


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
    """Notebook path -> the executed notebook; each notebook runs once per test session."""
    nbclient = pytest.importorskip("nbclient", reason="executing notebooks needs the dev extra (nbclient)")
    import nbformat

    cache = {}

    def run(path: Path):
        if path not in cache:
            folder = tmp_path_factory.mktemp(path.stem)
            copy = folder / path.name
            shutil.copyfile(path, copy)
            notebook = nbformat.read(copy, as_version=4)
            client = nbclient.NotebookClient(
                notebook,
                timeout=TIMEOUT_S,
                kernel_name="python3",
                resources={"metadata": {"path": str(ROOT)}},  # the kernel's working directory
            )
            with pytest.MonkeyPatch.context() as mp:  # the kernel inherits this process's environment
                mp.setenv("KIT_NOTEBOOK_SMALL", "1")
                mp.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
                client.execute()  # raises CellExecutionError, with the cell and its traceback, on an error
            nbformat.write(notebook, folder / f"{path.stem}.executed.ipynb")
            cache[path] = notebook
        return cache[path]

    return run


def test_there_is_a_notebook():
    assert NOTEBOOKS, "notebooks/ holds no .ipynb"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_notebook_has_no_outputs(path):
    """Notebooks are committed cleared: their results come from running them, not from the file."""
    notebook = json.loads(path.read_text(encoding="utf-8"))
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"
    for k, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None, f"cell {k} has outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_executes_without_error(executed, path):
    notebook = executed(path)
    assert not _outputs(notebook, "error")
    assert all(c.execution_count for c in notebook.cells if c.cell_type == "code")


def test_walkthrough_results(executed):
    # The walkthrough asserts the facts of the exact backbone itself (a failing assert fails the execution
    # test above); here: it ran in the small setting, checked the palindrome and drew every figure.
    notebook = executed(ROOT / "notebooks" / "walkthrough.ipynb")
    text = _text(notebook)
    assert text.startswith("small setting")
    assert "FNR: max |clip 1 - clip 0 reversed|" in text
    images = [o for o in _outputs(notebook, "display_data") if "image/png" in o.data]
    assert len(images) >= 4  # autocorrelation, bars, contact sheets, centroid tracks
