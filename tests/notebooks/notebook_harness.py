"""notebooks/market_replay.ipynb run headless with nbclient, for the tests that
give it a journal: those of `tests/notebooks` and the demo run's
(`tests/demo/test_demo_run.py`).

The notebook reads its parameters from the environment (``CUX_JOURNAL``,
``CUX_STATE_HASH``), which the kernel inherits from the test's process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "market_replay.ipynb"
FIGURES = 6  # prices, depth, spread, auctions, providers, jobs


def run_notebook(folder: Path = NOTEBOOKS) -> Any:
    """The notebook after running every cell with ``folder`` as the kernel's
    working folder (where it looks for ``cux-demo/`` when no journal is named).

    Raises:
        nbclient.exceptions.CellExecutionError: a cell raised.
    """
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(folder)}},
    )
    client.execute()
    return notebook


def outputs(notebook: Any) -> list[Any]:
    """Every output of every code cell, in order."""
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return [out for cell in code for out in cell.outputs]


def errors(found: list[Any]) -> list[Any]:
    return [out for out in found if out.output_type == "error"]


def figures(found: list[Any]) -> list[str]:
    """The text of each figure drawn (``<Figure size ... with N Axes>``)."""
    return [
        out.data["text/plain"] for out in found if "image/png" in out.get("data", {})
    ]


def texts(found: list[Any]) -> str:
    """The plain text of every output, one after the other."""
    return "\n".join(out.get("data", {}).get("text/plain", "") for out in found)
