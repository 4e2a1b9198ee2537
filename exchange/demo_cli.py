"""``cux demo``: the whole market live (`exchange.demo`), or with ``--core-only``
the seeded scenario through the matching core alone (`exchange.demo_core`).

The live demo's modules (and the SDK, rich, aiohttp) are imported only when it
runs, so ``cux --help`` stays fast.
"""

from __future__ import annotations

import argparse
import sys
from itertools import zip_longest
from pathlib import Path
from typing import Any

from exchange.cli_args import whole_number
from exchange.demo_core import CONFIG, SYMBOL, DemoRun, run_demo
from exchange.tables import Column, credits, render_table
from matching import (
    CuxError,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    OrderRejected,
)
from matching.order import BUY, SELL

__all__ = ["add_demo_command"]

MAX_STEPS = 1_000_000
MAX_NODES = 8
DEFAULT_STEPS = 20


def add_demo_command(commands: Any) -> None:
    """Add ``demo`` to the ``cux`` subcommands (an argparse subparsers action)."""
    demo = commands.add_parser(
        "demo",
        help="run a whole compute market on this machine, live",
        description="Start the exchange (cux serve) with a demo market, provider "
        "nodes running the real model (cux node), consumer agents embedding "
        "CPython's documentation at prices that follow real GPU rental prices, "
        "a futures window with a market maker, and show a live summary and the "
        "dashboard's address. Ctrl-C, SIGTERM or --duration stops everything "
        "and prints a report and the journal's path. With --core-only: a small "
        "seeded scenario through the matching core alone, printed at once.",
    )
    demo.add_argument(
        "--duration",
        type=whole_number(1, 7 * 24 * 3600),
        default=None,
        metavar="SECONDS",
        help="stop this many seconds after the start (default: run until Ctrl-C)",
    )
    demo.add_argument(
        "--nodes",
        type=whole_number(1, MAX_NODES),
        default=3,
        metavar="N",
        help="provider nodes to start, one process each (default: %(default)s)",
    )
    demo.add_argument(
        "--host",
        default="127.0.0.1",
        help="address the exchange listens on (default: %(default)s)",
    )
    demo.add_argument(
        "--port",
        type=whole_number(0, 65_535),
        default=8700,
        metavar="P",
        help="the exchange's port; 0 picks a free one (default: %(default)s)",
    )
    demo.add_argument(
        "--data",
        type=Path,
        default=None,
        metavar="DIR",
        help="a new data folder for the journal and the logs (default: a new "
        "folder under cux-demo/)",
    )
    demo.add_argument(
        "--seed",
        type=whole_number(0, 2**32 - 1),
        default=1,
        metavar="N",
        help="seed of the replayed day and the agents' random choices "
        "(default: %(default)s)",
    )
    demo.add_argument(
        "--core-only",
        action="store_true",
        help="run the seeded scenario through the matching core alone instead",
    )
    demo.add_argument(
        "--steps",
        type=whole_number(0, MAX_STEPS),
        default=None,
        metavar="N",
        help="with --core-only only: random orders after the scripted part, at "
        f"most {MAX_STEPS:,} (default: {DEFAULT_STEPS})",
    )
    demo.set_defaults(run=_demo)


def _demo(args: argparse.Namespace) -> int:
    if not args.core_only:
        if args.steps is not None:
            # The live market has no steps: refused rather than ignored.
            print("cux demo: --steps goes with --core-only", file=sys.stderr)
            return 2
        from exchange.demo import DemoOptions, run_demo_market

        options = DemoOptions(
            duration=args.duration,
            nodes=args.nodes,
            host=args.host,
            port=args.port,
            data=args.data,
            seed=args.seed,
        )
        return run_demo_market(options)
    try:
        steps = DEFAULT_STEPS if args.steps is None else args.steps
        run = run_demo(seed=args.seed, steps=steps)
    except CuxError as exc:
        print(f"cux demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(_demo_report(run))
    return 0


# -- the core-only scenario's report ---------------------------------------------------


def _demo_report(run: DemoRun) -> str:
    return "\n\n".join(
        [
            _summary(run),
            _trades(run),
            _book(run),
            _balances(run),
            f"state hash: {run.engine.state_hash()}",
        ]
    )


def _summary(run: DemoRun) -> str:
    spec = CONFIG.instruments()[0]
    counts = {
        "accepted": OrderAccepted,
        "rejected": OrderRejected,
        "cancelled": OrderCancelled,
        "amended": OrderAmended,
        "expired": OrderExpired,
    }
    tally = ", ".join(
        f"{sum(isinstance(e, kind) for e in run.events)} {name}"
        for name, kind in counts.items()
    )
    return (
        f"cux demo: seed {run.seed}, {run.steps} random steps, {SYMBOL} "
        f"(lot {spec.lot_cu} CU, tick {spec.tick} ucr, fees taker "
        f"{spec.taker_fee_bps} bps / maker {spec.maker_fee_bps} bps)\n"
        f"{run.commands} commands through the matching core, each self-checked; "
        f"orders: {tally}"
    )


def _trades(run: DemoRun) -> str:
    rows = [
        [
            str(t.trade_id),
            credits(t.price),
            str(t.qty),
            t.taker_side,
            t.taker_account if t.taker_side == "buy" else t.maker_account,
            t.maker_account if t.taker_side == "buy" else t.taker_account,
            credits(t.buyer_fee),
        ]
        for t in run.trades
    ]
    columns: list[Column] = [
        ("id", ">"),
        ("price", ">"),
        ("qty", ">"),
        ("taker", "<"),
        ("buyer", "<"),
        ("seller", "<"),
        ("buyer fee", ">"),
    ]
    title = "Trades (price in credits per lot, qty in lots, fee in credits)"
    return f"{title}\n{render_table(columns, rows)}"


def _book(run: DemoRun) -> str:
    book = run.engine.instruments[SYMBOL].book
    bids = book.depth(BUY)
    asks = book.depth(SELL)
    rows = [
        [*_level(bid), "|", *_level(ask)]
        for bid, ask in zip_longest(bids, asks, fillvalue=None)
    ]
    columns: list[Column] = [
        ("bid price", ">"),
        ("qty", ">"),
        ("|", "<"),
        ("ask price", ">"),
        ("qty", ">"),
    ]
    title = f"Book {SYMBOL} (bids best first | asks best first)"
    return f"{title}\n{render_table(columns, rows)}"


def _level(level: tuple[int, int] | None) -> list[str]:
    if level is None:
        return ["", ""]
    price, qty = level
    return [credits(price), str(qty)]


def _balances(run: DemoRun) -> str:
    ledger = run.engine.ledger
    rows = [
        [name, credits(available), credits(held), credits(escrow)]
        for name, available, held, escrow in zip(
            ledger.names, ledger.available, ledger.held, ledger.escrow, strict=True
        )
    ]
    rows.append(["venue fee income", credits(ledger.fee_income), "", ""])
    rows.append(["total", credits(ledger.total()), "", ""])
    columns: list[Column] = [
        ("account", "<"),
        ("available", ">"),
        ("held", ">"),
        ("escrow", ">"),
    ]
    net = credits(ledger.deposits - ledger.withdrawals)
    return (
        f"Balances (credits)\n{render_table(columns, rows)}\n"
        f"deposits - withdrawals = {net}\n"
        "(escrows are settled as if 50-100% of each trade's work was metered)"
    )
