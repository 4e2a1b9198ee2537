"""The benchmarks are not timed in tests, but they must keep working."""

from bench.auction_bench import main as auction_bench_main
from bench.core_bench import main as core_bench_main
from bench.peers_adapter import CuxEngine


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
