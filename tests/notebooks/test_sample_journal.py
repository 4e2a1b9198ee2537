"""The sample journal shipped in notebooks/data/sample, which the replay notebook
opens when ``cux demo`` wrote none, the script that writes it, and the example
of docs/notebooks.md that reads it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from exchange.analysis import open_market
from exchange.analysis_compute import leases
from exchange.analysis_jobs import jobs
from exchange.analysis_market import auctions
from exchange.journal import read_records

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "notebooks" / "data" / "sample"
SCRIPT = ROOT / "notebooks" / "make_sample_journal.py"


def test_the_shipped_sample_replays_meets_its_snapshot_and_has_every_kind_of_data() -> (
    None
):
    replay = open_market(SAMPLE)

    replay.verify()
    assert [check.ok for check in replay.hash_checks] == [True]
    kinds = {a.kind for symbol in replay.symbols() for a in auctions(replay, symbol)}
    assert kinds == {"opening", "closing"}
    found = leases(replay)
    assert {lease.state for lease in found} == {"used_up", "expired"}
    assert any(lease.symbol != "cpu-SPOT" for lease in found)  # the window's
    assert {job.status for job in jobs(replay)} == {"done"}
    assert sum(p.stat().st_size for p in SAMPLE.rglob("*") if p.is_file()) < 2**20


def test_the_shipped_sample_holds_the_records_its_script_writes(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "sample")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    assert list(read_records(tmp_path / "sample")) == list(read_records(SAMPLE))


def test_the_python_example_in_docs_notebooks_runs_on_the_sample(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    text = (ROOT / "docs" / "notebooks.md").read_text(encoding="utf-8")
    (block,) = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    monkeypatch.chdir(ROOT)
    Path("/tmp/prices.png").unlink(missing_ok=True)  # where the example saves

    exec(compile(block, "docs/notebooks.md", "exec"), {"print": lambda *a: None})

    assert Path("/tmp/prices.png").stat().st_size > 0
