"""The agents' load benchmark is not timed in tests, but it must keep working:
a real ``cux serve``, makers and trading-only consumers, for two seconds."""

import asyncio

from bench.agents_bench import bench, parser, report


def test_agents_bench_runs_makers_and_consumers_against_a_real_server() -> None:
    args = parser().parse_args(
        ["--makers", "1", "--consumers", "2", "--rate", "5", "--duration", "2"]
    )

    figures = asyncio.run(bench(args))

    assert (figures["makers"], figures["consumers"]) == (1, 2)
    assert figures["maker_orders"] >= 2  # its bid and its ask, at least
    assert figures["consumer_orders"] > 0
    assert figures["consumer_accepted"] == figures["consumer_orders"]
    assert figures["refused"] == {}
    # Every order and amend was timed, and the maker's cancel on stopping.
    timed = figures["maker_orders"] + figures["consumer_orders"]
    assert figures["requests"] > timed
    assert 0 < figures["ack_ms_p50"] <= figures["ack_ms_max"]
    assert figures["trades"] > 0  # consumer c0 pays above the maker's ask
    assert figures["jobs_done"] == 0  # order mode: no jobs
    assert "| requests/s | trades/s | jobs done |" in report(figures)
