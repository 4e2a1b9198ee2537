"""``cux demo``: a whole compute market on one machine, live.

`run_demo_market` starts, in this order:

1. ``cux serve`` as a child process, with a configuration it writes into the
   data folder (``DATA/demo.toml``: the market of `exchange.demo_market`, on
   a simulated clock) and its journal in ``DATA/journal``;
2. the watchers that feed the summary (`exchange.demo_tally`);
3. one ``cux node`` process per provider, each running the real model, with
   its own cost (a GPU's rental price) and capacity;
4. once the nodes have registered: the consumer agents
   (`clients.agents.Consumer`), which submit job orders of CPython's
   documentation passages at their willingness to pay, and the futures
   window (`exchange.demo_futures`) with its market maker and buyer.

It shows a live summary and the dashboard's address (`exchange.demo_summary`)
until ``duration`` has passed since the start, or SIGINT/SIGTERM. Then it
stops everything in order — agents (they cancel their quotes and running
jobs), then nodes, then the server — waits for every child process, and
prints a report with the journal's path. Logs of every process are in
``DATA/logs``.

Known limitation: the demo's clock runs 60 times faster than real time, and
the nodes register their real throughput divided by that (see
`exchange.demo_market`); a node that the machine slows down (other work, too
few cores) delivers less than it registered, so shards wait in its queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live

from clients.agents import Consumer, connect_venue, load_gpu_prices, load_passages
from exchange.demo_futures import FuturesScenario
from exchange.demo_market import CLOCK_SPEED, SYMBOL, DemoPlan, make_plan
from exchange.demo_procs import Children, DemoStartError
from exchange.demo_summary import Summary
from exchange.demo_tally import Tally, Watchers

__all__ = ["DEFAULT_DATA", "DemoOptions", "run_demo_market"]

log = logging.getLogger("cux.demo")

DEFAULT_DATA = Path("cux-demo")
"""Where each run's data folder goes by default (``cux-demo/<date-time>``)."""
NODES_TIMEOUT = 240.0
"""Real seconds the nodes have to load the model and register."""
STATUS_EVERY = 5.0
"""Seconds between two status lines when the output is not a terminal."""


@dataclass(frozen=True, slots=True)
class DemoOptions:
    """What ``cux demo`` was asked for.

    Attributes:
        duration: real seconds from the start to the end; None: until stopped.
        nodes: how many provider nodes (processes) to start.
        host: the address the server listens on.
        port: its port; 0 picks a free one.
        data: the data folder; None: a new folder under `DEFAULT_DATA`.
        seed: the seed of the replayed day and of every agent.
    """

    duration: float | None = None
    nodes: int = 3
    host: str = "127.0.0.1"
    port: int = 8700
    data: Path | None = None
    seed: int = 1


