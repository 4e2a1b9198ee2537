"""The ``cux`` command line: one command, with subcommands.

``cux serve`` runs the exchange server; ``cux replay`` rebuilds a market from
its journal (see `exchange.cli_replay`); ``cux demo`` is, so far, a core-only
scenario (see `exchange.demo_core`); ``cux node`` runs a provider node (see
`providers.node_cli`); the client commands (``cux book``, ``cux trade``,
``cux job`` ...) are in `clients.cli`. ``python -m exchange``
is the same command.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from itertools import zip_longest
from pathlib import Path
from typing import Any

from clients.cli import add_client_commands
from exchange.cli_replay import add_replay_command
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
from providers.node_cli import add_node_command

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``cux`` with ``argv`` (the process's arguments if None); the exit code."""
    args = build_parser().parse_args(argv)
    status: int = args.run(args)
    return status


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cux",
        description="cux, the compute unit exchange: a real-time market for "
        "inference compute.",
    )
    parser.add_argument("--version", action="version", version=f"cux {_version()}")
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")
    commands.required = True

    demo = commands.add_parser(
        "demo",
        help="run a seeded market scenario through the matching core",
        description="Run a small, seeded, deterministic market scenario through "
        "the matching core and print its trades, the final book, every "
        "account's balances and the engine's state hash. The engine checks its "
        "invariants after every command; the exit code is 1 if one breaks.",
    )
    demo.add_argument(
        "--seed",
        type=_count(0, 2**32 - 1),
        default=1,
        metavar="N",
        help="seed of the scenario's random choices (default: %(default)s)",
    )
    demo.add_argument(
        "--steps",
        type=_count(0, MAX_STEPS),
        default=20,
        metavar="N",
        help="random orders after the scripted part, at most "
        f"{MAX_STEPS:,} (default: %(default)s)",
    )
    demo.set_defaults(run=_demo)

    serve = commands.add_parser(
        "serve",
        help="run the exchange server",
        description="Run the exchange: the websocket endpoint /ws, the REST API "
        "under /api/v1/, /metrics and /health. The journal and snapshots live in "
        "the data folder; a restart recovers from them. SIGTERM or Ctrl-C shuts "
        "down gracefully.",
    )
    serve.add_argument(
        "--config",
        type=Path,
        default=None,
        metavar="FILE",
        help="TOML file with the market, the accounts and the server settings "
        "(default: a small market with the accounts alice, bob and operator, "
        "whose secrets are their names followed by -secret)",
    )
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default: %(default)s)",
    )
    serve.add_argument(
        "--port",
        type=_count(0, 65_535),
        default=8700,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    serve.add_argument(
        "--data",
        type=Path,
        default=Path("cux-data"),
        metavar="DIR",
        help="data folder for the journal and snapshots (default: %(default)s)",
    )
    serve.add_argument(
        "--log-level",
        default="INFO",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="logging level (default: %(default)s)",
    )
    serve.set_defaults(run=_serve)

    add_replay_command(commands)
    add_node_command(commands)
    add_client_commands(commands)
    return parser


def _serve(args: argparse.Namespace) -> int:
    import logging

    from exchange import settings as settings_module
    from exchange.server import serve

    logging.basicConfig(
        level=args.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        if args.config is None:
            settings = settings_module.default_settings()
            print(
                "cux serve: no --config given; using the built-in market with "
                "accounts alice, bob and operator (secrets: <name>-secret)",
                flush=True,
            )
        else:
            settings = settings_module.load(args.config)
        runner = _event_loop_runner()
        return runner(serve(settings, args.host, args.port, args.data))
    except CuxError as exc:
        print(f"cux serve: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"cux serve: {exc}", file=sys.stderr)
        return 2


def _event_loop_runner() -> Callable[[Any], int]:
    """``uvloop.run`` where uvloop is installed, else ``asyncio.run``."""
    try:
        import uvloop
    except ImportError:
        import asyncio

        return asyncio.run
    return uvloop.run


MAX_STEPS = 1_000_000


def _count(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: a whole number from ``low`` to ``high``."""

    def count(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"must be a whole number, got {text!r}"
            ) from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(
                f"must be from {low} to {high:,}, got {value}"
            )
        return value

    return count


def _version() -> str:
    try:
        return importlib.metadata.version("cux")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _demo(args: argparse.Namespace) -> int:
    try:
        run = run_demo(seed=args.seed, steps=args.steps)
    except CuxError as exc:
        print(f"cux demo: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(_demo_report(run))
    return 0


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
