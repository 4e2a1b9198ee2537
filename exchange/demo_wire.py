"""A bare websocket session for the demo's own watchers and its operator.

The demo's agents trade through the SDK (`clients`); its summary reads the
wire as it is, so that it shows every field the server sends (a job's
``full_flops``, say) and depends on no client-side decoding. `Wire` logs in
with the HMAC of the server's nonce, matches responses to requests by id, and
hands every other message, as a plain dict, to the ``on_message`` callback.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from clients.auth import signature

__all__ = ["Wire", "WireError"]

log = logging.getLogger("cux.demo")

_RESPONSES = frozenset({"ack", "error", "result", "subscribed", "pong"})


class WireError(Exception):
    """The server answered a request with an error, or the connection ended.

    Attributes:
        code: the server's error code; ``CONNECTION_LOST`` when no answer came.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class Wire:
    """One websocket connection, logged in as ``key`` when given.

    Use `Wire.open`; `close` ends it. ``server_time`` is the server's clock
    (ns) in its ``hello``: with a simulated clock, the simulated time.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        ws: aiohttp.ClientWebSocketResponse,
        hello: dict[str, Any],
        on_message: Callable[[dict[str, Any]], None],
    ) -> None:
        self._http = http
        self._ws = ws
        self.server_time = int(hello["server_time"])
        self._nonce = str(hello["nonce"])
        self._on_message = on_message
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def open(
        cls,
        url: str,
        key: str | None = None,
        secret: str = "",
        on_message: Callable[[dict[str, Any]], None] = lambda message: None,
    ) -> Wire:
        """Connect to ``url`` (``ws://host:port/ws``) and log in as ``key``.

        Raises:
            WireError: the login was refused.
            aiohttp.ClientError, OSError: the server cannot be reached.
        """
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(url, max_msg_size=2**24, heartbeat=20)
            hello = json.loads(await ws.receive_str(timeout=10))
            wire = cls(http, ws, hello, on_message)
        except BaseException:
            await http.close()
            raise
        if key is not None:
            try:
                await wire.request(
                    "login", key=key, signature=signature(secret, wire._nonce)
                )
            except BaseException:
                await wire.close()
                raise
        return wire

    async def request(
        self, op: str, timeout: float = 10.0, **fields: Any
    ) -> dict[str, Any]:
        """Send ``op`` with ``fields``; the response.

        Raises:
            WireError: the server refused it, or no answer came.
        """
        rid = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[rid] = future
        try:
            await self._ws.send_str(json.dumps({"op": op, "id": rid, **fields}))
            reply = await asyncio.wait_for(future, timeout)
        except (ConnectionError, RuntimeError, TimeoutError) as exc:
            raise WireError(
                "CONNECTION_LOST", f"{op}: {exc or type(exc).__name__}"
            ) from None
        finally:
            self._pending.pop(rid, None)
        if reply["type"] == "error":
            raise WireError(str(reply.get("code")), str(reply.get("message")))
        return reply

    async def subscribe(self, *channels: str) -> None:
        """Subscribe to ``channels``; their messages go to ``on_message``."""
        await self.request("subscribe", channels=list(channels))

    async def close(self) -> None:
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader
        await self._ws.close()
        await self._http.close()

    async def _read(self) -> None:
        try:
            async for frame in self._ws:
                if frame.type != aiohttp.WSMsgType.TEXT:
                    continue
                message = json.loads(frame.data)
                future = self._pending.get(message.get("id") or 0)
                if message.get("type") in _RESPONSES and future is not None:
                    if not future.done():
                        future.set_result(message)
                else:
                    try:
                        self._on_message(message)
                    except Exception:
                        log.exception("a message could not be handled: %s", message)
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ConnectionError("connection closed"))
