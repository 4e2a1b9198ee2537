"""``cux replay`` as a user runs it: a real process on a real journal."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from journal_flow import Flow, flip_byte, frame_offsets, segments, write_journal

from matching.config import MarketConfig, ResourceClass

REPO = Path(__file__).resolve().parents[2]
CUX = Path(sys.executable).with_name("cux")


def cux(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cux`` script, or ``python -m exchange`` without one."""
    command = [str(CUX)] if CUX.exists() else [sys.executable, "-m", "exchange"]
    return subprocess.run(
        [*command, *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def market_day(folder: Path) -> Flow:
    flow = Flow(seed=21)
    write_journal(
        folder,
        [flow.opening(), *(flow.take(40) for _ in range(10))],
        segment_bytes=8000,
    )
    return flow


def test_replay_prints_last_seq_records_and_the_state_hash_of_the_market(
    tmp_path: Path,
) -> None:
    flow = market_day(tmp_path)
    engine = flow.engine

    result = cux("replay", tmp_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"journal: {tmp_path / 'journal'} (")
    assert lines[1].startswith(f"last seq: {engine.seq} at 2025-01-01T00:00:")
    assert lines[2] == f"records: {engine.seq}"
    assert lines[3] == f"state hash: {engine.state_hash()}"
    assert lines[4] == (
        f"summary: {len(engine.ledger.names)} accounts, {len(engine.orders)} open "
        f"orders, {engine.trade_seq} trades, 2 instruments"
    )


def test_replay_of_the_journal_folder_itself_prints_json_on_request(
    tmp_path: Path,
) -> None:
    flow = market_day(tmp_path)

    result = cux("replay", tmp_path / "journal", "--json")

    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["state_hash"] == flow.engine.state_hash()
    assert report["last_seq"] == report["records"] == flow.engine.seq
    assert report["last_ts"] == flow.engine.now
    assert report["segments"] == len(segments(tmp_path)) > 1
    assert report["trades"] == flow.engine.trade_seq


def test_replay_of_a_corrupt_journal_exits_2_with_one_line_naming_file_and_offset(
    tmp_path: Path,
) -> None:
    market_day(tmp_path)
    segment = segments(tmp_path)[1]
    frame = frame_offsets(segment)[5]
    flip_byte(segment, frame + 12)

    result = cux("replay", tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"cux replay: journal corrupt: {segment} at byte {frame}: "
        "the record's CRC does not match\n"
    )


def test_replay_of_a_missing_journal_exits_2_with_one_line(tmp_path: Path) -> None:
    result = cux("replay", tmp_path / "nowhere")

    assert result.returncode == 2
    assert result.stderr == (
        f"cux replay: no journal at {tmp_path / 'nowhere'}: the folder does not exist\n"
    )


def test_replay_of_an_empty_data_folder_exits_2(tmp_path: Path) -> None:
    (tmp_path / "journal").mkdir()

    result = cux("replay", tmp_path)

    assert result.returncode == 2
    assert "has no segment files" in result.stderr
    assert len(result.stderr.splitlines()) == 1


def test_replay_of_a_journal_of_one_empty_segment_exits_2_with_one_line(
    tmp_path: Path,
) -> None:
    (tmp_path / "journal").mkdir()
    segment = tmp_path / "journal" / "00000000000000000001.seg"
    segment.touch()

    result = cux("replay", tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"cux replay: the journal at {tmp_path / 'journal'} holds no complete "
        f"segment: {segment.name}: the header is cut short (0 bytes)\n"
    )


def test_replay_warns_about_a_torn_tail_and_reports_the_records_before_it(
    tmp_path: Path,
) -> None:
    flow = Flow(seed=22)
    write_journal(tmp_path, [flow.opening(), flow.take(30)])
    segment = segments(tmp_path)[-1]
    with segment.open("r+b") as file:
        file.truncate(segment.stat().st_size - 5)

    result = cux("replay", tmp_path, "--json")

    assert result.returncode == 0
    assert json.loads(result.stdout)["last_seq"] == flow.engine.seq - 1
    assert "ignoring a torn tail" in result.stderr


def test_replay_of_a_journal_whose_market_is_now_refused_exits_2_with_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An older cux took a lease of 10^23 s; its journal is refused, not a
    traceback from a state hash that cannot be encoded."""
    config = MarketConfig(
        classes=[ResourceClass("cpu", lot_cu=100, tick=1, lease_seconds=10**23)]
    )
    monkeypatch.setattr("matching.engine.load_market", lambda raw: config)
    flow = Flow(seed=3, config=config)
    write_journal(tmp_path, [flow.opening()], config=config)

    result = cux("replay", tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("cux replay: ")
    assert result.stderr.endswith(
        "Expected `int` <= 31622400 - at `$.config.classes[0].lease_seconds`\n"
    )