def run_demo_market(options: DemoOptions) -> int:
    """Run the demo (see the module doc); the exit status."""
    data = options.data
    if data is None:
        data = DEFAULT_DATA / datetime.now().strftime("%Y%m%d-%H%M%S")
    journal = data / "journal"
    if journal.is_dir() and any(journal.iterdir()):
        print(
            f"cux demo: {data} already holds a journal; give a new --data folder "
            "(each run starts a new market)",
            file=sys.stderr,
        )
        return 2
    (data / "logs").mkdir(parents=True, exist_ok=True)
    _log_to(data / "logs" / "demo.log")
    return asyncio.run(_Demo(replace(options, data=data)).run())


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class _Demo:
    def __init__(self, options: DemoOptions) -> None:
        assert options.data is not None
        self.options = options
        self.data = options.data
        self.plan: DemoPlan = make_plan(load_gpu_prices(), options.nodes, options.seed)
        self.tally = Tally(speed=CLOCK_SPEED)
        # Off a terminal (a pipe, a log), lines are not wrapped at 80 columns.
        self.console = Console(highlight=False, soft_wrap=True)
        self.children = Children(self.data)
        self.consumers: list[Consumer] = []
        self.tasks: list[asyncio.Task[Any]] = []
        self.futures: FuturesScenario | None = None
        self.futures_task: asyncio.Task[None] | None = None
        self.stop = asyncio.Event()
        self.reason = "stopped"
        self._balances: dict[str, dict[str, int]] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._signalled, sig)
        config = self.data / "demo.toml"
        config.write_text(self.plan.config_toml(), encoding="utf-8")
        watchers: Watchers | None = None
        status = 0
        try:
            address = await self.children.start_server(
                config, self.options.host, self.options.port
            )
            url = address.replace("http://", "ws://") + "/ws"
            self.console.print(
                f"cux demo: dashboard at {address}/  (data in {self.data})"
            )
            server = self.children.server
            assert server is not None
            self.console.print(f"cux demo: started cux serve (pid {server.pid})")
            watchers = Watchers(self.tally, url, address)
            await watchers.start(SYMBOL, self.plan.traders())
            await self._start_nodes(url)
            status = await self._show(address, self._market(url, watchers))
        except DemoStartError as exc:
            self.console.print(f"cux demo: {exc}", markup=False)
            status = 1
        finally:
            notes = await self._shut_down(watchers)
        if status == 1 and self.children.server is None:
            return 1
        summary = self._summary("")
        balances = self._balances
        events = [text for _, text in self.tally.events]
        self.console.print(
            summary.report(balances, self.data, events, notes), markup=False
        )
        return status

    def _signalled(self, sig: int) -> None:
        self.reason = f"{signal.Signals(sig).name} received"
        self.stop.set()

    # -- start-up --------------------------------------------------------------------

    async def _start_nodes(self, url: str) -> None:
        self.tally.stage = "nodes loading the model"
        for spec in self.plan.nodes:
            child = await self.children.start_node(spec, url, self.options.seed)
            self.console.print(
                f"cux demo: started cux node {spec.node_id} for {spec.account} "
                f"(pid {child.pid}, {spec.gpu} at ${spec.usd_per_hour}/h, "
                f"{spec.real_cu_per_second} CU/s)"
            )

    async def _wait_for_nodes(self) -> None:
        want = len(self.plan.nodes)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NODES_TIMEOUT
        while len(self.tally.nodes) < want and loop.time() < deadline:
            if self.stop.is_set():
                return
            running = [c for c in self.children.nodes if c.running]
            if not running:
                tail = self.children.nodes[0].log_tail() if self.children.nodes else ""
                raise DemoStartError(f"every cux node exited; the first's log:\n{tail}")
            await asyncio.sleep(0.5)
        if not self.tally.nodes:
            raise DemoStartError(f"no node registered in {NODES_TIMEOUT:.0f} s")
        self.tally.event(
            f"{len(self.tally.nodes)} of {want} nodes registered: the market opens"
        )

    # -- the market ------------------------------------------------------------------

    async def _market(self, url: str, watchers: Watchers) -> None:
        await self._wait_for_nodes()
        if self.stop.is_set():
            return
        self.tally.stage = "trading"
        passages = load_passages()
        offset = self.plan.offset(self.tally.sim_now() or self.plan.clock_start)
        pricer = self.plan.pricer
        for config in self.plan.consumers:
            config = replace(config, start_offset=offset)
            self.tasks.append(
                asyncio.create_task(self._consumer(url, config, pricer.price, passages))
            )
        self.futures = FuturesScenario(self.plan, url, self.tally, watchers, passages)
        self.futures_task = asyncio.create_task(self._run_futures(self.futures))
        self.tasks.append(self.futures_task)
        await self.stop.wait()

    async def _run_futures(self, futures: FuturesScenario) -> None:
        try:
            await futures.run()
        except Exception as exc:
            # The spot market goes on without it.
            log.exception("the futures window failed")
            self.tally.event(f"the futures window failed: {type(exc).__name__}: {exc}")

    async def _consumer(
        self, url: str, config: Any, price: Any, passages: tuple[str, ...]
    ) -> None:
        secret = f"{config.name}-secret"
        async with connect_venue(url, config.name, secret, seed=config.seed) as venue:
            consumer = Consumer(venue, config, price, passages)
            self.consumers.append(consumer)
            if self.stop.is_set():
                consumer.stop()
            await consumer.run()

    def _refused(self) -> dict[str, int]:
        total: dict[str, int] = {}
        for consumer in self.consumers:
            for code, count in consumer.stats.refused.items():
                total[code] = total.get(code, 0) + count
        return total

    # -- the view --------------------------------------------------------------------

    def _summary(self, address: str) -> Summary:
        return Summary(self.tally, self.plan, f"{address}/", self._refused)

    async def _show(self, address: str, market: Awaitable[None]) -> int:
        """Run ``market`` under the live view until the end; the exit status."""
        summary = self._summary(address)
        task = asyncio.ensure_future(market)
        self.tasks.append(task)
        if self.console.is_terminal:
            with Live(summary, console=self.console, refresh_per_second=2):
                return await self._until_the_end(task)
        self.tally.on_event = lambda at, text: self.console.print(
            f"[{at:4.0f} s] {text}", markup=False
        )
        printer = asyncio.create_task(self._print_status(summary))
        try:
            return await self._until_the_end(task)
        finally:
            printer.cancel()

    async def _print_status(self, summary: Summary) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            self.console.print(summary.status_line(), markup=False)

    async def _until_the_end(self, market: asyncio.Future[None]) -> int:
        server = self.children.server
        assert server is not None
        waits: set[asyncio.Future[Any]] = {
            market,
            asyncio.ensure_future(self.stop.wait()),
            asyncio.ensure_future(server.process.wait()),
        }
        if self.options.duration is not None:
            left = self.options.duration - self.tally.elapsed()
            waits.add(asyncio.ensure_future(asyncio.sleep(max(0.0, left))))
        done, pending = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiter in pending - {market}:
            waiter.cancel()
        if not server.running:
            self.reason = f"cux serve exited with status {server.process.returncode}"
            return 1
        if market in done and market.exception() is not None:
            error = market.exception()
            self.reason = f"the market stopped: {type(error).__name__}: {error}"
            log.error("the market stopped", exc_info=error)
            return 1
        if not self.stop.is_set():
            self.reason = f"--duration {self.options.duration:g} s reached"
        return 0

    # -- shutting down -----------------------------------------------------------------

    async def _jobs_settle(self, timeout: float) -> None:
        """Wait a little for the jobs just cancelled to report how they ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.tally.count_jobs("running") and loop.time() < deadline:
            await asyncio.sleep(0.1)

    async def _shut_down(self, watchers: Watchers | None) -> list[str]:
        self.tally.stage = "stopping"
        self.tally.event(f"stopping: {self.reason}")
        self.stop.set()
        for consumer in self.consumers:
            consumer.stop()
        if self.futures_task is not None:
            self.futures_task.cancel()  # its maker cancels its quotes on the way
        await _settle(self.tasks, timeout=15.0)
        server = self.children.server
        if watchers is not None and server is not None and server.running:
            await self._jobs_settle(timeout=5.0)
            with contextlib.suppress(Exception):
                await watchers.refresh_nodes()
                accounts = [n.account for n in self.plan.nodes] + self.plan.traders()
                self._balances = await watchers.balances(accounts)
        if watchers is not None:
            await watchers.stop()
        return await self.children.stop()


async def _settle(tasks: list[asyncio.Task[Any]], timeout: float) -> None:
    """Let ``tasks`` end by themselves for ``timeout`` seconds, then cancel
    those left, and wait for all."""
    tasks = list(tasks)
    if not tasks:
        return
    _, pending = await asyncio.wait(tasks, timeout=timeout)
    for task in pending:
        task.cancel()
    results = await asyncio.gather(*tasks, return_exceptions=True)
    for result in results:
        if isinstance(result, Exception):
            log.warning("an agent ended with %s: %s", type(result).__name__, result)
