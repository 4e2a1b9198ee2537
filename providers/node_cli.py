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
import socket
import sys
from typing import Any
from urllib.parse import urlsplit

from providers.pricing import DEFAULT_GPU, SHIPPED

__all__ = ["add_node_command"]

_NODE_ID = re.compile(r"^[A-Za-z0-9_:-]{1,48}$")
DEFAULT_LOT_CU = 100
DEFAULT_TICK = 1
MAX_MARKUP_BPS = 100_000
"""The highest markup a node may ask: ten times its reservation."""


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
    cost = node.add_argument_group(
        "pricing",
        "The reservation price per lot covers an hour's cost over the lots the "
        "node computes in an hour; 1 credit = 1 USD. The cost is one of: "
        "--cost-per-hour; --energy-cost-per-hour plus --hardware-cost-per-hour; "
        "or --price-series (default: --cost-per-hour 0.10). The ask is the "
        "reservation plus a markup that rises linearly with the share of the "
        "capacity sold, from --markup-min-bps to --markup-max-bps.",
    )
    cost.add_argument(
        "--cost-per-hour",
        default=None,
        metavar="USD",
        help="what an hour of this machine costs in all, USD (default: 0.10)",
    )
    cost.add_argument(
        "--energy-cost-per-hour",
        default=None,
        metavar="USD",
        help="the energy an hour of this machine uses, USD (default: none)",
    )
    cost.add_argument(
        "--hardware-cost-per-hour",
        default=None,
        metavar="USD",
        help="an hour of the hardware (its price over its life), USD (default: none)",
    )
    cost.add_argument(
        "--price-series",
        default=None,
        metavar="SOURCE",
        help="take the cost per hour from a real GPU rental price series: "
        f"'{SHIPPED}' (the series cux ships, clients/data/gpu_prices.json), a "
        "file in its format, or JSON lines of price_stats snapshots in USD per "
        "GPU-hour; the median of --price-statistic over the series",
    )
    cost.add_argument(
        "--price-gpu",
        default=None,
        metavar="GPU",
        help="the GPU model of the series to use, a name or a prefix that names "
        f"one (H100); only for a series of several (default: {DEFAULT_GPU})",
    )
    cost.add_argument(
        "--price-statistic",
        default="median",
        choices=("min", "p25", "median", "p75", "p90"),
        help="which price of each point of the series (default: %(default)s)",
    )
    cost.add_argument(
        "--markup-min-bps",
        type=int,
        default=1_000,
        metavar="BPS",
        help="markup over the reservation with nothing sold, basis points "
        "(default: %(default)s)",
    )
    cost.add_argument(
        "--markup-max-bps",
        type=int,
        default=5_000,
        metavar="BPS",
        help="markup with all of the capacity sold, basis points, at least "
        f"--markup-min-bps and at most {MAX_MARKUP_BPS} (default: %(default)s)",
    )
    node.add_argument(
        "--node-id",
        default=None,
        metavar="ID",
        help="this node's name within the account, unique among its live nodes "
        "(default: this machine's host name, as node-<host>)",
    )
    node.add_argument(
        "--lot-cu",
        type=int,
        default=DEFAULT_LOT_CU,
        help="CU per lot, only when the exchange's instrument listing cannot be "
        "read; the listing's value wins (default: %(default)s)",
    )
    node.add_argument(
        "--tick",
        type=int,
        default=DEFAULT_TICK,
        help="the class's tick, µcr, only when the exchange's instrument listing "
        "cannot be read; the listing's value wins (default: %(default)s)",
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
    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        check_flags(args)
        cost = _cost(args)
    except ValueError as exc:
        print(f"cux node: {exc}", file=sys.stderr)
        return 2
    return asyncio.run(_run(args, cost))


def default_node_id() -> str:
    """``node-<host name>``, cut to what a node id may hold: two machines of
    one account get different ids without a flag."""
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname().split(".")[0])
    return f"node-{host or 'host'}"[:48]


