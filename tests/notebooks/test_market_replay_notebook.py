"""notebooks/market_replay.ipynb, executed headless with nbclient on a journal
that a real `cux serve` wrote in this test run (see `replay_harness`).

The notebook reads its parameters from the environment (``CUX_JOURNAL``,
``CUX_STATE_HASH``), which the kernel inherits from this process.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError
from replay_harness import ServerJournal, server_journal

__all__ = ["server_journal"]  # the fixture, imported for pytest

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
NOTEBOOK = NOTEBOOKS / "market_replay.ipynb"
FIGURES = 6  # prices, depth, spread, auctions, providers, jobs


def execute(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """The notebook after running it, from its own folder, with ``env`` set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    notebook = nbformat.read(NOTEBOOK, as_version=4)  # type: ignore[no-untyped-call]
    client = NotebookClient(
        notebook,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    client.execute()
    return notebook


def outputs(notebook: Any) -> list[Any]:
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    return [out for cell in code for out in cell.outputs]


def test_the_notebook_replays_a_server_journal_checks_its_hash_and_draws_figures(
    monkeypatch: pytest.MonkeyPatch, server_journal: ServerJournal
) -> None:
    notebook = execute(
        monkeypatch,
        CUX_JOURNAL=str(server_journal.data),
        CUX_STATE_HASH=server_journal.state_hash,
    )

    found = outputs(notebook)
    assert [out for out in found if out.output_type == "error"] == []
    figures = [out for out in found if "image/png" in out.get("data", {})]
    assert len(figures) == FIGURES
    texts = "\n".join(out.get("data", {}).get("text/plain", "") for out in found)
    assert f"'state_hash': '{server_journal.state_hash}'" in texts
    assert "'verified': True" in texts
    assert f"(expected): {server_journal.state_hash} ok" in texts
    assert str(server_journal.data / "journal") in texts


def test_the_notebook_stops_at_the_check_when_the_state_hash_differs(
    monkeypatch: pytest.MonkeyPatch, server_journal: ServerJournal
) -> None:
    with pytest.raises(CellExecutionError, match="StateHashMismatch"):
        execute(
            monkeypatch, CUX_JOURNAL=str(server_journal.data), CUX_STATE_HASH="0" * 64
        )
