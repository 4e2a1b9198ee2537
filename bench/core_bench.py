"""Throughput, latency and memory of the matching core, on seeded workloads.

Every operation is a full command through `Engine.apply`: validated, matched,
settled in the ledger, and reported as events. Run it by hand, never as a test:

    .venv/bin/python -m bench.core_bench            # all workloads, 3 runs each
    .venv/bin/python -m bench.core_bench --ops 50000 --runs 1

It prints one table row per workload: the median operations per second, the
range over the runs, µs per operation, per-operation latency percentiles (from a
separate pass that times each call), and the memory the resting book costs.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass

from bench.peers_adapter import BUYER, SELLER, SYMBOL, CuxEngine
from matching import CancelOrder, Command, Engine, PlaceOrder
from matching.commands import Side


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    commands: list[Command]


def _engine() -> Engine:
    """A market of one buyer and one seller: the same as the peers' adapter."""
    return CuxEngine().engine


def mixed(ops: int, seed: int) -> Workload:
    """70% limits around a random walk, 25% cancels of live orders, 5% markets.

    The same shape as the peers' benchmark: mostly passive orders, a deep book,
    about one limit in ten crossing.
    """
    rng = random.Random(seed)
    commands: list[Command] = []
    live: list[tuple[int, str]] = []
    fair = 100_000
    next_id = 5  # order ids are sequence numbers; four set-up commands come first
    for _ in range(ops):
        if rng.random() < 0.05:
            fair += rng.choice((-1, 1))
        roll = rng.random()
        if roll < 0.25 and live:
            i = rng.randrange(len(live))
            live[i], live[-1] = live[-1], live[i]
            order_id, owner = live.pop()
            commands.append(CancelOrder(owner, order_id))
        else:
            buy = rng.random() < 0.5
            owner = BUYER if buy else SELLER
            side: Side = "buy" if buy else "sell"
            qty = rng.randint(1, 100)
            if roll < 0.30:
                commands.append(
                    PlaceOrder(owner, SYMBOL, side, qty, "market", tif="IOC")
                )
            else:
                offset = int(rng.expovariate(1 / 40)) - 1
                price = fair - offset if buy else fair + offset
                commands.append(PlaceOrder(owner, SYMBOL, side, qty, "limit", price))
                live.append((next_id, owner))
        next_id += 1
    return Workload("mixed", "70% limit, 25% cancel, 5% market", _drop_dead(commands))


def _drop_dead(commands: list[Command]) -> list[Command]:
    """Keep cancels only of orders still open then (fills close some early)."""
    engine = _engine()
    kept: list[Command] = []
    for command in commands:
        if isinstance(command, CancelOrder) and (command.order_id not in engine.orders):
            command = PlaceOrder(BUYER, SYMBOL, "buy", 1, "limit", 1)
        kept.append(command)
        engine.apply(engine.seq + 1, 0, command)
    return kept


def resting(ops: int, seed: int) -> Workload:
    """Limit orders that never cross, on 100 levels a side."""
    rng = random.Random(seed)
    commands: list[Command] = []
    for _ in range(ops):
        buy = rng.random() < 0.5
        side: Side = "buy" if buy else "sell"
        level = rng.randrange(100)
        price = 100_000 - 1 - level if buy else 100_000 + level
        commands.append(
            PlaceOrder(
                BUYER if buy else SELLER,
                SYMBOL,
                side,
                rng.randint(1, 100),
                "limit",
                price,
            )
        )
    return Workload("resting", "limits that never cross", commands)


def sweeping(ops: int, seed: int) -> Workload:
    """Alternating: a resting sell, then a buy that takes it (one fill each)."""
    rng = random.Random(seed)
    commands: list[Command] = []
    for _ in range(ops // 2):
        qty = rng.randint(1, 100)
        price = 100_000 + rng.randrange(10)
        commands.append(PlaceOrder(SELLER, SYMBOL, "sell", qty, "limit", price))
        commands.append(PlaceOrder(BUYER, SYMBOL, "buy", qty, "limit", 100_010))
    return Workload("fills", "every other order fills one maker", commands)


WORKLOADS: dict[str, Callable[[int, int], Workload]] = {
    "mixed": mixed,
    "resting": resting,
    "fills": sweeping,
}


def _run(workload: Workload) -> float:
    engine = _engine()
    apply = engine.apply
    seq = engine.seq
    gc.collect()
    start = time.perf_counter()
    for command in workload.commands:
        seq += 1
        apply(seq, 0, command)
    elapsed = time.perf_counter() - start
    engine.check()
    return len(workload.commands) / elapsed


def _latencies(workload: Workload) -> list[float]:
    engine = _engine()
    apply = engine.apply
    clock = time.perf_counter_ns
    seq = engine.seq
    samples = []
    gc.collect()
    for command in workload.commands:
        seq += 1
        t0 = clock()
        apply(seq, 0, command)
        samples.append(clock() - t0)
    samples.sort()
    return [samples[int(q * (len(samples) - 1))] / 1000 for q in (0.5, 0.99, 0.999)]


def _memory_per_resting_order(ops: int, seed: int) -> float:
    workload = resting(ops, seed)
    engine = _engine()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for command in workload.commands:
        engine.apply(engine.seq + 1, 0, command)
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return (after - before) / len(engine.orders)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)

    print(f"python {sys.version.split()[0]}, {args.ops:,} operations a workload")
    print()
    print(
        "| workload | what | median ops/s | min–max ops/s | µs/op | "
        "p50 / p99 / p99.9 µs |"
    )
    print("|---|---|---:|---:|---:|---:|")
    for make in WORKLOADS.values():
        workload = make(args.ops, args.seed)
        rates = [_run(workload) for _ in range(args.runs)]
        median = statistics.median(rates)
        p50, p99, p999 = _latencies(workload)
        print(
            f"| {workload.name} | {workload.description} | {median:,.0f} | "
            f"{min(rates):,.0f}–{max(rates):,.0f} | {1e6 / median:.2f} | "
            f"{p50:.1f} / {p99:.1f} / {p999:.1f} |"
        )
    per_order = _memory_per_resting_order(min(args.ops, 100_000), args.seed)
    print()
    print(f"memory: {per_order:,.0f} bytes per resting order (tracemalloc)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
