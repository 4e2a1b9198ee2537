"""The market data benchmark is not timed in tests, but it must keep working."""

from bench.marketdata_bench import main


def test_marketdata_bench_runs_on_a_small_workload(capsys: object) -> None:
    assert main(["--ops", "2000", "--runs", "1"]) == 0
