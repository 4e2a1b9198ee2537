"""The exchange server: `cux serve`.

`Exchange` wires the parts together: the engine recovered from the journal, the
sequencer that feeds it, the market data, the websocket gateway, the REST API
and the metrics. `serve` runs it on aiohttp (on uvloop when installed) until
SIGTERM or SIGINT, then shuts down gracefully: it stops accepting connections
and requests, applies and journals what was already queued, delivers the
replies, closes every connection with code 1001 and the reason ``server
shutting down``, and closes the journal.

Start-up: the journal in ``DATA/journal`` is recovered (snapshot plus replay);
every account of the configuration that the engine does not know yet is opened,
funded with its deposit and given its capacity, through journaled commands.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from exchange.clock import Clock
from exchange.dispatch import Dispatcher
from exchange.gateway import Gateway
from exchange.login_limit import FailedLogins
from exchange.nodes import Nodes
from exchange.protocol import Heartbeat, encode
from exchange.sequencer import Sequencer, Work
from exchange.sessions import Hub
from exchange.settings import Settings
from matching import (
    AuctionTrade,
    Command,
    CuxError,
    Deposit,
    Engine,
    Event,
    FutureListed,
    OpenAccount,
    SetCapacity,
    Trade,
)

__all__ = [
    "Exchange",
    "Metrics",
    "StartError",
    "check_data_folder",
    "listen",
    "serve",
    "settle_heap",
]

log = logging.getLogger("cux.server")

GC_THRESHOLDS = (10_000, 20, 20)
"""The cyclic garbage collector's thresholds while serving (CPython's default
is 700, 10, 10): the young generation is collected every 10,000 allocations
net of frees rather than 700, and the older ones less often."""


SHUTDOWN_SECONDS = 5.0
"""How long requests still running when the server has stopped are waited for."""


class Metrics:
    """The server's Prometheus metrics, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.commands = Counter(
            "cux_commands_total", "commands applied", ["op"], registry=r
        )
        self.rejections = Counter(
            "cux_rejections_total", "requests refused, by code", ["code"], registry=r
        )
        self.trades = Counter("cux_trades_total", "trades", registry=r)
        self.connections = Gauge("cux_connections", "open websockets", registry=r)
        self.seq = Gauge("cux_engine_seq", "last sequence number applied", registry=r)
        self.rate_limited = Counter(
            "cux_rate_limited_total", "requests refused by rate limits", registry=r
        )
        self.backlog = Gauge(
            "cux_sequencer_backlog", "requests waiting for the sequencer", registry=r
        )
        self.durable = Histogram(
            "cux_journal_append_seconds",
            "time from journal append to durability",
            registry=r,
            buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.05, 0.1, 1.0),
        )

        # The labelled child of `commands` per command type: `labels` takes a
        # lock and builds a key on every call, too much once a command.
        self._command_counters: dict[type, Any] = {}

    def on_command(self, command: Command, events: list[Event]) -> None:
        counter = self._command_counters.get(type(command))
        if counter is None:
            counter = self.commands.labels(type(command).__struct_config__.tag)
            self._command_counters[type(command)] = counter
        counter.inc()
        for event in events:
            if type(event) is Trade or type(event) is AuctionTrade:
                self.trades.inc()


