"""``python -m clients.agents``: run market makers and consumer agents against
a running exchange, until ``--duration`` passes, every consumer's ``--jobs``
are done, or Ctrl-C / SIGTERM; then print what each did as JSON.

See ``docs/agents.md`` for the options and an example session.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import signal
import sys
from collections.abc import Sequence

from clients.agents.consumer import ConsumerConfig
from clients.agents.maker import MakerConfig
from clients.agents.prices import GPUS, LotPricer, load_gpu_prices
from clients.agents.run import Credentials, run_agents, willingness


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m clients.agents",
        description="Run market makers and consumer agents against a cux server.",
    )
    p.add_argument("--url", default="ws://127.0.0.1:8700/ws", help="the server")
    p.add_argument(
        "--maker",
        action="append",
        default=[],
        type=Credentials.parse,
        metavar="KEY[:SECRET]",
        help="run a market maker as this account (a provider); repeat for more",
    )
    p.add_argument(
        "--consumer",
        action="append",
        default=[],
        type=Credentials.parse,
        metavar="KEY[:SECRET]",
        help="run a consumer agent as this account; repeat for more",
    )
    market = p.add_argument_group("the instrument and its prices")
    market.add_argument("--symbol", default="cpu-SPOT")
    market.add_argument("--lot-cu", type=int, default=100, help="CU per lot")
    market.add_argument("--tick", type=int, default=1, help="µcr")
    market.add_argument("--gpu", default="H100_80GB_SXM5", choices=sorted(GPUS))
    market.add_argument("--statistic", default="median")
    market.add_argument(
        "--cu-per-second",
        type=float,
        default=None,
        help="price a lot at this throughput, CU/s (default: the GPU's assumed "
        "rate; give the nodes' own for CPU nodes)",
    )
    market.add_argument(
        "--speed",
        type=float,
        default=1800.0,
        help="seconds of the price series per second (default: %(default)s, "
        "half an hour a second)",
    )
    market.add_argument("--start-offset", type=float, default=0.0, help="seconds")
    maker = p.add_argument_group("market makers")
    maker.add_argument("--size", type=int, default=10, help="lots a side")
    maker.add_argument("--spread-bps", type=int, default=200)
    maker.add_argument("--refresh", type=float, default=1.0, help="seconds")
    consumer = p.add_argument_group("consumers")
    consumer.add_argument("--rate", type=float, default=1.0, help="jobs a second")
    consumer.add_argument("--inputs-min", type=int, default=1)
    consumer.add_argument("--inputs-max", type=int, default=8)
    consumer.add_argument("--tier", default="exact")
    consumer.add_argument("--willingness-bps", type=int, default=10_000)
    consumer.add_argument(
        "--willingness-spread-bps",
        type=int,
        default=1_000,
        help="each consumer's willingness is drawn from the center ± this",
    )
    consumer.add_argument("--mode", choices=("job", "order"), default="job")
    consumer.add_argument("--jobs", type=int, default=None, help="per consumer")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--duration", type=float, default=None, help="seconds")
    p.add_argument("--log-level", default="WARNING")
    return p


Makers = list[tuple[Credentials, MakerConfig]]
Consumers = list[tuple[Credentials, ConsumerConfig]]


def configs(args: argparse.Namespace) -> tuple[Makers, Consumers]:
    """The agents the arguments ask for, each with a seed of its own."""
    makers = [
        (
            who,
            MakerConfig(
                name=f"mm{i}",
                symbol=args.symbol,
                tick=args.tick,
                size=args.size,
                spread_bps=args.spread_bps,
                refresh_seconds=args.refresh,
                speed=args.speed,
                start_offset=args.start_offset,
            ),
        )
        for i, who in enumerate(args.maker)
    ]
    factors = willingness(
        len(args.consumer),
        args.willingness_bps,
        args.willingness_spread_bps,
        args.seed,
    )
    consumers = [
        (
            who,
            ConsumerConfig(
                name=f"consumer{i}",
                symbol=args.symbol,
                lot_cu=args.lot_cu,
                tick=args.tick,
                rate_per_second=args.rate,
                inputs_min=args.inputs_min,
                inputs_max=args.inputs_max,
                tier=args.tier,
                willingness_bps=factor,
                speed=args.speed,
                start_offset=args.start_offset,
                seed=args.seed + 1 + i,
                max_jobs=args.jobs,
                mode=args.mode,
            ),
        )
        for i, (who, factor) in enumerate(zip(args.consumer, factors, strict=True))
    ]
    return makers, consumers


async def run(args: argparse.Namespace) -> dict[str, object]:
    milli = None if args.cu_per_second is None else round(args.cu_per_second * 1000)
    pricer = LotPricer(
        load_gpu_prices(),
        gpu=args.gpu,
        statistic=args.statistic,
        lot_cu=args.lot_cu,
        tick=args.tick,
        cu_per_second_milli=milli,
    )
    makers, consumers = configs(args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    if args.duration is not None:
        loop.call_later(args.duration, stop.set)
    return await run_agents(
        args.url, pricer, makers=makers, consumers=consumers, stop=stop
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if not args.maker and not args.consumer:
        parser().error("give at least one --maker or --consumer")
    logging.basicConfig(level=args.log_level, format="%(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        report = asyncio.run(run(args))
        json.dump(report, sys.stdout, indent=2)
        print()
        return 0
    return 130


if __name__ == "__main__":
    raise SystemExit(main())
