"""What the demo has seen of its market, kept up to date from the wire.

A `Tally` is fed by `Watchers`: one public connection (trades, listings,
settlements and deliveries), one connection per trader on its private
``jobs`` channel, and a poll of ``GET /api/v1/nodes``. It holds plain
numbers — trades per instrument, every job's last state, the nodes with their
reputation — and a log of the notable events, which the summary shows.

CU spent is the FLOPs every job was billed for; CU saved is, over the jobs
that finished, what full depth would have cost less what they were billed
(``full_flops − flops``): what the quality tiers and budgets saved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import aiohttp

from exchange.demo_wire import Wire, WireError

__all__ = ["JobRecord", "Market", "Tally", "Watchers", "sim_time"]

log = logging.getLogger("cux.demo")

FLOPS_PER_CU = 10**9
_TERMINAL = frozenset({"done", "failed", "cancelled"})


@dataclass(slots=True)
class Market:
    """Trades of one instrument."""

    trades: int = 0
    lots: int = 0
    last_price: int | None = None
    settlement: int | None = None


@dataclass(slots=True)
class JobRecord:
    """A job's last state, from the ``jobs`` channel."""

    account: str
    symbol: str
    status: str
    tier: str
    inputs: int
    flops: int
    full_flops: int
    cost: int
    refund: int
    reason: str | None


