"""The client commands of ``cux``: book, trade, orders, cancel, amend, balance, job.

`add_client_commands` registers them on ``cux``'s subcommands. Each takes the
server and the credentials from ``--url``, ``--key``, ``--secret``, else from
``CUX_URL``, ``CUX_KEY``, ``CUX_SECRET``, else from the config file (see
`clients.config`). Output is a table for people, or one JSON document with
``--json``.

Exit codes: 0 done; 1 the server refused the request (the error's code and
message are printed: on stderr, and also as ``{"error": {...}}`` with
``--json``), or a job did not end ``done``; 2 a usage problem (a bad argument,
an input file that is missing, unreadable or holds nothing a job can take), a
configuration or a connection problem; 130 interrupted (Ctrl-C); 141 stdout
was closed before the output was written (``cux ... | head``), silently, as a
command that SIGPIPE ends. Every error is one line on stderr, ``cux COMMAND:
...``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import sys
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from clients.cli_input import (
    UsageError,
    client_order_id,
    identifier,
    positive,
    read_inputs,
    seconds,
    whole,
)
from clients.cli_reach import unreachable
from clients.config import ClientConfig, resolve
from clients.jobs import MAX_BUDGET_CU

if TYPE_CHECKING:
    from clients.cli_render import Cancelled

__all__ = ["add_client_commands"]

Handler = Callable[[argparse.Namespace, ClientConfig], Awaitable[int]]


def add_client_commands(commands: Any) -> None:
    """Add the client subcommands to ``commands`` (what
    ``ArgumentParser.add_subparsers`` returned)."""
    common = _common_options()

    book = commands.add_parser(
        "book",
        parents=[common],
        help="show an instrument's order book, live",
        description="Show the book of SYMBOL, the spread and the latest trades, "
        "refreshing in place until Ctrl-C (or --duration). --once or --json "
        "print it once. Needs no credentials.",
    )
    book.add_argument("symbol", metavar="SYMBOL")
    book.add_argument(
        "--depth", type=positive, default=10, help="levels a side (default: 10)"
    )
    book.add_argument(
        "--trades",
        type=whole(1, 1000),
        default=10,
        help="latest trades shown, at most 1,000 (default: 10)",
    )
    book.add_argument("--once", action="store_true", help="print once and exit")
    book.add_argument(
        "--duration",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="stop after this (default: run until Ctrl-C)",
    )
    book.set_defaults(handler=_book, command_name="book")

    trade = commands.add_parser(
        "trade",
        parents=[common],
        help="place an order",
        description="Place an order: a limit order with --price, else a market "
        "order. Prints the order and what it did on arrival.",
    )
    trade.add_argument("side", choices=("buy", "sell"))
    trade.add_argument("symbol", metavar="SYMBOL")
    trade.add_argument("qty", type=positive, metavar="QTY", help="lots")
    trade.add_argument("--price", type=positive, help="µcr per lot (limit order)")
    trade.add_argument(
        "--tif",
        choices=("GTC", "IOC", "FOK", "GTD"),
        help="time in force (default: GTC for a limit order, IOC for a market one)",
    )
    trade.add_argument("--expire-at", type=positive, metavar="NS", help="for GTD")
    trade.add_argument("--post-only", action="store_true")
    trade.add_argument(
        "--client-order-id",
        type=client_order_id,
        metavar="ID",
        help="your own name for the order, 1 to 64 printable ASCII characters",
    )
    trade.add_argument(
        "--wait",
        type=seconds,
        default=None,
        metavar="SECONDS",
        help="wait up to this long for the order to be filled, cancelled or expired",
    )
    trade.set_defaults(handler=_trade, command_name="trade")

    orders = commands.add_parser(
        "orders", parents=[common], help="list your open orders"
    )
    orders.add_argument("--symbol", help="only this instrument")
    orders.set_defaults(handler=_orders, command_name="orders")

    cancel = commands.add_parser(
        "cancel",
        parents=[common],
        help="cancel orders",
        description="Cancel the orders given by id, or all open orders with --all.",
    )
    cancel.add_argument("order_ids", nargs="*", type=identifier, metavar="ORDER_ID")
    cancel.add_argument("--all", action="store_true", help="every open order")
    cancel.add_argument("--symbol", help="with --all: only this instrument")
    cancel.set_defaults(handler=_cancel, command_name="cancel")

    amend = commands.add_parser(
        "amend", parents=[common], help="change an open order's quantity or price"
    )
    amend.add_argument("order_id", type=identifier, metavar="ORDER_ID")
    amend.add_argument("--qty", type=positive, help="new open quantity, lots")
    amend.add_argument("--price", type=positive, help="new price, µcr per lot")
    amend.set_defaults(handler=_amend, command_name="amend")

    balance = commands.add_parser(
        "balance", parents=[common], help="show your balances"
    )
    balance.set_defaults(handler=_balance, command_name="balance")

    _add_job_commands(commands, common)


def _add_job_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    job = commands.add_parser("job", help="submit and follow embedding jobs")
    jobs = job.add_subparsers(title="job commands", metavar="COMMAND")
    jobs.required = True

    submit = jobs.add_parser(
        "submit",
        parents=[common],
        help="submit a job and wait for its result",
        description="Submit the sentences of FILE (one per line; a .json file "
        "holds a list of strings; - reads stdin) as an embedding job, show its "
        "progress and then its result.",
    )
    submit.add_argument("file", metavar="FILE")
    submit.add_argument("--symbol", default="cpu-SPOT", help="default: cpu-SPOT")
    submit.add_argument(
        "--tier",
        default="exact",
        choices=("exact", "high", "balanced", "fast"),
        help="quality tier (default: exact)",
    )
    submit.add_argument(
        "--max-price", type=positive, help="buy spot lots up to this price (µcr/lot)"
    )
    submit.add_argument(
        "--budget-cu",
        type=whole(1, MAX_BUDGET_CU),
        required=True,
        help="the most CU to spend",
    )
    submit.add_argument(
        "--lease",
        type=positive,
        action="append",
        dest="leases",
        metavar="ID",
        help="run on this lease you hold (repeatable), instead of --max-price",
    )
    submit.add_argument(
        "--min-reputation-bps",
        type=whole(0, 10_000),
        metavar="BPS",
        help="run only on nodes that delivered at least this share of their "
        "shards (basis points)",
    )
    submit.add_argument(
        "--no-wait", action="store_true", help="print the job id and exit"
    )
    submit.add_argument(
        "--embeddings", action="store_true", help="with --json: include embeddings"
    )
    submit.set_defaults(handler=_job_submit, command_name="job submit")

    get = jobs.add_parser("get", parents=[common], help="show a job")
    get.add_argument("job_id", type=identifier, metavar="ID")
    get.add_argument(
        "--embeddings", action="store_true", help="with --json: include embeddings"
    )
    get.set_defaults(handler=_job_get, command_name="job get")

    cancel = jobs.add_parser("cancel", parents=[common], help="cancel a job")
    cancel.add_argument("job_id", type=identifier, metavar="ID")
    cancel.set_defaults(handler=_job_cancel, command_name="job cancel")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    group = common.add_argument_group("connection")
    group.add_argument(
        "--url", help="server (env CUX_URL; default ws://127.0.0.1:8700/ws)"
    )
    group.add_argument("--key", help="account key (env CUX_KEY)")
    group.add_argument("--secret", help="account secret (env CUX_SECRET)")
    group.add_argument(
        "--config",
        type=Path,
        dest="client_config",
        metavar="FILE",
        help="client config file (default: ~/.config/cux/client.toml)",
    )
    group.add_argument("--profile", help="a [profiles.NAME] of the config file")
    group.add_argument(
        "--timeout",
        type=seconds,
        default=10.0,
        metavar="SECONDS",
        help="per request (default: 10)",
    )
    common.add_argument("--json", action="store_true", help="print JSON")
    common.set_defaults(run=run)
    return common


# -- running ------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    """Run a client command: resolve the settings, run its handler, and turn
    errors into one-line messages and exit codes."""
    import aiohttp

    from clients.errors import ClientError, ConfigError, ServerError

    name = f"cux {args.command_name}"
    config: ClientConfig | None = None
    try:
        _refuse_empty_flags(args)
        config = resolve(
            url=args.url,
            key=args.key,
            secret=args.secret,
            config=args.client_config,
            profile=args.profile,
        )
        status: int = asyncio.run(args.handler(args, config))
        sys.stdout.flush()
        return status
    except BrokenPipeError:
        return _stdout_closed()
    except ServerError as exc:
        message = _naming_the_symbol(exc, args)
        if args.json:
            print(json.dumps({"error": {"code": exc.code, "message": message}}))
        print(f"{name}: {exc.code}: {message}", file=sys.stderr)
        return 1
    except (UsageError, ConfigError) as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 2
    except aiohttp.WSServerHandshakeError as exc:
        url = exc.request_info.real_url
        print(
            f"{name}: no cux server at {url}: its websocket handshake got HTTP "
            f"{exc.status}",
            file=sys.stderr,
        )
        return 2
    except (OSError, TimeoutError, aiohttp.ClientError) as exc:
        where = "the url given" if config is None else config.endpoint.ws
        reason = unreachable(exc, args.timeout)
        print(f"{name}: no cux server at {where}: {reason}", file=sys.stderr)
        return 2
    except ClientError as exc:
        print(f"{name}: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _refuse_empty_flags(args: argparse.Namespace) -> None:
    """An empty ``--url``, ``--key`` or ``--secret`` is a mistake (an unset
    shell variable, say), not a wish for the environment's or the default."""
    for flag in ("url", "key", "secret"):
        value = getattr(args, flag)
        if value is not None and not value.strip():
            raise UsageError(f"--{flag} is empty: give one, or leave the flag out")


