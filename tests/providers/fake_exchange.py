"""A fake exchange for the daemon's tests: an aiohttp websocket on loopback.

It speaks just enough of the protocol for a provider node (hello, login,
register_node, subscribe, place, amend, cancel, cancel_all, ping), answers
every request with an ack, records every request it received, lets a test push
private messages (an order update, a fill, a lease) and drop the connection.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from typing import Any

from aiohttp import web


class FakeExchange:
    """Start with `start`; ``url`` is then its websocket address."""

    def __init__(self, capacity: dict[str, int] | None = None) -> None:
        self.capacity = capacity
        self.spot_leases: dict[str, int] | None = None
        """The live spot leases the ``register_node`` ack lists, if any."""
        self.received: list[dict[str, Any]] = []
        self.connections = 0
        self._ws: web.WebSocketResponse | None = None
        self._order_ids = itertools.count(1)
        self._runner: web.AppRunner | None = None
        self.open_orders: dict[str, dict[str, Any]] = {}
        self.refuse: dict[str, str] = {}
        """Ops to answer with an error, and its code."""
        self.instruments: list[dict[str, Any]] | None = None
        """What ``GET /api/v1/instruments`` lists; None: it answers 404."""
        self._last_order = ""
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/ws", self._handle)
        app.router.add_get("/api/v1/instruments", self._instruments)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.url = f"ws://127.0.0.1:{port}/ws"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def ops(self, op: str) -> list[dict[str, Any]]:
        """The requests received with ``op``, oldest first."""
        return [r for r in self.received if r["op"] == op]

    async def wait_for(self, op: str, count: int = 1, timeout: float = 10.0) -> None:
        """Wait until ``count`` requests with ``op`` have come."""
        async with asyncio.timeout(timeout):
            while len(self.ops(op)) < count:
                await asyncio.sleep(0.01)

    async def push(self, message: dict[str, Any]) -> None:
        """Send a server message to the connected node."""
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))

    async def drop(self) -> None:
        """Close the node's connection from the server's side."""
        assert self._ws is not None
        await self._ws.close()

    async def _instruments(self, request: web.Request) -> web.Response:
        if self.instruments is None:
            raise web.HTTPNotFound()
        return web.json_response({"instruments": self.instruments})

    async def _handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._ws = ws
        self.connections += 1
        await ws.send_str(
            json.dumps({"type": "hello", "nonce": "n0nce", "server_time": 1})
        )
        async for frame in ws:
            message = json.loads(frame.data)
            self.received.append(message)
            await ws.send_str(json.dumps(self._answer(message)))
            if message["op"] == "place":
                self.open_orders[self._last_order] = message
            elif message["op"] == "cancel_all":
                await self._cancelled(ws)
        return ws

    async def _cancelled(self, ws: web.WebSocketResponse) -> None:
        """Tell the node its open orders were cancelled, as the server does."""
        for order_id, place in self.open_orders.items():
            await ws.send_str(
                json.dumps(
                    {
                        "type": "order",
                        "order_id": order_id,
                        "client_order_id": place["client_order_id"],
                        "symbol": place["symbol"],
                        "side": "sell",
                        "status": "cancelled",
                        "price": place["price"],
                        "filled": 0,
                        "leaves": 0,
                        "reason": "cancelled",
                        "ts": 1,
                    }
                )
            )
        self.open_orders.clear()

    def _answer(self, message: dict[str, Any]) -> dict[str, Any]:
        op, rid = message["op"], message["id"]
        if op in self.refuse:
            return {
                "type": "error",
                "id": rid,
                "code": self.refuse[op],
                "message": "no",
            }
        if op == "ping":
            return {"type": "pong", "id": rid, "server_time": 1}
        if op == "subscribe":
            return {"type": "subscribed", "id": rid, "channels": message["channels"]}
        if op == "login":
            return {"type": "ack", "id": rid, "account": message["key"]}
        if op == "register_node":
            ack: dict[str, Any] = {"type": "ack", "id": rid}
            if self.capacity is not None:
                ack["capacity"] = self.capacity
            if self.spot_leases is not None:
                ack["spot_leases"] = self.spot_leases
            return ack
        if op == "place":
            self._last_order = str(next(self._order_ids))
            return {"type": "ack", "id": rid, "order_id": self._last_order}
        if op == "cancel_all":
            return {"type": "ack", "id": rid, "cancelled": 1}
        return {"type": "ack", "id": rid}
