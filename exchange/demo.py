"""``cux demo``: a whole compute market on one machine, live.

`run_demo_market` starts, in this order:

1. ``cux serve`` as a child process, with a configuration it writes into the
   data folder (``DATA/demo.toml``: the market of `exchange.demo_market`, on
   a simulated clock) and its journal in ``DATA/journal``;
2. the watchers that feed the summary (`exchange.demo_tally`);
3. one ``cux node`` process per provider, each running the real model, with
   its own cost (a GPU's rental price) and capacity;
4. once the nodes have registered, the traders (`exchange.demo_agents`): the
   consumer agents, which submit job orders of CPython's documentation
   passages at their willingness to pay, and the futures window
   (`exchange.demo_futures`) with its market maker and buyer.

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
import importlib.util
import logging
import shutil
import signal
import sys
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
from rich.console import Console
from rich.live import Live

from clients.agents import load_gpu_prices, load_passages
from exchange.demo_agents import Agents
from exchange.demo_market import CLOCK_SPEED, SYMBOL, make_plan
from exchange.demo_procs import Children, DemoStartError
from exchange.demo_summary import Summary
from exchange.demo_tally import Tally, Watchers
from exchange.demo_wire import WireError

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
    """Run the demo (see the module doc); the exit status: 0 when it ran and
    stopped cleanly, 1 when it could not start or a child failed, 2 for a
    data folder in use or a missing model runtime."""
    if importlib.util.find_spec("torch") is None:
        print(
            "cux demo: the provider nodes need the model runtime: "
            "pip install -e '.[node]' (scripts/demo does it)",
            file=sys.stderr,
        )
        return 2
    data = options.data
    if data is None:
        data = DEFAULT_DATA / datetime.now().strftime("%Y%m%d-%H%M%S")
    problem = _data_problem(data)
    if problem is not None:
        print(f"cux demo: {problem}", file=sys.stderr)
        return 2
    _log_to(data / "logs" / "demo.log")
    return asyncio.run(_Demo(replace(options, data=data)).run())


def _data_problem(data: Path) -> str | None:
    """Why ``data`` cannot be this run's data folder, or None once its
    ``logs`` folder is made."""
    journal = data / "journal"
    if data.exists() and not data.is_dir():
        return f"--data {data} is a file, not a folder; give a new --data folder"
    if journal.is_dir() and any(journal.iterdir()):
        return (
            f"{data} already holds a journal; give a new --data folder "
            "(each run starts a new market)"
        )
    try:
        (data / "logs").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        where = exc.filename or data
        return f"cannot make the data folder {data}: {where}: {exc.strerror}"
    return None


def _forget_journal(data: Path) -> None:
    """Remove the journal and snapshots a server that never served wrote (the
    folder held no journal before it started), so that the folder can be used
    again."""
    for name in ("journal", "snapshots"):
        shutil.rmtree(data / name, ignore_errors=True)


def _log_to(path: Path) -> None:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(
        logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(logging.INFO)


class _Demo:
    """One run: its children, watchers, agents and view."""

    def __init__(self, options: DemoOptions) -> None:
        assert options.data is not None
        self.options = options
        self.data = options.data
        self.plan = make_plan(load_gpu_prices(), options.nodes, options.seed)
        self.tally = Tally(speed=CLOCK_SPEED)
        # Off a terminal (a pipe, a log), lines are not wrapped at 80 columns.
        self.console = Console(highlight=False, soft_wrap=True)
        self.children = Children(self.data)
        self.watchers: Watchers | None = None
        self.agents: Agents | None = None
        self.stop = asyncio.Event()
        self.reason = "stopped"
        self.balances: dict[str, dict[str, int]] = {}

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        # SIGHUP too: a closed terminal stops the demo as cleanly as Ctrl-C.
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(sig, self._signalled, sig)
        config = self.data / "demo.toml"
        config.write_text(self.plan.config_toml(), encoding="utf-8")
        try:
            address = await self.children.start_server(
                config, self.options.host, self.options.port
            )
        except DemoStartError as exc:
            self.console.print(f"cux demo: {exc}", markup=False)
            await self.children.stop()
            _forget_journal(self.data)
            return 1
        try:
            status = await self._run_market(address)
        except (DemoStartError, WireError, aiohttp.ClientError, OSError) as exc:
            self.reason = f"{type(exc).__name__}: {exc}"
            self.console.print(f"cux demo: {self.reason}", markup=False)
            status = 1
        finally:
            notes = await self._shut_down()
        summary = Summary(self.tally, self.plan, f"{address}/", self._refused)
        events = [text for _, text in self.tally.events]
        report = summary.report(self.balances, self.data, events, notes, DEFAULT_DATA)
        with contextlib.suppress(OSError):  # the terminal may be gone
            self.console.print(report, markup=False)
        return status

    def _signalled(self, sig: int) -> None:
        self.reason = f"{signal.Signals(sig).name} received"
        self.stop.set()

    def _refused(self) -> dict[str, int]:
        return {} if self.agents is None else self.agents.refused()

    # -- start-up --------------------------------------------------------------------

    async def _run_market(self, address: str) -> int:
        url = address.replace("http://", "ws://") + "/ws"
        server = self.children.server
        assert server is not None
        self.console.print(f"cux demo: dashboard at {address}/  (data in {self.data})")
        self.console.print(f"cux demo: started cux serve (pid {server.pid})")
        self.watchers = Watchers(self.tally, url, address)
        await self.watchers.start(SYMBOL, self.plan.traders())
        self.tally.stage = "nodes loading the model"
        for spec in self.plan.nodes:
            if self.stop.is_set():
                break
            child = await self.children.start_node(spec, url, self.options.seed)
            self.console.print(
                f"cux demo: started cux node {spec.node_id} for {spec.account} "
                f"(pid {child.pid}, {spec.gpu} at ${spec.usd_per_hour}/h, "
                f"{spec.real_cu_per_second} CU/s)"
            )
        self.agents = Agents(self.plan, url, self.tally)
        summary = Summary(self.tally, self.plan, f"{address}/", self._refused)
        return await self._show(summary, self._open_market(self.agents, self.watchers))

    async def _open_market(self, agents: Agents, watchers: Watchers) -> None:
        """Once the nodes have registered, start the traders."""
        want = len(self.plan.nodes)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + NODES_TIMEOUT
        while len(self.tally.nodes) < want and loop.time() < deadline:
            if self.stop.is_set():
                return
            if not any(child.running for child in self.children.nodes):
                first = self.children.nodes[0] if self.children.nodes else None
                tail = "" if first is None else first.log_tail()
                raise DemoStartError(f"every cux node exited; the first's log:\n{tail}")
            await asyncio.sleep(0.5)
        if not self.tally.nodes:
            raise DemoStartError(f"no node registered in {NODES_TIMEOUT:.0f} s")
        self.tally.event(
            f"{len(self.tally.nodes)} of {want} nodes registered: the market opens"
        )
        self.tally.stage = "trading"
        agents.start(watchers, load_passages())

    # -- the view --------------------------------------------------------------------

    async def _show(self, summary: Summary, opening: Any) -> int:
        """Show ``summary`` until the end; the exit status."""
        opened = asyncio.ensure_future(opening)
        if self.console.is_terminal:
            with Live(summary, console=self.console, refresh_per_second=2):
                return await self._until_the_end(opened)
        self.tally.on_event = lambda at, text: self.console.print(
            f"[{at:4.0f} s] {text}", markup=False
        )
        printer = asyncio.create_task(self._print_status(summary))
        try:
            return await self._until_the_end(opened)
        finally:
            printer.cancel()

    async def _print_status(self, summary: Summary) -> None:
        while True:
            await asyncio.sleep(STATUS_EVERY)
            self.console.print(summary.status_line(), markup=False)

    async def _until_the_end(self, opened: asyncio.Future[None]) -> int:
        """Wait for a signal, the duration's end or a failure; the exit status."""
        server = self.children.server
        assert server is not None
        waits: set[asyncio.Future[Any]] = {
            asyncio.ensure_future(self.stop.wait()),
            asyncio.ensure_future(server.process.wait()),
        }
        if self.options.duration is not None:
            left = self.options.duration - self.tally.elapsed()
            waits.add(asyncio.ensure_future(asyncio.sleep(max(0.0, left))))
        failed = asyncio.ensure_future(_failure(opened))
        waits.add(failed)
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waits:
            waiter.cancel()
        opened.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await opened  # its failure, if any, is the one `failed` holds
        if not server.running:
            self.reason = f"cux serve exited with status {server.process.returncode}"
            return 1
        if failed.done() and not failed.cancelled() and failed.result() is not None:
            error = failed.result()
            self.reason = f"the market could not open: {error}"
            return 1
        if not self.stop.is_set():
            self.reason = f"--duration {self.options.duration:g} s reached"
        return 0

    # -- shutting down -----------------------------------------------------------------

    async def _shut_down(self) -> list[str]:
        """Stop the agents, read the final figures, stop the children."""
        self.tally.stage = "stopping"
        self.tally.event(f"stopping: {self.reason}")
        self.stop.set()
        if self.agents is not None:
            await self.agents.stop()
        server = self.children.server
        if self.watchers is not None and server is not None and server.running:
            await self._jobs_settle(timeout=5.0)
            with contextlib.suppress(WireError, aiohttp.ClientError, OSError):
                await self.watchers.refresh_nodes()
                accounts = [n.account for n in self.plan.nodes] + self.plan.traders()
                self.balances = await self.watchers.balances(accounts)
        if self.watchers is not None:
            await self.watchers.stop()
        return await self.children.stop()

    async def _jobs_settle(self, timeout: float) -> None:
        """Wait a little for the jobs just cancelled to report how they ended."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self.tally.count_jobs("running") and loop.time() < deadline:
            await asyncio.sleep(0.1)


async def _failure(opening: asyncio.Future[None]) -> BaseException | None:
    """The error the market's opening failed with; pends while it succeeds."""
    try:
        await asyncio.shield(opening)
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        log.error("the market could not open", exc_info=exc)
        return exc
    await asyncio.Event().wait()  # opened: no failure to report, ever
    return None
