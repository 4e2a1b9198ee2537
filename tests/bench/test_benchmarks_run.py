"""The benchmarks are not timed in tests, but they must keep working."""

from pathlib import Path

import pytest

from bench.auction_bench import main as auction_bench_main
from bench.core_bench import main as core_bench_main
from bench.peers_adapter import CuxEngine
from bench.server_bench import main as server_bench_main
from bench.server_bench import summarise_profile


def test_peers_adapter_matches_and_reports_what_rests() -> None:
    engine = CuxEngine()

    engine.add_limit(1, 0, 100, 5)  # buy 5 @ 100 rests
    engine.add_limit(2, 1, 101, 3)  # sell 3 @ 101 rests
    engine.add_limit(3, 1, 100, 2)  # sell 2 @ 100 takes 2 of the bid
    engine.market(4, 0, 1)  # market buy 1 takes 1 of the ask
    engine.cancel(2)  # the ask's last 2 go

    assert engine.resting() == (3, 0)
    assert engine.engine.trade_seq == 2
    engine.engine.check()


def test_core_bench_runs_on_a_small_workload(capsys: object) -> None:
    assert core_bench_main(["--ops", "2000", "--runs", "1"]) == 0


def test_auction_bench_runs_on_a_small_book(capsys: object) -> None:
    # --check verifies the engine's invariants after the uncross; the bench
    # itself checks that the engine and the bare book agree on price and volume.
    argv = ["--orders", "3000", "--levels", "200", "--runs", "1", "--check"]
    assert auction_bench_main(argv) == 0
    assert auction_bench_main([*argv, "--indicatives", "--profile"]) == 0


def test_server_bench_runs_against_a_real_server(
    capsys: pytest.CaptureFixture[str],
) -> None:
    argv = [
        *("--conns", "2", "--procs", "1", "--rates", "300", "--duration", "1"),
        *("--warmup", "0", "--grace", "5"),
        *("--ramp-start", "200", "--ramp-step", "200", "--ramp-max", "400"),
        *("--ramp-duration", "0.5", "--max-p99-ms", "10000"),
        *("--subscribers", "3", "--sub-procs", "1"),
        *("--fanout-rates", "200", "--fanout-duration", "1"),
    ]
    assert server_bench_main(argv) == 0
    out = capsys.readouterr().out
    assert "| 300 |" in out
    assert "highest sustained rate:" in out  # its value depends on the machine
    assert "| 200 | " in out  # the fan-out row: its rate,
    assert " | 3 | " in out  # and its subscribers


def test_server_bench_summarises_a_py_spy_profile(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "thread (1): MainThread;run (asyncio/runners.py:190);"
        "apply (matching/engine.py:300) 3\n"
        "thread (1): MainThread;run (asyncio/runners.py:190);"
        "_write_websocket_frame (aiohttp/_websocket/writer.py:150) 1\n",
        encoding="utf-8",
    )
    table = summarise_profile(raw)
    assert "| engine (matching/) | 75.0% |" in table
    assert "| websocket send: frame build and socket write | 25.0% |" in table


def test_dispatch_bench_runs_jobs_on_two_real_nodes(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from bench.dispatch_bench import main as dispatch_bench_main

    assert (
        dispatch_bench_main(["--jobs", "2", "--inputs", "2", "--concurrency", "2"]) == 0
    )
    out = capsys.readouterr().out
    assert "1 at a time" in out
    assert "2 at a time" in out