def check_flags(args: argparse.Namespace) -> None:
    """Check the flags that are not the cost's, before anything loads, and
    fill in the default node id.

    Raises:
        ValueError: a flag is out of range; the message names it.
    """
    _check_url(args.exchange)
    if args.node_id is None:
        args.node_id = default_node_id()
    if not _NODE_ID.match(args.node_id):
        raise ValueError(f"--node-id must match {_NODE_ID.pattern}")
    _check_markup(args.markup_min_bps, args.markup_max_bps)
    for flag, value in (("--lot-cu", args.lot_cu), ("--tick", args.tick)):
        if value < 1:
            raise ValueError(f"{flag} must be a positive whole number, not {value}")
    for flag, seconds in (
        ("--probe-seconds", args.probe_seconds),
        ("--heartbeat-seconds", args.heartbeat_seconds),
    ):
        if not 0 < seconds <= 3600:
            raise ValueError(f"{flag} must be above 0 and at most 3600, not {seconds}")
    if args.max_cu_per_second is not None and not (
        0.001 <= args.max_cu_per_second <= 1e9
    ):
        raise ValueError("--max-cu-per-second must be from 0.001 to 10^9")


def _check_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port out of range
    except ValueError as exc:
        raise ValueError(f"--exchange {url!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss") or not parts.hostname:
        raise ValueError(
            f"--exchange must be a ws:// or wss:// URL with a host, such as "
            f"ws://127.0.0.1:8700/ws, not {url!r}"
        )


def _cost(args: argparse.Namespace) -> int:
    """The cost per hour, µUSD, from the one source the flags name.

    Raises:
        ValueError: no single source, or a bad amount or series (one that
            cannot be read too).
    """
    from providers.pricing import cost_per_hour, micro_usd, usd_per_hour_from_series

    parts = (args.energy_cost_per_hour, args.hardware_cost_per_hour)
    sources = [
        name
        for name, given in (
            ("--cost-per-hour", args.cost_per_hour is not None),
            ("--energy/--hardware-cost-per-hour", any(p is not None for p in parts)),
            ("--price-series", args.price_series is not None),
        )
        if given
    ]
    if len(sources) > 1:
        raise ValueError(
            f"give one cost, not {' and '.join(sources)}: --cost-per-hour is the "
            "total, the energy and hardware costs are its parts, a price series "
            "replaces them"
        )
    if args.price_series is None and args.price_gpu is not None:
        raise ValueError("--price-gpu needs --price-series")
    if args.price_series is not None:
        try:
            usd = usd_per_hour_from_series(
                args.price_series, args.price_statistic, args.price_gpu or DEFAULT_GPU
            )
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ValueError(
                f"--price-series {args.price_series}: cannot read the file: {reason}"
            ) from None
        return micro_usd(usd)
    amounts = (
        ("--energy-cost-per-hour", args.energy_cost_per_hour),
        ("--hardware-cost-per-hour", args.hardware_cost_per_hour),
        ("--cost-per-hour", args.cost_per_hour),
    )
    for flag, text in amounts:
        if text is not None:
            try:
                micro_usd(text)
            except ValueError as exc:
                raise ValueError(
                    f"{flag}: {exc}; give US dollars an hour, such as 0.25"
                ) from None
    if any(p is not None for p in parts):
        return cost_per_hour(*parts)
    return micro_usd(args.cost_per_hour or "0.10")


def _check_markup(low: int, high: int) -> None:
    if not 0 <= low <= high <= MAX_MARKUP_BPS:
        raise ValueError(
            f"--markup-min-bps ({low}) and --markup-max-bps ({high}) must be "
            f"0 <= min <= max <= {MAX_MARKUP_BPS}"
        )


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
        base_bps=args.markup_min_bps,
        slope_bps=args.markup_max_bps - args.markup_min_bps,
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
        "node %s: cost %d µUSD an hour, reservation %d µcr per lot of %d CU, "
        "markup %d to %d bps",
        args.node_id,
        cost,
        node.pricing().reservation,
        args.lot_cu,
        args.markup_min_bps,
        args.markup_max_bps,
    )
    try:
        await node.run()
    except RequestRefused as exc:
        if exc.code == "NODE_ID_IN_USE":
            print(
                f"cux node: node id {args.node_id!r} is in use by another live node "
                f"of account {args.key!r}: pass each node a distinct --node-id",
                file=sys.stderr,
            )
        else:
            print(f"cux node: the exchange refused the node: {exc}", file=sys.stderr)
        return 1
    return 0
