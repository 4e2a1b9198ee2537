"""What an agent needs of the exchange: `Venue`, and `SdkVenue`, which gives it.

Agents trade through the small `Venue` interface rather than the whole SDK, so
that an agent runs on a real `clients.Client` (`SdkVenue`) as well as on a test
double. `Venue.private` yields the account's private messages as the wire
carries them (plain dicts, tagged by ``type``): ``order``, ``fill``, ``job``,
and ``resync`` when some may have been missed (after a reconnection).

A refused request raises `clients.errors.ServerError` (the server's code and
message); a request that got no answer raises another `clients.errors.
ClientError` (`ConnectionLost`, `RequestTimeout`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import msgspec

from clients.client import Client
from clients.errors import ProtocolError
from clients.subscriptions import Subscription

__all__ = ["SdkVenue", "Venue", "connect_venue"]

log = logging.getLogger("cux.agents")


class Venue(Protocol):
    """One logged-in account on the exchange, as an agent uses it."""

    async def place(
        self,
        *,
        symbol: str,
        side: str,
        qty: int,
        price: int,
        tif: str = "GTC",
        client_order_id: str | None = None,
    ) -> str:
        """Enter a limit order; its order id."""
        ...

    async def amend(
        self, order_id: str, *, qty: int | None = None, price: int | None = None
    ) -> None:
        """Change an open order's leaves and/or price."""
        ...

    async def cancel_all(self, symbol: str | None = None) -> int:
        """Cancel every open order of the account (of one instrument); how
        many were cancelled."""
        ...

    async def submit_job(
        self,
        *,
        symbol: str,
        inputs: list[str],
        tier: str,
        budget_cu: int,
        max_price: int,
    ) -> str:
        """Submit an embedding job as a job order (it buys spot lots IOC up to
        ``max_price`` and runs on them); its job id."""
        ...

    async def cancel_job(self, job_id: str) -> None:
        """Cancel a job that has not ended."""
        ...

    async def private(self) -> AsyncIterator[dict[str, Any]]:
        """Subscribe to the account's private messages (``order``, ``fill``,
        ``job``, ``resync``); once this returns, every later one arrives on
        the iterator, in order, until the venue closes."""
        ...


class SdkVenue:
    """A `Venue` on a started, logged-in `clients.Client`.

    Its `private` subscribes to ``orders`` and ``fills``, and to ``jobs`` where
    the server has that channel (``jobs`` says whether it has).
    """

    def __init__(self, client: Client) -> None:
        self.client = client
        self.jobs: bool | None = None

    async def place(
        self,
        *,
        symbol: str,
        side: str,
        qty: int,
        price: int,
        tif: str = "GTC",
        client_order_id: str | None = None,
    ) -> str:
        placed = await self.client.place(
            symbol, side, qty, price, tif=tif, client_order_id=client_order_id
        )
        return placed.order_id

    async def amend(
        self, order_id: str, *, qty: int | None = None, price: int | None = None
    ) -> None:
        await self.client.amend(order_id, qty=qty, price=price)

    async def cancel_all(self, symbol: str | None = None) -> int:
        return await self.client.cancel_all(symbol)

    async def submit_job(
        self,
        *,
        symbol: str,
        inputs: list[str],
        tier: str,
        budget_cu: int,
        max_price: int,
    ) -> str:
        return await self.client.submit_job(
            symbol, inputs, tier=tier, budget_cu=budget_cu, max_price=max_price
        )

    async def cancel_job(self, job_id: str) -> None:
        await self.client.cancel_job(job_id)

    async def private(self) -> AsyncIterator[dict[str, Any]]:
        return _as_dicts(await self._subscribe())

    async def _subscribe(self) -> Subscription:
        if self.jobs is not False:
            try:
                subscription = await self.client.subscribe("orders", "fills", "jobs")
                self.jobs = True
                return subscription
            except ProtocolError as exc:
                if exc.code != "UNKNOWN_CHANNEL":
                    raise
                self.jobs = False
                log.info("the server has no jobs channel: following orders only")
        return await self.client.subscribe("orders", "fills")


async def _as_dicts(subscription: Subscription) -> AsyncIterator[dict[str, Any]]:
    async with subscription:
        async for message in subscription:
            yield msgspec.to_builtins(message)


@contextlib.asynccontextmanager
async def connect_venue(
    url: str, key: str, secret: str, *, seed: int | None = None
) -> AsyncIterator[SdkVenue]:
    """An `SdkVenue` on a new `clients.Client` for the length of the block,
    with cancel-on-disconnect (an agent's quotes never outlive its
    connection); ``seed`` seeds its reconnection jitter."""
    async with Client(url, key, secret, cancel_on_disconnect=True, seed=seed) as cux:
        yield SdkVenue(cux)
