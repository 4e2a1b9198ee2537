"""``cux node``: load the model, measure capacity, run the daemon until SIGTERM.

Torch and the model are imported only when the command runs, so ``cux --help``
stays fast.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import re
import signal
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_node_command"]

_NODE_ID = re.compile(r"^[A-Za-z0-9_:-]{1,48}$")


def add_node_command(commands: Any) -> None:
    """Add ``node`` to the ``cux`` subcommands (an argparse subparsers action)."""
    node = commands.add_parser(
        "node",
        help="run a provider node: measure, register, quote capacity, run jobs",
        description="Load all-MiniLM-L6-v2, measure this machine's capacity in "
        "CU/s, register it with the exchange and quote it on the class's spot "
        "book and its trading futures windows at a price from its cost and "
        "utilisation, and run the shards of jobs the exchange dispatches to it. "
        "Reconnects with backoff; SIGTERM or Ctrl-C cancels the quotes, finishes "
        "the shard running, hands the others back and exits.",
    )
    node.add_argument(
        "--exchange", required=True, metavar="URL", help="ws://HOST:PORT/ws"
    )
    node.add_argument("--key", required=True, help="the provider account's key")
    node.add_argument("--secret", required=True, help="the account's secret")
    node.add_argument(
        "--class",
        dest="resource_class",
        default="cpu",
        metavar="NAME",
        help="resource class to sell (default: %(default)s)",
    )
    node.add_argument(
        "--cost-per-hour",
        default="0.10",
        metavar="USD",
        help="what an hour of this machine costs, USD; 1 credit = 1 USD "
        "(default: %(default)s)",
    )
    node.add_argument(
        "--price-series",
        type=Path,
        default=None,
        metavar="FILE",
        help="take the cost per hour from a GPU price series instead (JSON "
        "lines with price_stats, USD per GPU-hour; the median of the medians)",
    )
    node.add_argument(
        "--node-id",
        default="node-1",
        metavar="ID",
        help="this node's name within the account (default: %(default)s)",
    )
    node.add_argument(
        "--lot-cu", type=int, default=100, help="CU per lot (default: %(default)s)"
    )
    node.add_argument(
        "--tick", type=int, default=1, help="the class's tick, µcr (default: 1)"
    )
    node.add_argument(
        "--probe-seconds",
        type=float,
        default=3.0,
        metavar="S",
        help="time box of the capacity probe, seconds (default: %(default)s)",
    )
    node.add_argument(
        "--max-cu-per-second",
        type=float,
        default=None,
        metavar="CU",
        help="register at most this capacity, CU/s, whatever the probe measured "
        "(to keep some of the machine for other work; default: all of it)",
    )
    node.add_argument(
        "--heartbeat-seconds",
        type=float,
        default=5.0,
        metavar="S",
        help="seconds between two pings (default: %(default)s)",
    )
    node.add_argument(
        "--seed", type=int, default=0, help="seed of the probe order and jitter"
    )
    node.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default: %(default)s)",
    )
    node.set_defaults(run=_node)


def _node(args: argparse.Namespace) -> int:
    from providers.pricing import micro_usd, usd_per_hour_from_series

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        usd = args.cost_per_hour
        if args.price_series is not None:
            usd = usd_per_hour_from_series(args.price_series)
        cost = micro_usd(usd)
        if not _NODE_ID.match(args.node_id):
            raise ValueError(f"--node-id must match {_NODE_ID.pattern}")
        if args.lot_cu < 1 or args.tick < 1 or args.probe_seconds <= 0:
            raise ValueError("--lot-cu, --tick and --probe-seconds must be positive")
        if args.max_cu_per_second is not None and not (
            0.001 <= args.max_cu_per_second <= 1e9
        ):
            raise ValueError("--max-cu-per-second must be from 0.001 to 10^9")
    except (OSError, ValueError) as exc:
        print(f"cux node: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, cost))


def model_runner(model: Any) -> Any:
    """The function that runs a dispatched shard on ``model``."""
    from providers.runtime import run_job
    from providers.shards import ShardOutcome

    def run(texts: list[str], tier: str, budget: Any) -> ShardOutcome:
        result = run_job(model, texts, tier, budget)
        return ShardOutcome(result.embeddings.numpy(), result.report)

    return run


async def _run(args: argparse.Namespace, cost: int) -> int:
    from providers.capacity import measure_capacity
    from providers.daemon import Node, NodeConfig, RequestRefused, published_tiers
    from providers.model import load_model
    from providers.profile import load_profile

    log = logging.getLogger("cux.node")
    model = await asyncio.to_thread(load_model)
    milli = await asyncio.to_thread(
        measure_capacity, model, args.probe_seconds, args.seed
    )
    if args.max_cu_per_second is not None:
        milli = min(milli, round(args.max_cu_per_second * 1000))
    config = NodeConfig(
        url=args.exchange,
        key=args.key,
        secret=args.secret,
        node_id=args.node_id,
        resource_class=args.resource_class,
        cost_micro_usd_per_hour=cost,
        lot_cu=args.lot_cu,
        tick=args.tick,
        heartbeat_seconds=args.heartbeat_seconds,
        seed=args.seed,
    )
    node = Node(config, milli, published_tiers(load_profile()), run=model_runner(model))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, node.stop)
    log.info(
        "node %s: reservation %d µcr per lot of %d CU",
        args.node_id,
        node.pricing().reservation,
        args.lot_cu,
    )
    try:
        await node.run()
    except RequestRefused as exc:
        print(f"cux node: the exchange refused the node: {exc}", file=sys.stderr)
        return 1
    return 0