@dataclass
class Tally:
    """The demo's view of its market (see the module doc).

    Attributes:
        speed: the exchange's clock speed.
        markets: trades by instrument.
        jobs: every job seen, by (account, job id).
        nodes: the last ``/api/v1/nodes`` listing.
        events: the notable events so far, oldest first, with the real
            seconds since the start.
        stage: what the demo is doing, in a few words.
    """

    speed: float
    started: float = field(default_factory=time.monotonic)
    markets: dict[str, Market] = field(default_factory=dict)
    jobs: dict[tuple[str, str], JobRecord] = field(default_factory=dict)
    nodes: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[float, str]] = field(default_factory=list)
    stage: str = "starting"
    on_event: Callable[[float, str], None] | None = None
    _clock: tuple[int, float] | None = None
    _signals: dict[str, asyncio.Event] = field(default_factory=dict)
    recent: deque[tuple[float, str]] = field(default_factory=lambda: deque(maxlen=8))

    # -- time ------------------------------------------------------------------------

    def elapsed(self) -> float:
        """Real seconds since the demo started."""
        return time.monotonic() - self.started

    def set_clock(self, server_time: int) -> None:
        """The exchange's clock read now (ns), to tell simulated time from."""
        self._clock = (server_time, time.monotonic())

    def sim_now(self) -> int | None:
        """The exchange's simulated time now, ns; None before it is known."""
        if self._clock is None:
            return None
        server_time, at = self._clock
        return server_time + int((time.monotonic() - at) * self.speed * 1e9)

    def real_seconds_until(self, sim_ns: int) -> float:
        """Real seconds until the exchange's clock reaches ``sim_ns``."""
        now = self.sim_now()
        return 0.0 if now is None else (sim_ns - now) / 1e9 / self.speed

    # -- events ----------------------------------------------------------------------

    def event(self, text: str) -> None:
        """Note a notable event."""
        entry = (self.elapsed(), text)
        self.events.append(entry)
        self.recent.append(entry)
        log.info("%s", text)
        if self.on_event is not None:
            self.on_event(*entry)

    def signal(self, name: str) -> asyncio.Event:
        """The event set when ``name`` happens (``listed.SYMBOL``,
        ``settled.SYMBOL``, ``started.SYMBOL``, ``ended.SYMBOL``,
        ``job.ACCOUNT.ID``)."""
        found = self._signals.get(name)
        if found is None:
            found = self._signals[name] = asyncio.Event()
        return found

    # -- what the wire says ----------------------------------------------------------

    def on_public(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "trade":
            market = self.markets.setdefault(message["symbol"], Market())
            market.trades += 1
            market.lots += int(message["qty"])
            market.last_price = int(message["price"])
        elif kind == "heartbeat":
            self.set_clock(int(message["server_time"]))
        elif kind == "settlement":
            symbol = message["symbol"]
            price = message.get("price")
            self.markets.setdefault(symbol, Market()).settlement = price
            shown = "no trade" if price is None else f"{price:,} µcr per lot"
            self.event(f"{symbol}: gate passed, settlement price {shown}")
            self.signal(f"settled.{symbol}").set()
        elif kind == "delivery":
            symbol = message["symbol"]
            if message.get("status") == "started":
                lots = message.get("lots") or 0
                self.event(f"{symbol}: delivery started, {lots} lots become leases")
                self.signal(f"started.{symbol}").set()
            else:
                self.event(f"{symbol}: window ended, leases expired, sellers paid")
                self.signal(f"ended.{symbol}").set()

    def on_job(self, account: str, message: dict[str, Any]) -> None:
        if message.get("type") != "job":
            return
        job_id = str(message["job_id"])
        self.jobs[(account, job_id)] = JobRecord(
            account=account,
            symbol=str(message.get("symbol", "")),
            status=str(message["status"]),
            tier=str(message.get("tier", "")),
            inputs=int(message.get("inputs", 0)),
            flops=int(message.get("flops", 0)),
            full_flops=int(message.get("full_flops", 0)),
            cost=int(message.get("cost", 0)),
            refund=int(message.get("refund", 0)),
            reason=message.get("reason"),
        )
        if message["status"] in _TERMINAL:
            self.signal(f"job.{account}.{job_id}").set()

    # -- figures ---------------------------------------------------------------------

    def count_jobs(self, status: str) -> int:
        return sum(job.status == status for job in self.jobs.values())

    @property
    def trades(self) -> int:
        return sum(m.trades for m in self.markets.values())

    @property
    def cu_spent(self) -> float:
        return sum(job.flops for job in self.jobs.values()) / FLOPS_PER_CU

    @property
    def cu_saved(self) -> float:
        saved = sum(
            job.full_flops - job.flops
            for job in self.jobs.values()
            if job.status == "done"
        )
        return saved / FLOPS_PER_CU

    @property
    def paid(self) -> int:
        """µcr the consumers paid for their jobs (usage and fees)."""
        return sum(job.cost for job in self.jobs.values())


def sim_time(ns: int | None) -> str:
    """A simulated time as ``YYYY-MM-DD HH:MM`` UTC."""
    if ns is None:
        return "--"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M")


class Watchers:
    """The connections and the poll that feed a `Tally`."""

    def __init__(self, tally: Tally, url: str, http: str) -> None:
        self.tally = tally
        self.url = url
        self.http = http
        self.public: Wire | None = None
        self.private: dict[str, Wire] = {}
        self._poll: asyncio.Task[None] | None = None

    async def start(self, symbol: str, traders: list[str]) -> None:
        """Watch ``symbol``'s trades, the listings and the traders' jobs."""
        self.public = await Wire.open(self.url, on_message=self.tally.on_public)
        self.tally.set_clock(self.public.server_time)
        await self.public.subscribe(f"trades.{symbol}", "instruments")
        for account in traders:
            wire = await Wire.open(
                self.url,
                account,
                f"{account}-secret",
                _job_handler(self.tally, account),
            )
            await wire.subscribe("jobs")
            self.private[account] = wire
        self._poll = asyncio.create_task(self._poll_nodes())

    async def watch(self, symbol: str) -> None:
        """Also watch ``symbol``'s trades (a future, once listed)."""
        if self.public is not None:
            await self.public.subscribe(f"trades.{symbol}")

    async def balances(self, accounts: list[str]) -> dict[str, dict[str, int]]:
        """Each account's balances now (µcr), read on its own connection."""
        found = {}
        for account in accounts:
            try:
                wire = await Wire.open(self.url, account, f"{account}-secret")
            except (WireError, aiohttp.ClientError, OSError):
                continue
            try:
                found[account] = await wire.request("balance")
            except WireError:
                pass
            finally:
                await wire.close()
        return found

    async def refresh_nodes(self) -> None:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{self.http}/api/v1/nodes") as reply,
        ):
            body = await reply.json()
        self.tally.nodes = list(body.get("nodes", []))

    async def stop(self) -> None:
        if self._poll is not None:
            self._poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poll
        wires = [*self.private.values(), *([self.public] if self.public else [])]
        for wire in wires:
            await wire.close()

    async def _poll_nodes(self) -> None:
        while True:
            with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
                await self.refresh_nodes()
            await asyncio.sleep(1.0)


def _job_handler(tally: Tally, account: str) -> Callable[[dict[str, Any]], None]:
    return lambda message: tally.on_job(account, message)
