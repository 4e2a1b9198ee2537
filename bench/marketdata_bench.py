"""Throughput of the market data layer on a busy book.

The workload is the core benchmark's ``mixed`` one (70% limits around a random
walk, 25% cancels, 5% market orders; a few hundred levels a side). Every
command goes through `Engine.apply` and then `MarketData.apply`, one
millisecond apart, with the full book channel and every depth channel open,
so each change is published up to six times (full, 10, 25, 50, 100, 500) and
trades, candles, orders, fills and balances are encoded as the server would.
Only the time spent in `MarketData.apply` is counted for its own figures.

    .venv/bin/python -m bench.marketdata_bench             # 200,000 commands, 3 runs
    .venv/bin/python -m bench.marketdata_bench --ops 20000 --runs 1

It prints, per variant, the publications per second and the µs per command of
`MarketData.apply` alone, its p50 / p99 per command, and the commands per
second of the engine and market data together.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from dataclasses import dataclass

from bench.core_bench import mixed
from bench.peers_adapter import SYMBOL, CuxEngine
from exchange.marketdata import BOOK_DEPTHS, MarketData
from matching import Command

T0 = 1_700_000_000_000_000_000
"""The first command's timestamp, ns since the epoch."""
STEP = 1_000_000
"""1 ms between commands, so that the 1 s candles roll over."""


@dataclass(frozen=True)
class Result:
    publications: int
    md_seconds: float
    total_seconds: float
    p50_us: float
    p99_us: float
    commands: int

    @property
    def publications_per_second(self) -> float:
        return self.publications / self.md_seconds


def run(commands: list[Command], depths: tuple[int | None, ...]) -> Result:
    """Apply ``commands`` to a fresh engine and market data with the book
    channels of ``depths`` open; time `MarketData.apply` alone."""
    engine = CuxEngine().engine
    md = MarketData(engine)
    for depth in depths:
        md.book_snapshot(SYMBOL, depth)
    apply, md_apply, clock = engine.apply, md.apply, time.perf_counter_ns
    seq, ts = engine.seq, T0
    samples: list[int] = []
    publications = 0
    gc.collect()
    start = time.perf_counter()
    for command in commands:
        seq += 1
        ts += STEP
        events = apply(seq, ts, command)
        t0 = clock()
        publications += len(md_apply(events, ts))
        samples.append(clock() - t0)
    total = time.perf_counter() - start
    samples.sort()
    return Result(
        publications,
        sum(samples) / 1e9,
        total,
        samples[len(samples) // 2] / 1000,
        samples[int(0.99 * (len(samples) - 1))] / 1000,
        len(commands),
    )


VARIANTS: dict[str, tuple[int | None, ...]] = {
    "every depth": (None, *BOOK_DEPTHS),
    "full book only": (None,),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    commands = mixed(args.ops, args.seed).commands
    print(f"python {sys.version.split()[0]}, {len(commands):,} commands (mixed)")
    print()
    print(
        "| book channels | publications/command | median publications/s | "
        "min–max publications/s | µs/command | p50 / p99 µs | engine + md commands/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, depths in VARIANTS.items():
        results = [run(commands, depths) for _ in range(args.runs)]
        rates = [r.publications_per_second for r in results]
        median = statistics.median(rates)
        mid = sorted(results, key=lambda r: r.publications_per_second)[
            len(results) // 2
        ]
        print(
            f"| {name} | {mid.publications / mid.commands:.2f} | {median:,.0f} | "
            f"{min(rates):,.0f}–{max(rates):,.0f} | "
            f"{mid.md_seconds / mid.commands * 1e6:.2f} | "
            f"{mid.p50_us:.1f} / {mid.p99_us:.1f} | "
            f"{mid.commands / mid.total_seconds:,.0f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
