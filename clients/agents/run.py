"""Run a set of agents against an exchange until told to stop.

`run_agents` connects each agent with its own SDK client (cancel-on-disconnect),
runs market makers and consumers side by side, and when ``stop`` is set stops
them all: makers cancel their quotes, consumers their running jobs. Consumers
start once every maker has quoted both sides, so that their first jobs meet a
book. It returns what each did. `willingness` spreads a willingness to pay over several
consumers, deterministically. ``python -m clients.agents`` is its command line.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from clients.agents.consumer import Consumer, ConsumerConfig
from clients.agents.corpus import load_passages
from clients.agents.maker import MakerConfig, MarketMaker
from clients.agents.prices import LotPricer
from clients.agents.venue import Venue, connect_venue

__all__ = ["Connect", "Credentials", "run_agents", "willingness"]

log = logging.getLogger("cux.agents")

Connect = Callable[..., contextlib.AbstractAsyncContextManager[Venue]]
"""How `run_agents` opens an agent's venue: ``connect(url, key, secret,
seed=...)``, like `connect_venue`."""


@dataclass(frozen=True, slots=True)
class Credentials:
    """An account's login key and secret."""

    key: str
    secret: str

    @classmethod
    def parse(cls, text: str) -> Credentials:
        """``KEY:SECRET``, or ``KEY`` alone for the secret ``KEY-secret``."""
        key, _, secret = text.partition(":")
        if not key:
            raise ValueError(f"not KEY:SECRET: {text!r}")
        return cls(key, secret or f"{key}-secret")


async def _first(*events: asyncio.Event) -> None:
    """Wait until one of ``events`` is set."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def willingness(count: int, center_bps: int, spread_bps: int, seed: int) -> list[int]:
    """``count`` willingness factors, basis points, drawn uniformly from
    ``center ± spread`` by ``random.Random(seed)``, each at least 1."""
    rng = random.Random(seed)
    return [
        max(1, center_bps + rng.randint(-spread_bps, spread_bps)) for _ in range(count)
    ]


async def run_agents(
    url: str,
    pricer: LotPricer,
    *,
    makers: Sequence[tuple[Credentials, MakerConfig]] = (),
    consumers: Sequence[tuple[Credentials, ConsumerConfig]] = (),
    stop: asyncio.Event,
    connect: Connect = connect_venue,
) -> dict[str, Any]:
    """Run the agents until ``stop`` is set (or every consumer's plan ended
    and no maker runs); what each did, by name.

    Each agent's client seeds its reconnection jitter with the agent's seed
    (a maker: its place in ``makers``). ``connect`` opens each agent's venue
    (``connect(url, key, secret, seed=...)``, an async context manager): the
    default, `connect_venue`, on a new SDK client; a benchmark wraps it to
    time the requests.
    """
    agents: list[MarketMaker | Consumer] = []
    passages = load_passages()
    halted = asyncio.Event()  # set on the way out: an agent still connecting
    # then stops as soon as it exists.

    def started(agent: MarketMaker | Consumer) -> None:
        agents.append(agent)
        if halted.is_set():
            agent.stop()

    # Consumers start once every maker quotes (or gave up), so that the first
    # jobs meet a book.
    unquoted = len(makers)
    quoted = asyncio.Event()
    if not makers:
        quoted.set()

    async def maker(index: int, who: Credentials, config: MakerConfig) -> None:
        nonlocal unquoted
        async with connect(url, who.key, who.secret, seed=index) as venue:
            agent = MarketMaker(venue, config, pricer.price)
            started(agent)
            running = asyncio.create_task(agent.run())
            await _first(agent.ready, halted)
            unquoted -= 1
            if unquoted == 0:
                quoted.set()
            await running

    async def consumer(who: Credentials, config: ConsumerConfig) -> None:
        await _first(quoted, halted)
        if halted.is_set():
            return
        async with connect(url, who.key, who.secret, seed=config.seed) as venue:
            agent = Consumer(venue, config, pricer.price, passages)
            started(agent)
            await agent.run()

    maker_tasks = [
        asyncio.create_task(maker(i, who, config))
        for i, (who, config) in enumerate(makers)
    ]
    consumer_tasks = [
        asyncio.create_task(consumer(who, config)) for who, config in consumers
    ]
    watcher = asyncio.create_task(stop.wait())
    running: set[asyncio.Task[Any]] = {watcher, *maker_tasks, *consumer_tasks}
    try:
        while not stop.is_set():
            done, running = await asyncio.wait(
                running, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done - {watcher}:
                if task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            if consumer_tasks and not running.intersection(consumer_tasks):
                break  # every consumer's plan ended: nothing more to make
            if running == {watcher}:
                break
    finally:
        halted.set()
        for agent in agents:
            agent.stop()
        await asyncio.gather(*maker_tasks, *consumer_tasks, return_exceptions=True)
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
    return {agent.config.name: dataclasses.asdict(agent.stats) for agent in agents}
