"""The demo's futures window: listed, quoted by the nodes, made a market in, bought,
delivered and used.

1. The operator lists the next whole simulated hour whose gate is at least
   `MIN_LEAD_SECONDS` (simulated) away (``list_future``).
2. Each provider's node quotes the window itself, as it quotes the spot book
   (`cux node`): its share of the capacity over the window, at its
   reservation price plus the markup of what it sold.
3. The market maker (`clients.agents.MarketMaker`, a consumer account) quotes
   both sides around the H100's upper-quartile price: it buys capacity the
   providers sell below its bid and sells it on (a consumer can sell back what
   it bought, until the gate). It stops at the gate.
4. The futures buyer buys `BUY_LOTS` lots with an IOC order, some seconds
   before the closing call, at up to its willingness to pay.
5. At the window's start its position becomes leases on the providers'
   nodes; it then embeds passages on them (``submit_job`` with ``leases``),
   one job after another while the leases have room, until the window ends.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime

from clients import Client
from clients.agents import MarketMaker, connect_venue, estimated_flops
from clients.errors import ClientError
from clients.messages import LeaseUpdate
from clients.subscriptions import Subscription
from exchange.demo_market import (
    CLASS,
    CLOSING_CALL_SECONDS,
    GATE_SECONDS,
    LOT_CU,
    DemoPlan,
)
from exchange.demo_tally import FLOPS_PER_CU, Tally, Watchers, sim_time
from exchange.demo_wire import Wire

__all__ = ["FuturesScenario"]

log = logging.getLogger("cux.demo")

HOUR_NS = 3600 * 10**9
MIN_LEAD_SECONDS = 420
"""The least simulated time from the listing to the gate."""
BUY_LOTS = 32
"""What the futures buyer buys: more than the cheapest node can sell of the
window (22 lots), so that its leases, and its jobs, run on two nodes or more."""
BUYER_WILLINGNESS_BPS = 15_000
JOB_PASSAGES = 8


class FuturesScenario:
    """Runs steps 1–5 of the module doc for one window."""

    def __init__(
        self,
        plan: DemoPlan,
        url: str,
        tally: Tally,
        watchers: Watchers,
        passages: Sequence[str],
    ) -> None:
        self.plan = plan
        self.url = url
        self.tally = tally
        self.watchers = watchers
        self.passages = passages
        self.symbol: str | None = None
        self.start = 0
        self.maker: MarketMaker | None = None
        self.jobs: list[str] = []
        self.bought = 0
        self.leases: dict[int, int] = {}
        self._rng = random.Random(plan.seed)

    async def run(self) -> None:
        """Run the window to its end (cancel the task to stop it earlier)."""
        symbol = await self._list()
        await self.watchers.watch(symbol)
        maker = asyncio.create_task(self._make_market(symbol))
        try:
            await self._buy(symbol)
            await self.tally.signal(f"settled.{symbol}").wait()
        finally:
            # At the gate, or when the demo stops: the maker cancels its quotes.
            if self.maker is not None:
                self.maker.stop()
            else:
                maker.cancel()
            await asyncio.gather(maker, return_exceptions=True)
            if self.maker is not None:
                stats = self.maker.stats
                self.tally.event(
                    f"{self.plan.maker.name} (market maker) bought {stats.bought} and "
                    f"sold {stats.sold} lots of {symbol}"
                )
        await self._use_leases(symbol)

    # -- 1. listing ------------------------------------------------------------------

    async def _list(self) -> str:
        operator = await Wire.open(self.url, "operator", "operator-secret")
        try:
            now = operator.server_time
            start = -(-(now + (GATE_SECONDS + MIN_LEAD_SECONDS) * 10**9) // HOUR_NS)
            self.start = start * HOUR_NS
            await operator.request(
                "list_future", resource_class=CLASS, start=self.start, hours=1
            )
        finally:
            await operator.close()
        moment = datetime.fromtimestamp(self.start / 1e9, UTC)
        self.symbol = f"{CLASS}-{moment:%Y%m%dT%H}"
        gate = self.start - GATE_SECONDS * 10**9
        self.tally.event(
            f"operator listed {self.symbol}: delivery {sim_time(self.start)} UTC for "
            f"an hour; gate {sim_time(gate)} (in "
            f"{self.tally.real_seconds_until(gate):.0f} s)"
        )
        return self.symbol

    async def _make_market(self, symbol: str) -> None:
        c = self.plan.maker
        offset = self.plan.offset(self.tally.sim_now() or self.plan.clock_start)
        pricer = replace(self.plan.pricer, statistic="p75")
        config = replace(c, symbol=symbol, start_offset=offset)
        async with connect_venue(self.url, c.name, f"{c.name}-secret") as venue:
            self.maker = MarketMaker(venue, config, pricer.price)
            await self.maker.run()

    # -- 4. the buyer ------------------------------------------------------------------

    async def _buy(self, symbol: str) -> None:
        call = self.start - (GATE_SECONDS + CLOSING_CALL_SECONDS) * 10**9
        wait = min(6.0, self.tally.real_seconds_until(call) - 2.0)
        await asyncio.sleep(max(0.0, wait))
        offset = self.plan.offset(self.start)
        price = self.plan.pricer.price(offset) * BUYER_WILLINGNESS_BPS // 10_000
        buyer = self.plan.futures_buyer
        async with Client(self.url, buyer, f"{buyer}-secret") as client:
            try:
                order = await client.place(symbol, "buy", BUY_LOTS, price, tif="IOC")
                result = await client.wait_order(order.order_id, timeout=10)
            except (ClientError, TimeoutError) as exc:
                self.tally.event(f"{buyer} could not buy {symbol}: {exc}")
                return
        self.bought = result.filled
        self.tally.event(
            f"{buyer} bought {result.filled} of {BUY_LOTS} lots of {symbol} "
            f"(limit {price:,} µcr) before the gate"
        )

    # -- 5. jobs on the leases ---------------------------------------------------------

    async def _use_leases(self, symbol: str) -> None:
        if not self.bought:
            return
        buyer = self.plan.futures_buyer
        async with Client(self.url, buyer, f"{buyer}-secret") as client:
            leases = await client.subscribe("leases")
            reader = asyncio.create_task(self._read_leases(leases, symbol))
            try:
                await self.tally.signal(f"started.{symbol}").wait()
                await asyncio.sleep(1.0)  # every lease of the delivery arrives
                if not self.leases:
                    self.tally.event(f"{buyer} got no lease of {symbol}")
                    return
                self.tally.event(
                    f"{buyer} holds {len(self.leases)} leases of {symbol} "
                    f"({sum(self.leases.values())} lots): runs jobs on them"
                )
                await self._run_jobs(client, symbol)
            finally:
                reader.cancel()
                await asyncio.gather(reader, return_exceptions=True)
                await leases.close()

    async def _read_leases(self, leases: Subscription, symbol: str) -> None:
        buyer = self.plan.futures_buyer
        async for message in leases:
            if (
                isinstance(message, LeaseUpdate)
                and message.symbol == symbol
                and message.consumer == buyer
                and message.status == "active"
            ):
                self.leases[message.lease_id] = message.lots

    async def _run_jobs(self, client: Client, symbol: str) -> None:
        buyer = self.plan.futures_buyer
        room = sum(self.leases.values()) * LOT_CU * FLOPS_PER_CU
        ended = self.tally.signal(f"ended.{symbol}")
        while not ended.is_set():
            inputs = [self._rng.choice(self.passages) for _ in range(JOB_PASSAGES)]
            flops = sum(estimated_flops(text) for text in inputs)
            if flops > room:
                self.tally.event(f"{buyer}'s leases of {symbol} are used up")
                return
            try:
                job_id = await client.submit_job(
                    symbol,
                    inputs,
                    budget_cu=-(-flops // FLOPS_PER_CU),
                    leases=sorted(self.leases),
                )
            except ClientError as exc:
                self.tally.event(f"{buyer}'s job on its leases was refused: {exc}")
                return
            self.jobs.append(job_id)
            await self.tally.signal(f"job.{buyer}.{job_id}").wait()
            job = self.tally.jobs[(buyer, job_id)]
            room -= job.flops
            self.tally.event(
                f"{buyer}'s job {job_id} on its {symbol} leases: {job.status}, "
                f"{job.flops / FLOPS_PER_CU:.1f} CU"
            )
            if job.status != "done":
                return
            await asyncio.sleep(3.0)
