"""The ``cux`` command line: one command, with subcommands.

``cux serve`` runs the exchange server; ``cux replay`` rebuilds a market from
its journal (see `exchange.cli_replay`); ``cux demo`` runs a whole market on
one machine (see `exchange.demo_cli`); ``cux node`` runs a provider node (see
`providers.node_cli`); the client commands (``cux book``, ``cux trade``,
``cux job`` ...) are in `clients.cli`. ``python -m exchange``
is the same command.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from clients.cli import add_client_commands
from exchange.cli_args import whole_number
from exchange.cli_replay import add_replay_command
from exchange.demo_cli import add_demo_command
from matching import CuxError
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

    add_demo_command(commands)

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
        type=whole_number(0, 65_535),
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


def _version() -> str:
    try:
        return importlib.metadata.version("cux")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