class Exchange:
    """One running exchange: engine, journal, sequencer, market data, gateway.

    Args:
        settings: the market, the accounts and the server's knobs.
        data: the data folder; the journal lives in ``data/journal``.
        clock: ns since the epoch.
    """

    def __init__(
        self, settings: Settings, data: Path, clock: Any = time.time_ns
    ) -> None:
        from exchange.journal import FileJournal
        from exchange.marketdata import MarketData

        self.settings = settings
        self.data = data
        self.clock = clock
        self.accepting = True
        self._heartbeat: asyncio.Task[None] | None = None
        self.metrics = Metrics()
        self.hub = Hub()
        self.nodes = Nodes()
        self.failed_logins = FailedLogins(
            settings.server.login_failures, settings.server.login_failure_seconds
        )
        data.mkdir(parents=True, exist_ok=True)
        self.journal = FileJournal(
            data,
            settings.market,
            fsync=settings.server.fsync,
            writer=settings.server.journal_writer,
        )
        self.engine: Engine = self.journal.recover()
        self.marketdata = MarketData(self.engine)
        self._rebuild_history()
        # Messages nobody subscribes to are not even built.
        self.marketdata.accounts.listening = self.hub.listening
        self.marketdata.listening = self.hub.listening
        self.sequencer = Sequencer(
            self.engine,
            self.journal,
            self.marketdata,
            self.hub.publish,
            clock=clock,
            snapshot_every=settings.server.snapshot_every,
            on_commands=self._on_commands,
        )
        # Read when /metrics is scraped, not set on every request.
        sequencer = self.sequencer
        self.metrics.backlog.set_function(lambda: sequencer.backlog)
        self.dispatcher = Dispatcher(self)
        self.gateway = Gateway(self)

    def _rebuild_history(self) -> None:
        """Rebuild the REST trade and candle history from the journal.

        Recovery starts from the latest snapshot, which holds the engine but
        not the market data's history, so the journal is read once more, up to
        where the engine is, through a scratch engine and market data.
        """
        from exchange.journal import read_records
        from exchange.marketdata import MarketData

        upto = self.engine.seq
        if not upto:
            return
        scratch = Engine(self.settings.market)
        history = MarketData(scratch)
        for record in read_records(self.data):
            if record.seq > upto:
                break
            events = scratch.apply(record.seq, record.ts, record.command)
            history.apply(events, record.ts)
        self.marketdata.start_history_from(history)
        log.info("trade history rebuilt from %d journal records", upto)

    def register_capacity(
        self,
        pairs: set[tuple[str, str]],
        reply: Callable[[list[Event]], None] | None = None,
    ) -> None:
        """Register the capacity of the connected nodes of each (account,
        class) pair again, through the sequencer."""
        nodes = self.nodes
        self.submit(
            Work(
                expand=lambda engine: nodes.capacity_commands(engine, pairs),
                reply=reply,
            )
        )

    def _on_commands(self, command: Command, events: list[Event]) -> None:
        self.metrics.on_command(command, events)
        self.dispatcher.on_events(events)
        # A future listed while nodes are connected gets their capacity.
        # (The events first: `classes` builds a set, too much once a command.)
        if any(type(e) is FutureListed for e in events) and self.nodes.classes():
            listed = {e.resource_class for e in events if type(e) is FutureListed}
            pairs = {p for p in self.nodes.classes() if p[1] in listed}
            if pairs:
                self.register_capacity(pairs)

    def submit(self, work: Work) -> None:
        self.sequencer.submit(work)

    async def start(self) -> None:
        """Start the sequencer and open the configured accounts it lacks."""
        self.sequencer.start()
        self._heartbeat = asyncio.create_task(self._beat(), name="cux-heartbeat")
        done = asyncio.get_running_loop().create_future()
        self.submit(Work(expand=self._bootstrap, reply=done.set_result))
        await done
        # Jobs a restart interrupted cannot go on: record them as failed.
        self.submit(Work(expand=self.dispatcher.recover))
        log.info(
            "exchange ready at seq %d with %d instruments",
            self.engine.seq,
            len(self.engine.instruments),
        )

    async def _beat(self) -> None:
        """Send every connection a ``heartbeat`` message every
        ``heartbeat_seconds``. The websocket layer also pings a peer that has
        sent nothing for twice that, and drops it if the pong does not come
        within ``heartbeat_seconds``."""
        while True:
            await asyncio.sleep(self.settings.server.heartbeat_seconds)
            data = encode(Heartbeat(self.clock()))
            for session in list(self.hub.sessions):
                session.send(data)

    def _bootstrap(self, engine: Engine) -> list[Command]:
        commands: list[Command] = []
        for account in self.settings.accounts:
            if engine.ledger.index(account.key) is not None:
                continue
            commands.append(OpenAccount(account.key, account.roles))
            if account.deposit:
                commands.append(Deposit(account.key, account.deposit))
            for symbol, lots in sorted(account.capacity.items()):
                commands.append(SetCapacity(account.key, symbol, lots))
        return commands

    async def stop(self) -> None:
        """Apply and deliver what is queued, close connections, close the journal."""
        self.accepting = False
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        await self.sequencer.stop()
        await asyncio.gather(
            *(
                s.flush_and_close(1001, "server shutting down", timeout=2.0)
                for s in list(self.hub.sessions)
            ),
            return_exceptions=True,
        )
        await self.journal.close()
        written = self.journal.written_seq
        if written < self.engine.seq:
            log.warning(
                "exchange stopped at seq %d, of which the journal holds up to %d "
                "(the commands after it were never acknowledged)",
                self.engine.seq,
                written,
            )
        else:
            log.info("exchange stopped at seq %d", self.engine.seq)

    def app(self) -> web.Application:
        from exchange import rest

        app = web.Application(middlewares=[rest.api_errors])
        app.router.add_get("/ws", self.gateway.handle)
        rest.add_routes(app, self)
        return app


