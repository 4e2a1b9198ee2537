"""The asyncio client: one websocket connection to a cux server.

```python
import asyncio

from clients import Client


async def main() -> None:
    async with Client("ws://127.0.0.1:8700/ws", "alice", "alice-secret") as cux:
        order = await cux.buy("cpu-SPOT", 10, price=1200)
        print(await cux.balance())
        async with await cux.subscribe("trades.cpu-SPOT") as trades:
            async for trade in trades:
                print(trade)
                break
        await cux.cancel(order.order_id)


asyncio.run(main())
```

`Client` logs in with the hex HMAC-SHA256 of the server's nonce under the
secret, matches every response to its request by id, and turns ``error``
responses into exceptions of `clients.errors` carrying the code and message.
When the connection drops it reconnects with exponential backoff and jitter,
logs in again and subscribes again to every channel its subscriptions read
(each yields a `clients.messages.Resync` first). Requests made while it
reconnects wait for the connection, up to their timeout; a request whose
connection dropped before its response raises `ConnectionLost` (it may have
been applied). A failed login on reconnecting (the account is gone) stops it:
subscriptions then end with `ClientClosed`.

With ``track_orders`` (the default, when logged in) it reads the account's
``orders`` and ``fills`` channels, so `wait_order` can return what became of
an order. With ``cancel_on_disconnect`` the server cancels the orders this
connection placed when it drops (the orders placed on a connection before a
reconnection are cancelled when that connection drops).

Known limitation: after a reconnection, an order that ended while the client
was away resolves `wait_order` with status ``unknown`` (the fills it missed are
not replayed; ``GET /api/v1/trades`` or the balance tell the rest).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Iterable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import aiohttp
import msgspec

from clients.auth import signature
from clients.config import DEFAULT_URL, Endpoint
from clients.errors import (
    MAX_FRAME,
    AuthError,
    ClientClosed,
    ClientError,
    ConnectionLost,
    ProtocolError,
    RequestTimeout,
    error_for,
)
from clients.jobs import JobsMixin
from clients.messages import (
    Fill,
    Heartbeat,
    OpenOrder,
    OrderUpdate,
    Resync,
    UnknownMessage,
    decode_message,
)
from clients.orders import OrderTracker
from clients.subscriptions import ChannelKey, Subscription, channel_key, channel_of
from clients.trading import TradingMixin

__all__ = ["Backoff", "Client"]

log = logging.getLogger("cux.clients")

T = TypeVar("T")

_RESPONSES = frozenset({"ack", "error", "result", "subscribed", "pong"})
_TRACKED: tuple[ChannelKey, ...] = (("orders", None), ("fills", None))


@dataclass(frozen=True)
class Backoff:
    """How long to wait before each reconnection attempt.

    Attempt n (from 0) waits ``min(maximum, initial * factor ** n)`` seconds,
    scaled by a random factor in ``[1 - jitter, 1 + jitter]``.

    Attributes:
        initial: seconds before the first attempt.
        maximum: the longest wait, in seconds.
        factor: growth per failed attempt.
        jitter: the random spread, a fraction (0 for none).
        attempts: attempts before giving up; None: never give up.
    """

    initial: float = 0.1
    maximum: float = 5.0
    factor: float = 2.0
    jitter: float = 0.25
    attempts: int | None = None

    def delay(self, attempt: int, rng: random.Random) -> float:
        base = min(self.maximum, self.initial * self.factor**attempt)
        return base * (1 + self.jitter * (2 * rng.random() - 1))


class _Envelope(msgspec.Struct):
    type: str
    id: int | None = None


class _ErrorBody(msgspec.Struct):
    code: str
    message: str


class _LoginAck(msgspec.Struct):
    account: str | None = None


class _OpenOrders(msgspec.Struct):
    orders: list[OpenOrder]


class _Hello(msgspec.Struct):
    type: str
    nonce: str = ""
    server_time: int = 0


_envelope = msgspec.json.Decoder(_Envelope)
_encoder = msgspec.json.Encoder()


class Client(TradingMixin, JobsMixin):
    """A connection to a cux server, logged in as ``key`` when given.

    Args:
        url: the server (``ws://host:port/ws``, ``http://host:port`` or
            ``host:port``; see `clients.config.Endpoint`).
        key: the account's key; None for public market data only.
        secret: the account's secret.
        cancel_on_disconnect: ask the server to cancel this connection's
            orders when it drops.
        reconnect: reconnect when the connection drops (else the client
            closes, and subscriptions end with `ClientClosed`).
        backoff: the waits between reconnection attempts.
        request_timeout: seconds a request waits for its response (and for the
            connection, while reconnecting) unless a call says otherwise.
        heartbeat: seconds between websocket pings; a pong missing for half
            that drops the connection (then it reconnects).
        track_orders: follow the account's orders and fills (`wait_order`).
        max_queue: messages each subscription buffers for a slow reader.
        seed: seed of the backoff jitter (None: random).
    """

    def __init__(
        self,
        url: str = DEFAULT_URL,
        key: str | None = None,
        secret: str | None = None,
        *,
        cancel_on_disconnect: bool = False,
        reconnect: bool = True,
        backoff: Backoff | None = None,
        request_timeout: float = 10.0,
        heartbeat: float = 10.0,
        track_orders: bool = True,
        max_queue: int = 10_000,
        seed: int | None = None,
    ) -> None:
        if (key is None) != (secret is None):
            raise ClientError("give both a key and a secret, or neither")
        self.endpoint = Endpoint.parse(url)
        self.key = key
        self._secret = secret
        self.cancel_on_disconnect = cancel_on_disconnect
        self.reconnect = reconnect
        self.backoff = backoff or Backoff()
        self.request_timeout = request_timeout
        self.heartbeat = heartbeat
        self.track_orders = track_orders and key is not None
        self.max_queue = max_queue
        self.account: str | None = None
        """The account logged in as (None before login or without a key)."""
        self.connections = 0
        """Connections opened so far (1 + the reconnections)."""
        self.orders_tracker = OrderTracker()
        self._rng = random.Random(seed)
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._down = asyncio.Event()
        self._closing = False
        self._closed_error: ClientClosed | None = None
        self._next_id = 1
        self._pending: dict[int, asyncio.Future[tuple[str, str]]] = {}
        self._subs: dict[ChannelKey, set[Subscription]] = {}
        self._internal: set[ChannelKey] = set(_TRACKED) if self.track_orders else set()
        self._tasks: set[asyncio.Task[Any]] = set()

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> Client:
        """Connect and log in.

        Raises:
            AuthError: the key or the secret is wrong.
            OSError, aiohttp.ClientError: the server cannot be reached.
        """
        if self._runner is not None:
            return self
        self._http = aiohttp.ClientSession()
        try:
            await self._open()
        except BaseException:
            await self._http.close()
            raise
        self._runner = asyncio.create_task(self._supervise())
        return self

    async def close(self) -> None:
        """Close the connection; subscriptions end, pending requests fail with
        `ConnectionLost`."""
        self._closing = True
        self._ready.set()
        if self._ws is not None:
            await self._ws.close()
        if self._runner is not None:
            self._runner.cancel()
            await asyncio.gather(self._runner, return_exceptions=True)
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)
        for task in list(self._tasks):
            task.cancel()
        self._end_subscriptions(None)
        if self._http is not None:
            await self._http.close()

    async def __aenter__(self) -> Client:
        return await self.start()

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def connected(self) -> bool:
        """Whether a connection is up and logged in (not reconnecting)."""
        return self._ready.is_set() and not self._closing and self._ws is not None

    async def wait_connected(self, timeout: float | None = None) -> None:
        """Wait until the client is connected (again).

        Raises:
            ConnectionLost: not connected within ``timeout`` seconds.
            ClientClosed: the client is closed or gave up.
        """
        await self._wait_ready(timeout if timeout is not None else 1e9)

    async def wait_disconnected(self, timeout: float | None = None) -> None:
        """Wait until the current connection drops (the client then reconnects,
        unless told not to)."""
        await asyncio.wait_for(self._down.wait(), timeout)

    # -- market data ----------------------------------------------------------------

    async def subscribe(
        self, *channels: str, depth: int | None = None, max_queue: int | None = None
    ) -> Subscription:
        """Subscribe to ``channels``; iterate the result for their messages.

        Args:
            channels: ``book.<symbol>``, ``trades.<symbol>``, ``candles.<symbol>``,
                ``auction.<symbol>``, ``phases``, ``instruments``; with a login
                also ``orders``, ``fills``, ``balance``, ``leases``, ``jobs``.
            depth: book channels only: the best 10, 25, 50, 100 or 500 levels;
                None for the whole book.
            max_queue: messages buffered for a slow reader (default: the
                client's).

        Raises:
            ProtocolError: an unknown channel (UNKNOWN_CHANNEL).
            InvalidOrder: a channel of an unknown symbol (UNKNOWN_SYMBOL).
            AuthError: a private channel without a login.
        """
        keys = [channel_key(name, depth) for name in channels]
        sub = Subscription(
            keys,
            max_queue=max_queue or self.max_queue,
            on_close=self._release,
            on_overflow=self._overflowed,
        )
        for key in keys:
            self._subs.setdefault(key, set()).add(sub)
        try:
            await self._subscribe_keys(keys, internal=False)
        except BaseException:
            self._forget(sub)
            raise
        return sub

    async def refresh(self, channels: Iterable[ChannelKey]) -> None:
        """Subscribe again to channels already read, for fresh book snapshots."""
        keys = [key for key in channels if self._subs.get(key)]
        if keys:
            await self._subscribe_keys(keys, internal=True)

    # -- requests -------------------------------------------------------------------

    async def request(
        self, op: str, *, timeout: float | None = None, **fields: Any
    ) -> dict[str, Any]:
        """Send any request by its ``op`` with ``fields`` (those that are None
        are left out), for the requests this SDK has no call for; the response
        as a dict (``{"type": "ack", ...}``).

        Raises:
            ServerError: the server refused it (the subclass of its code).
        """
        return await self._call(op, dict[str, Any], timeout, **fields)

    async def _call(
        self,
        op: str,
        result: type[T],
        timeout: float | None,
        *,
        internal: bool = False,
        **fields: Any,
    ) -> T:
        """Send a request (fields that are None are left out) and decode its
        response as ``result``; an ``error`` raises its exception."""
        timeout = self.request_timeout if timeout is None else timeout
        if not internal:
            await self._wait_ready(timeout)
        ws = self._ws
        if ws is None:
            raise ConnectionLost("not connected")
        rid = self._next_id
        self._next_id += 1
        body = {"op": op, "id": rid}
        body.update((k, v) for k, v in fields.items() if v is not None)
        frame = _encoder.encode(body)
        if len(frame) > MAX_FRAME:
            # The server's answer would not name the request: refuse it here.
            raise ProtocolError(
                "FRAME_TOO_LARGE",
                f"a request frame is at most {MAX_FRAME:,} bytes; "
                f"this {op} is {len(frame):,}",
            )
        future: asyncio.Future[tuple[str, str]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[rid] = future
        try:
            try:
                await ws.send_str(frame.decode())
            except (ConnectionError, RuntimeError) as exc:
                raise ConnectionLost(f"connection lost while sending: {exc}") from None
            try:
                _, data = await asyncio.wait_for(future, timeout)
            except TimeoutError:
                raise RequestTimeout(
                    f"no response to {op} in {timeout} s (it may still be applied)"
                ) from None
        finally:
            self._pending.pop(rid, None)
        return msgspec.json.decode(data, type=result)

    async def _wait_ready(self, timeout: float) -> None:
        if self._closed_error is not None:
            raise self._closed_error
        if self._closing:
            raise ClientClosed("the client is closed")
        if self._runner is None:
            raise ClientClosed("the client is not started: use start() or async with")
        if not self._ready.is_set():
            try:
                await asyncio.wait_for(self._ready.wait(), timeout)
            except TimeoutError:
                raise ConnectionLost(
                    f"not connected (reconnecting) after {timeout} s"
                ) from None
            if self._closed_error is not None:
                raise self._closed_error
            if self._closing:
                raise ClientClosed("the client is closed")

    # -- connection -----------------------------------------------------------------

    async def _open(self) -> None:
        """Connect, read the hello, log in and restore the subscriptions."""
        assert self._http is not None
        ws = await self._http.ws_connect(
            self.endpoint.ws,
            heartbeat=self.heartbeat,
            max_msg_size=1 << 26,
            timeout=aiohttp.ClientWSTimeout(ws_close=2.0),
        )
        try:
            first = await asyncio.wait_for(ws.receive(), self.request_timeout)
            if first.type is not aiohttp.WSMsgType.TEXT:
                raise ConnectionLost(f"no hello from the server: {first.type!r}")
            try:
                hello = msgspec.json.decode(first.data, type=_Hello)
            except msgspec.DecodeError:
                raise ConnectionLost(
                    f"not a cux server: its first message is no hello: "
                    f"{first.data[:80]!r}"
                ) from None
            if hello.type != "hello":
                raise ConnectionLost(f"expected hello, got {hello.type!r}")
            self._ws = ws
            self._reader = asyncio.create_task(self._read(ws))
            if self.key is not None and self._secret is not None:
                ack = await self._call(
                    "login",
                    _LoginAck,
                    None,
                    internal=True,
                    key=self.key,
                    signature=signature(self._secret, hello.nonce),
                    cancel_on_disconnect=self.cancel_on_disconnect or None,
                )
                self.account = ack.account
            await self._restore()
        except BaseException:
            self._ws = None
            await ws.close()
            raise
        self.connections += 1
        self._down.clear()
        log.info("connected to %s as %s", self.endpoint.ws, self.account or "-")
        self._ready.set()

    async def _restore(self) -> None:
        """After (re)connecting: subscribe to every channel wanted, and bring
        the tracked orders up to date."""
        again = self.connections > 0
        if again:
            notices: dict[Subscription, None] = {}
            for subs in self._subs.values():
                notices.update(dict.fromkeys(subs))
            for sub in notices:
                sub.deliver(Resync(sub.channels, "reconnected"))
        keys = list(self._internal) + [k for k, subs in self._subs.items() if subs]
        try:
            await self._subscribe_keys(keys, internal=True)
        except ProtocolError:
            # A channel is gone (a delisted future's book): subscribe one by
            # one, and end the subscriptions of the channels that are gone.
            for key in keys:
                try:
                    await self._subscribe_keys([key], internal=True)
                except ProtocolError as exc:
                    self._channel_gone(key, exc)
        if again and self.track_orders:
            body = await self._call("orders", _OpenOrders, None, internal=True)
            self.orders_tracker.reconcile(body.orders)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        try:
            async for message in ws:
                if message.type is aiohttp.WSMsgType.ERROR:
                    break
                if message.type is aiohttp.WSMsgType.TEXT:
                    try:
                        self._dispatch(message.data)
                    except Exception:
                        log.exception("could not handle a message: %.200s", message)
        finally:
            self._ready.clear()
            self._down.set()
            if self._ws is ws:
                self._ws = None
            lost = ConnectionLost(
                f"connection closed (code {ws.close_code}); the request may "
                "have been applied"
            )
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(lost)

    async def _supervise(self) -> None:
        while True:
            reader = self._reader
            assert reader is not None
            await asyncio.wait([reader])
            if self._closing:
                return
            if not self.reconnect:
                self._give_up(ClientClosed("the connection dropped"))
                return
            log.warning("connection to %s lost; reconnecting", self.endpoint.ws)
            if not await self._reconnect():
                return

    async def _reconnect(self) -> bool:
        attempt = 0
        while not self._closing:
            await asyncio.sleep(self.backoff.delay(attempt, self._rng))
            if self._closing:
                return False
            try:
                await self._open()
                return True
            except AuthError as exc:
                self._give_up(ClientClosed(f"login failed on reconnecting: {exc}"))
                return False
            except (OSError, aiohttp.ClientError, TimeoutError, ClientError) as exc:
                attempt += 1
                log.info("reconnection attempt %d failed: %s", attempt, exc)
                limit = self.backoff.attempts
                if limit is not None and attempt >= limit:
                    self._give_up(ClientClosed(f"gave up after {attempt} attempts"))
                    return False
        return False

    def _give_up(self, error: ClientClosed) -> None:
        log.error("client stops: %s", error)
        self._closed_error = error
        self._ready.set()
        self._end_subscriptions(error)

    def _end_subscriptions(self, error: ClientClosed | None) -> None:
        for subs in list(self._subs.values()):
            for sub in list(subs):
                sub.end(error)
        self._subs.clear()

    # -- subscriptions --------------------------------------------------------------

    async def _subscribe_keys(self, keys: list[ChannelKey], *, internal: bool) -> None:
        groups: dict[int | None, list[str]] = {}
        for name, depth in dict.fromkeys(keys):
            groups.setdefault(depth, []).append(name)
        for depth, names in groups.items():
            await self._call(
                "subscribe",
                _Envelope,
                None,
                internal=internal,
                channels=names,
                depth=depth,
            )

    def _channel_gone(self, key: ChannelKey, error: ProtocolError) -> None:
        log.warning("channel %s is gone on reconnecting: %s", key[0], error)
        self._internal.discard(key)
        for sub in list(self._subs.pop(key, ())):
            sub.end(ClientClosed(f"channel {key[0]} is gone: {error}"))

    def _forget(self, sub: Subscription) -> list[ChannelKey]:
        """Remove ``sub``; the keys nobody reads any more."""
        unread = []
        for key in sub.keys:
            subs = self._subs.get(key)
            if subs is None:
                continue
            subs.discard(sub)
            if not subs:
                del self._subs[key]
                if key not in self._internal:
                    unread.append(key)
        return unread

    async def _release(self, sub: Subscription) -> None:
        unread = self._forget(sub)
        # The server unsubscribes a name at every depth: keep names still read.
        still = {name for name, _ in self._subs} | {name for name, _ in self._internal}
        names = sorted({name for name, _ in unread} - still)
        if names and self.connected:
            try:
                await self._call("unsubscribe", _Envelope, None, channels=names)
            except ClientError as exc:
                log.info("unsubscribe %s failed: %s", names, exc)

    def _overflowed(self, sub: Subscription) -> None:
        books = [key for key in sub.keys if key[0].startswith("book.")]
        if books:
            self._spawn(self.refresh(books))

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.info("background request failed: %s", task.exception())

    # -- incoming -------------------------------------------------------------------

    def _dispatch(self, data: str) -> None:
        envelope = _envelope.decode(data)
        if envelope.type in _RESPONSES and envelope.id is not None:
            future = self._pending.get(envelope.id)
            if future is None or future.done():
                log.debug("late response to request %s", envelope.id)
            elif envelope.type == "error":
                body = msgspec.json.decode(data, type=_ErrorBody)
                future.set_exception(error_for(body.code, body.message, envelope.id))
            else:
                future.set_result((envelope.type, data))
            return
        if envelope.type == "error":
            body = msgspec.json.decode(data, type=_ErrorBody)
            log.warning("server error: %s %s", body.code, body.message)
            return
        message = decode_message(data)
        if isinstance(message, UnknownMessage):
            log.debug("message of unknown type %s", message.type)
            return
        kind = type(message)
        if kind is Heartbeat:
            return
        if kind is Resync:
            self._resynced(message)  # type: ignore[arg-type]
            return
        if kind is OrderUpdate:
            self.orders_tracker.on_order(message)  # type: ignore[arg-type]
        elif kind is Fill:
            self.orders_tracker.on_fill(message)  # type: ignore[arg-type]
        key = channel_of(message)
        for sub in list(self._subs.get(key, ())) if key is not None else ():
            sub.deliver(message)

    def _resynced(self, notice: Resync) -> None:
        """The server dropped these channels (we fell behind): tell their
        readers and subscribe again."""
        names = set(notice.channels)
        keys = [key for key in self._subs if key[0] in names]
        readers: dict[Subscription, None] = {}
        for key in keys:
            readers.update(dict.fromkeys(self._subs[key]))
        for sub in readers:
            sub.deliver(Resync(sub.channels, notice.reason))
        keys += [key for key in self._internal if key[0] in names]
        if keys:
            self._spawn(self._subscribe_keys(keys, internal=False))
