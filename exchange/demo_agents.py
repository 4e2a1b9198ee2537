"""The demo's traders: the consumer agents and the futures window's cast.

`Agents.start` starts, once the nodes have registered, one
`clients.agents.Consumer` per consumer of the plan (each on its own SDK
connection, with cancel-on-disconnect) and the futures window
(`exchange.demo_futures.FuturesScenario`: operator, provider desks, market
maker and buyer). `Agents.stop` asks them all to stop — the consumers cancel
their running jobs, the maker its quotes — and waits for them, cancelling
what has not ended within a deadline.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from clients.agents import Consumer, ConsumerConfig, connect_venue
from exchange.demo_futures import FuturesScenario
from exchange.demo_market import DemoPlan
from exchange.demo_tally import Tally, Watchers

__all__ = ["Agents"]

log = logging.getLogger("cux.demo")


class Agents:
    """The consumers and the futures window of one demo (see the module doc)."""

    def __init__(self, plan: DemoPlan, url: str, tally: Tally) -> None:
        self.plan = plan
        self.url = url
        self.tally = tally
        self.consumers: list[Consumer] = []
        self.futures: FuturesScenario | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self._futures_task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self, watchers: Watchers, passages: Sequence[str]) -> None:
        """Start the consumers and the futures window, at the market's time."""
        offset = self.plan.offset(self.tally.sim_now() or self.plan.clock_start)
        price = self.plan.pricer.price
        for config in self.plan.consumers:
            config = replace(config, start_offset=offset)
            self._tasks.append(
                asyncio.create_task(self._consumer(config, price, passages))
            )
        self.futures = FuturesScenario(
            self.plan, self.url, self.tally, watchers, passages
        )
        self._futures_task = asyncio.create_task(self._run_futures(self.futures))
        self._tasks.append(self._futures_task)

    def refused(self) -> dict[str, int]:
        """The consumers' job orders the exchange refused so far, by code."""
        total: dict[str, int] = {}
        for consumer in self.consumers:
            for code, count in consumer.stats.refused.items():
                total[code] = total.get(code, 0) + count
        return total

    async def stop(self, timeout: float = 15.0) -> None:
        """Stop every agent; wait ``timeout`` seconds for them to end by
        themselves, then cancel the rest."""
        self._stopping = True
        for consumer in self.consumers:
            consumer.stop()
        if self._futures_task is not None:
            self._futures_task.cancel()  # its maker cancels its quotes on the way
        if not self._tasks:
            return
        _, pending = await asyncio.wait(self._tasks, timeout=timeout)
        for task in pending:
            task.cancel()
        for result in await asyncio.gather(*self._tasks, return_exceptions=True):
            if isinstance(result, Exception):
                log.warning("an agent ended with %s: %s", type(result).__name__, result)

    async def _consumer(
        self,
        config: ConsumerConfig,
        price: Callable[[float], int],
        passages: Sequence[str],
    ) -> None:
        secret = f"{config.name}-secret"
        async with connect_venue(self.url, config.name, secret, seed=config.seed) as v:
            consumer = Consumer(v, config, price, passages)
            self.consumers.append(consumer)
            if self._stopping:
                consumer.stop()
            await consumer.run()

    async def _run_futures(self, futures: FuturesScenario) -> None:
        try:
            await futures.run()
        except Exception as exc:
            # The spot market goes on without it.
            log.exception("the futures window failed")
            self.tally.event(f"the futures window failed: {type(exc).__name__}: {exc}")