async def serve(settings: Settings, host: str, port: int, data: Path) -> int:
    """Run the exchange until SIGTERM or SIGINT; return the exit status."""
    # The handlers come first: a signal that arrives as soon as the
    # "listening" line is out must stop the server gracefully, not kill it.
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    # The address first: a port in use or a bad host stops start-up before
    # the data folder is touched, so a retry with the same --data starts clean.
    sockets = listen(host, port)
    try:
        check_data_folder(data)
        server = settings.server
        clock = Clock(server.clock_start, server.clock_speed)
        exchange = Exchange(settings, data, clock)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    await exchange.start()
    settle_heap()
    from exchange.rest import ClientErrorLog

    ClientErrorLog.install()
    # Once the sequencer has stopped, every reply has been delivered and every
    # websocket closed; a request still waiting then waits for a sequencer
    # that failed, and is cut off rather than waited for (aiohttp: 60 s).
    runner = web.AppRunner(
        exchange.app(),
        handle_signals=False,
        access_log=None,
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    sites = [web.SockSite(runner, sock) for sock in sockets]
    for site in sites:
        await site.start()
    bound = sockets[0].getsockname()[1]
    # The line tests and scripts wait for: the address, with the real port.
    print(f"cux serve: listening on http://{host}:{bound} (data in {data})", flush=True)

    failed = asyncio.ensure_future(_watch(exchange))
    waiter = asyncio.ensure_future(stop.wait())
    await asyncio.wait({failed, waiter}, return_when=asyncio.FIRST_COMPLETED)

    # A second SIGTERM or SIGINT while shutting down ends the process at once.
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(sig)
    if exchange.sequencer.failed is not None:
        log.error(
            "the sequencer failed, so the server stops: %r", exchange.sequencer.failed
        )
    log.info("shutting down")
    for site in sites:
        await site.stop()
    await exchange.stop()
    await runner.cleanup()
    failed.cancel()
    waiter.cancel()
    if exchange.sequencer.failed is not None:
        exc = exchange.sequencer.failed
        print(
            f"cux serve: stopped: the sequencer failed ({type(exc).__name__}: {exc})",
            file=sys.stderr,
        )
        return 1
    print("cux serve: stopped", flush=True)
    return 0


class StartError(CuxError):
    """The server cannot start: the address or the data folder is unusable."""


def listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address of ``host`` at ``port`` (0: a free
    port, the same on each address).

    Raises:
        StartError: ``host`` has no address, or one cannot be bound (a port in
            use, an address not of this machine, a port that needs privileges).
    """
    try:
        infos = socket.getaddrinfo(
            host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except (socket.gaierror, UnicodeError) as exc:
        why = exc.strerror if isinstance(exc, socket.gaierror) else str(exc)
        raise StartError(
            f"cannot listen on {host}:{port}: no such host ({why})"
        ) from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            # With port 0, every address gets the port the first one got.
            at = sockets[0].getsockname()[1] if len(sockets) > 1 else port
            try:
                sock.bind((address[0], at, *address[2:]))
            except OSError as exc:
                why = (exc.strerror or str(exc)).lower()
                raise StartError(f"cannot listen on {host}:{at}: {why}") from None
            sock.listen(1024)
            sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def check_data_folder(data: Path) -> None:
    """Make the data folder if it is missing.

    Raises:
        StartError: ``data``, or a folder above it, is not a folder, or it
            cannot be made.
    """
    if data.exists() and not data.is_dir():
        raise StartError(f"the data folder {data} is a file, not a folder")
    for path in data.parents:
        if path.exists() and not path.is_dir():
            raise StartError(
                f"the data folder {data} cannot be made: {path} is a file, not a folder"
            )
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StartError(
            f"the data folder {data} cannot be made: {exc.strerror or exc}"
        ) from None


def settle_heap() -> None:
    """Keep the garbage collector from stopping the market.

    What start-up built (modules, the recovered engine, the history) lives as
    long as the process, yet each full collection walked all of it again: 30 to
    50 ms a pass while serving, and up to 470 ms with 200 subscribers. It is
    frozen out of the collector's view once (`gc.freeze`), and the thresholds
    are raised (`GC_THRESHOLDS`), so collections are rarer and each walks only
    what was allocated since.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


async def _watch(exchange: Exchange) -> None:
    """Return when the sequencer has failed (a bug or a journal error)."""
    while exchange.sequencer.failed is None:
        await asyncio.sleep(0.2)