def _stdout_closed() -> int:
    """Whoever read stdout stopped (``cux ... | head``): end quietly, as a
    command killed by SIGPIPE does, with 141 (128 + 13). Stdout goes to
    /dev/null so that the interpreter's last flush finds nothing to fail on."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 141


def _naming_the_symbol(exc: Any, args: argparse.Namespace) -> str:
    """The error's message, with the symbol the command gave when the server
    says it knows no such instrument and its message does not say which."""
    symbol = getattr(args, "symbol", None)
    if exc.code != "UNKNOWN_SYMBOL" or symbol is None or repr(symbol) in exc.message:
        return str(exc.message)
    return f"{exc.message}: {symbol!r}"


def _client(config: ClientConfig, args: argparse.Namespace, *, login: bool) -> Any:
    from clients.client import Backoff, Client

    key, secret = config.require_credentials() if login else (None, None)
    return Client(
        config.url,
        key,
        secret,
        request_timeout=args.timeout,
        backoff=Backoff(attempts=5),
    )


def _print(args: argparse.Namespace, data: Any, renderable: Any) -> None:
    if args.json:
        print(json.dumps(data))
    else:
        _console().print(renderable)


def _console(stderr: bool = False) -> Any:
    from rich.console import Console

    console = Console(stderr=stderr)
    if not console.is_terminal:
        console = Console(stderr=stderr, width=120)
    return console


# -- the commands -------------------------------------------------------------------


async def _book(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import book_json, book_view
    from clients.live import LiveBook
    from clients.messages import TradeMessage
    from clients.rest import RestClient

    async with _client(config, args, login=False) as cux:
        trades: deque[TradeMessage] = deque(maxlen=args.trades)
        async with _symbol_channels():
            feed = await cux.subscribe(f"trades.{args.symbol}")
            book = await LiveBook.open(cux, args.symbol)
        async with RestClient(config.url, timeout=args.timeout) as rest:
            trades.extend(await rest.trades(args.symbol, args.trades))
        await book.wait_synced(args.timeout)
        await cux.sync()
        _drain(feed, trades)
        if args.json or args.once:
            newest = list(reversed(trades))
            _print(
                args,
                book_json(book.mirror, args.depth, newest),
                book_view(book.mirror, args.depth, newest),
            )
            return 0
        await _live(args, book, feed, trades)
    return 0


@contextlib.asynccontextmanager
async def _symbol_channels() -> AsyncIterator[None]:
    """Subscribing to an instrument's channels: a server that does not know the
    symbol refuses the channel, with UNKNOWN_CHANNEL (``trades.<symbol>`` is no
    channel) or UNKNOWN_SYMBOL naming the channel; either is said as the
    UNKNOWN_SYMBOL it is, and `run` names the symbol."""
    from clients.errors import ServerError, error_for

    try:
        yield
    except ServerError as exc:
        if exc.code not in ("UNKNOWN_CHANNEL", "UNKNOWN_SYMBOL"):
            raise
        raise error_for(
            "UNKNOWN_SYMBOL", "no instrument has this symbol", exc.request_id
        ) from None


async def _live(args: argparse.Namespace, book: Any, feed: Any, trades: Any) -> None:
    from rich.live import Live

    from clients.cli_render import book_view

    def view() -> Any:
        return book_view(book.mirror, args.depth, list(reversed(trades)))

    loop = asyncio.get_running_loop()
    stop = None if args.duration is None else loop.time() + args.duration
    with Live(view(), console=_console(), refresh_per_second=8) as live:
        while stop is None or loop.time() < stop:
            left = None if stop is None else max(stop - loop.time(), 0.0)
            with contextlib.suppress(TimeoutError):
                await book.changed(timeout=min(left or 0.25, 0.25))
            _drain(feed, trades)
            live.update(view())


def _drain(feed: Any, trades: Any) -> None:
    """Move the trades the subscription holds into ``trades`` (oldest first),
    skipping those already there (from the REST history)."""
    from clients.messages import TradeMessage

    last = trades[-1].trade_id if trades else 0
    for message in feed.drain():
        if isinstance(message, TradeMessage) and message.trade_id > last:
            trades.append(message)
            last = message.trade_id


async def _trade(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import order_json, order_table

    async with _client(config, args, login=True) as cux:
        placed = await cux.place(
            args.symbol,
            args.side,
            args.qty,
            args.price,
            tif=args.tif,
            expire_at=args.expire_at,
            post_only=args.post_only,
            client_order_id=args.client_order_id,
        )
        if args.wait is not None:
            try:
                result = await cux.wait_order(placed.order_id, args.wait)
            except TimeoutError:
                result = cux.orders_tracker.get(placed.order_id)
        else:
            await cux.sync()
            result = cux.orders_tracker.get(placed.order_id)
        _print(args, order_json(placed, result), order_table(placed, result))
    return 0


async def _orders(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import orders_table, to_builtins

    async with _client(config, args, login=True) as cux:
        orders = await cux.orders(args.symbol)
        _print(args, {"orders": to_builtins(orders)}, orders_table(orders))
    return 0


async def _cancel(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import cancel_json, cancel_table

    if args.all == bool(args.order_ids):
        raise UsageError("give order ids, or --all")
    if args.symbol is not None and not args.all:
        raise UsageError("--symbol goes with --all")
    async with _client(config, args, login=True) as cux:
        if args.all:
            count = await cux.cancel_all(args.symbol)
            plural = "" if count == 1 else "s"
            _print(args, {"cancelled": count}, f"cancelled {count} order{plural}")
            return 0
        outcomes = await _cancel_each(cux, args.order_ids)
    # Every id's result; each refusal also on stderr, as other commands say one.
    _print(args, cancel_json(outcomes), cancel_table(outcomes))
    name = f"cux {args.command_name}"
    for order_id, error in outcomes:
        if error is not None:
            print(f"{name}: {order_id}: {error.code}: {error.message}", file=sys.stderr)
    return 1 if any(error is not None for _, error in outcomes) else 0


async def _cancel_each(cux: Any, order_ids: list[str]) -> list[Cancelled]:
    """Cancel every order of ``order_ids``, one after another, whatever
    happens to the others: each id with None, or the server's refusal (a
    `ServerError`). A connection that fails still ends the command."""
    from clients.errors import ServerError

    outcomes: list[Cancelled] = []
    for order_id in order_ids:
        try:
            await cux.cancel(order_id)
        except ServerError as exc:
            outcomes.append((order_id, exc))
        else:
            outcomes.append((order_id, None))
    return outcomes


async def _amend(args: argparse.Namespace, config: ClientConfig) -> int:
    if args.qty is None and args.price is None:
        raise UsageError("give --qty, --price or both")
    from clients.cli_render import amend_json, amend_text

    async with _client(config, args, login=True) as cux:
        # The order before and after, and what its channels say between: an
        # amend that crosses fills, and the order leaves the listing.
        before = await _open_order(cux, args.order_id)
        if before is not None:
            cux.orders_tracker.follow(before)
        await cux.amend(args.order_id, qty=args.qty, price=args.price)
        await cux.sync()
        result = cux.orders_tracker.get(args.order_id)
        after = await _open_order(cux, args.order_id)
        asked = {"qty": args.qty, "price": args.price}
        data = amend_json(args.order_id, before, after, result, asked)
        _print(args, data, amend_text(data))
    return 0


async def _open_order(cux: Any, order_id: str) -> Any:
    """The account's open order ``order_id`` as listed, or None."""
    return next((o for o in await cux.orders() if o.order_id == order_id), None)


