"""notebooks/market_replay.ipynb, executed headless with nbclient on journals
that a real `cux serve` wrote in this test run: a trading flow on ``cpu-SPOT``
(`replay_harness`) and a real job that it dispatched to a real `cux node`
(`job_harness`), whose provider and job figures must show that job.

The notebook reads its parameters from the environment (``CUX_JOURNAL``,
``CUX_STATE_HASH``), which the kernel inherits from this process; the demo's
own journal is given to it in ``tests/demo/test_demo_run.py``.
"""

from __future__ import annotations

from typing import Any

import pytest
from job_harness import JobJournal, job_journal
from nbclient.exceptions import CellExecutionError
from notebook_harness import FIGURES, errors, figures, outputs, run_notebook, texts
from replay_harness import ServerJournal, server_journal

from exchange.analysis_compute import FLOPS_PER_CU

__all__ = ["job_journal", "server_journal"]  # the fixtures, imported for pytest


def execute(monkeypatch: pytest.MonkeyPatch, **env: str) -> Any:
    """The notebook after running it, from its own folder, with ``env`` set."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return run_notebook()


def test_the_notebook_replays_a_server_journal_checks_its_hash_and_draws_figures(
    monkeypatch: pytest.MonkeyPatch, server_journal: ServerJournal
) -> None:
    notebook = execute(
        monkeypatch,
        CUX_JOURNAL=str(server_journal.data),
        CUX_STATE_HASH=server_journal.state_hash,
    )

    found = outputs(notebook)
    assert errors(found) == []
    assert len(figures(found)) == FIGURES
    text = texts(found)
    assert f"'state_hash': '{server_journal.state_hash}'" in text
    assert "'verified': True" in text
    assert f"(expected): {server_journal.state_hash} ok" in text
    assert str(server_journal.data / "journal") in text


def test_the_notebook_stops_at_the_check_when_the_state_hash_differs(
    monkeypatch: pytest.MonkeyPatch, server_journal: ServerJournal
) -> None:
    with pytest.raises(CellExecutionError, match="StateHashMismatch"):
        execute(
            monkeypatch, CUX_JOURNAL=str(server_journal.data), CUX_STATE_HASH="0" * 64
        )


def test_the_notebook_plots_the_provider_and_the_job_of_a_journal_with_a_real_job(
    monkeypatch: pytest.MonkeyPatch, job_journal: JobJournal
) -> None:
    job = job_journal.job
    assert job["status"] == "done", job_journal.logs

    notebook = execute(
        monkeypatch,
        CUX_JOURNAL=str(job_journal.data),
        CUX_STATE_HASH=job_journal.state_hash,
    )

    found = outputs(notebook)
    assert errors(found) == []
    drawn = figures(found)
    # An empty figure is one axis of text ("no jobs in this journal"); the
    # providers' has four panels, the jobs' two.
    assert len(drawn) == FIGURES
    assert drawn[-2:] == [
        "<Figure size 1000x700 with 4 Axes>",
        "<Figure size 1000x500 with 2 Axes>",
    ]
    text = texts(found)
    assert f"(expected): {job_journal.state_hash} ok" in text
    assert "account='p1'" in text
    assert f"used_flops={job['flops']}" in text
    cu, full = job["flops"] / FLOPS_PER_CU, job["full_flops"] / FLOPS_PER_CU
    assert (
        f"all: 1 jobs (1 done), 24 inputs, {cu:,.1f} CU used of {full:,.1f} at "
        "full depth: 50.0% saved"
    ) in text
