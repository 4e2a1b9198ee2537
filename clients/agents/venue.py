"""What an agent needs of the exchange: `Venue`, and `WireVenue`, which speaks it.

Agents trade through the small `Venue` interface rather than a client class,
so that one agent runs on the project's SDK, on a test double or on
`WireVenue`, a minimal websocket connection of its own (JSON frames, DESIGN
section 8). `Venue.events` yields the account's private messages as the wire
carries them (plain dicts, tagged by ``type``): ``order``, ``fill`` and, once
the server has jobs, ``job``.

A refused request raises `VenueError` with the server's code and message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any, Protocol

import aiohttp

__all__ = ["Venue", "VenueError", "WireVenue", "wire_venue"]

log = logging.getLogger("cux.agents")

_RESPONSES = frozenset({"ack", "error", "result", "subscribed", "pong"})
_PRIVATE = frozenset({"order", "fill", "job"})


class VenueError(Exception):
    """The exchange refused a request: ``code`` is its stable error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


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
        post_only: bool = False,
    ) -> str:
        """Enter a limit order; its order id."""
        ...

    async def amend(
        self, order_id: str, *, qty: int | None = None, price: int | None = None
    ) -> None:
        """Change an open order's leaves and/or price."""
        ...

    async def cancel(self, order_id: str) -> None:
        """Cancel an open order."""
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

    def events(self) -> AsyncIterator[dict[str, Any]]:
        """The account's private messages (``order``, ``fill``, ``job``), in
        arrival order, until the venue closes."""
        ...


class WireVenue:
    """A `Venue` on one websocket of its own.

    Use `WireVenue.connect`; `close` ends it. It logs in with
    cancel-on-disconnect (an agent's quotes never outlive it) and subscribes to
    ``orders`` and ``fills``, and to ``jobs`` where the server has that
    channel.

    Args:
        ws: an open websocket whose ``hello`` was read.
        session: the HTTP session that owns it (closed with the venue).
        timeout: seconds to wait for a response.
    """

    def __init__(
        self,
        ws: aiohttp.ClientWebSocketResponse,
        session: aiohttp.ClientSession,
        timeout: float = 10.0,
    ) -> None:
        self._ws = ws
        self._session = session
        self._timeout = timeout
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._reader = asyncio.create_task(self._read())
        self.jobs_channel = False

    @classmethod
    async def connect(
        cls, url: str, key: str, secret: str, timeout: float = 10.0
    ) -> WireVenue:
        """Connect to ``url`` (``ws://HOST:PORT/ws``), log in as ``key`` and
        subscribe.

        Raises:
            VenueError: the server refused the login or a subscription.
            aiohttp.ClientError: no connection.
        """
        session = aiohttp.ClientSession()
        try:
            ws = await session.ws_connect(url, max_msg_size=1 << 24)
            hello = json.loads(await ws.receive_str(timeout=timeout))
            venue = cls(ws, session, timeout)
        except BaseException:
            await session.close()
            raise
        try:
            signature = hmac.new(
                secret.encode(), str(hello["nonce"]).encode(), hashlib.sha256
            ).hexdigest()
            await venue._request(
                "login", key=key, signature=signature, cancel_on_disconnect=True
            )
            await venue._request("subscribe", channels=["orders", "fills"])
            try:
                await venue._request("subscribe", channels=["jobs"])
                venue.jobs_channel = True
            except VenueError as exc:
                if exc.code != "UNKNOWN_CHANNEL":
                    raise
        except BaseException:
            await venue.close()
            raise
        return venue

    async def close(self) -> None:
        """Close the connection; `events` ends."""
        await self._ws.close()
        self._reader.cancel()
        await asyncio.gather(self._reader, return_exceptions=True)
        await self._session.close()

    # -- the Venue interface -------------------------------------------------------

    async def place(
        self,
        *,
        symbol: str,
        side: str,
        qty: int,
        price: int,
        tif: str = "GTC",
        client_order_id: str | None = None,
        post_only: bool = False,
    ) -> str:
        ack = await self._request(
            "place",
            symbol=symbol,
            side=side,
            type="limit",
            qty=qty,
            price=price,
            tif=tif,
            client_order_id=client_order_id,
            post_only=post_only,
        )
        return str(ack["order_id"])

    async def amend(
        self, order_id: str, *, qty: int | None = None, price: int | None = None
    ) -> None:
        await self._request("amend", order_id=order_id, qty=qty, price=price)

    async def cancel(self, order_id: str) -> None:
        await self._request("cancel", order_id=order_id)

    async def cancel_all(self, symbol: str | None = None) -> int:
        ack = await self._request("cancel_all", symbol=symbol)
        return int(ack.get("cancelled") or 0)

    async def submit_job(
        self,
        *,
        symbol: str,
        inputs: list[str],
        tier: str,
        budget_cu: int,
        max_price: int,
    ) -> str:
        ack = await self._request(
            "submit_job",
            symbol=symbol,
            inputs=inputs,
            tier=tier,
            budget_cu=budget_cu,
            max_price=max_price,
        )
        return str(ack["job_id"])

    async def cancel_job(self, job_id: str) -> None:
        await self._request("cancel_job", job_id=job_id)

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        while (message := await self._events.get()) is not None:
            yield message

    # -- the connection ------------------------------------------------------------

    async def _request(self, op: str, **fields: Any) -> dict[str, Any]:
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[request_id] = future
        frame = {"op": op, "id": request_id}
        frame.update({k: v for k, v in fields.items() if v is not None})
        try:
            await self._ws.send_str(json.dumps(frame))
            response = await asyncio.wait_for(future, self._timeout)
        finally:
            self._pending.pop(request_id, None)
        if response.get("type") == "error":
            raise VenueError(str(response.get("code")), str(response.get("message")))
        return response

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if frame.type == aiohttp.WSMsgType.TEXT:
                    self._dispatch(json.loads(frame.data))
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("the connection closed"))
            self._events.put_nowait(None)

    def _dispatch(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        future = self._pending.get(message.get("id"))  # type: ignore[arg-type]
        if kind in _RESPONSES and future is not None:
            if not future.done():
                future.set_result(message)
        elif kind in _PRIVATE:
            self._events.put_nowait(message)
        else:
            log.debug("< %s", kind)


@contextlib.asynccontextmanager
async def wire_venue(url: str, key: str, secret: str) -> AsyncIterator[WireVenue]:
    """A `WireVenue` for the length of the block."""
    venue = await WireVenue.connect(url, key, secret)
    try:
        yield venue
    finally:
        await venue.close()