async def _balance(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import balance_table, to_builtins

    async with _client(config, args, login=True) as cux:
        balance = await cux.balance()
        data = {"account": cux.account, **to_builtins(balance)}
        _print(args, data, balance_table(cux.account, balance))
    return 0


async def _job_submit(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import job_json, job_table
    from clients.errors import ProtocolError

    if (args.max_price is None) == (args.leases is None):
        raise UsageError(
            "give --max-price (buy spot lots up to it) or --lease (run on "
            "leases you hold), one of the two"
        )
    inputs = read_inputs(args.file)
    async with _client(config, args, login=True) as cux:
        try:
            job_id = await cux.submit_job(
                args.symbol,
                inputs,
                tier=args.tier,
                budget_cu=args.budget_cu,
                max_price=args.max_price,
                leases=args.leases,
                min_reputation_bps=args.min_reputation_bps,
            )
        except ProtocolError as exc:
            if exc.code != "FRAME_TOO_LARGE":
                raise
            # Refused by the SDK before sending: the file is too big for one job.
            shown = "stdin" if args.file == "-" else args.file
            raise UsageError(
                f"the texts of {shown} are too long for one request "
                f"({exc.message}): split them into several jobs"
            ) from None
        if args.no_wait:
            # The id alone, so that `id=$(cux job submit ... --no-wait)` works.
            _print(args, {"job_id": job_id}, job_id)
            return 0
        job = await _follow(cux, job_id, len(inputs), quiet=args.json)
        _print(args, job_json(job, embeddings=args.embeddings), job_table(job))
    return 0 if job.status == "done" else 1


async def _follow(cux: Any, job_id: str, inputs: int, *, quiet: bool) -> Any:
    """Wait for the job, with a progress bar on stderr unless ``quiet``."""
    if quiet:
        return await cux.wait_job(job_id)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("job {task.fields[job]} {task.fields[status]}"),)
    with Progress(
        *columns, BarColumn(), MofNCompleteColumn(), console=_console(stderr=True)
    ) as progress:
        task = progress.add_task("job", total=inputs, job=job_id, status="queued")

        def update(message: Any) -> None:
            progress.update(task, completed=message.done_inputs, status=message.status)

        return await cux.wait_job(job_id, on_update=update)


async def _job_get(args: argparse.Namespace, config: ClientConfig) -> int:
    from clients.cli_render import job_json, job_table

    async with _client(config, args, login=True) as cux:
        job = await cux.get_job(args.job_id)
        _print(args, job_json(job, embeddings=args.embeddings), job_table(job))
    return 0


async def _job_cancel(args: argparse.Namespace, config: ClientConfig) -> int:
    async with _client(config, args, login=True) as cux:
        await cux.cancel_job(args.job_id)
        _print(args, {"cancelled": args.job_id}, f"cancelled job {args.job_id}")
    return 0
