"""Connections and subscriptions: who gets which message, and at what pace.

A `Session` is one websocket connection: its login, its subscriptions, its rate
limit and its outbound queue. Messages are queued as encoded bytes and written
by the session's own writer task, so a slow client never holds up the
sequencer or other clients.

The queue is bounded. A client falls behind when its socket stops taking data
(the writer waits for it to drain) while more than `max_queue` messages wait:
the public market data still queued for it is dropped, those channels are
unsubscribed, and a `resync` message names them: the client subscribes again
and gets fresh snapshots. It never silently misses an update. If replies and
private messages alone still overflow the queue, the connection is closed with
code 1013 and the reason ``slow consumer``. A client that keeps reading is never
cut off: the sequencer hands over a whole batch of messages at once, and the
queue may then hold more than `max_queue` until the writer runs (at most one
batch's messages).

`Hub` maps each channel to its subscribers and fans publications out.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import socket
import time
from collections import deque
from collections.abc import Iterable
from hashlib import sha256
from typing import Any

from aiohttp import WSMsgType, web

from exchange.protocol import Resync, encode

__all__ = ["Hub", "RateLimiter", "Session", "sign"]

log = logging.getLogger("cux.sessions")

ChannelKey = tuple[str, Any]
"""(channel, depth) for public channels, (channel, account) for private ones."""

PRIVATE_CHANNELS = frozenset({"orders", "fills", "balance", "leases", "jobs"})

_TCP_CORK: int | None = getattr(socket, "TCP_CORK", None)
"""Linux's TCP_CORK, None elsewhere (the writer then never corks)."""


def sign(secret: str, message: str) -> str:
    """The hex HMAC-SHA256 of ``message`` under ``secret``: what login checks."""
    return hmac.new(secret.encode(), message.encode(), sha256).hexdigest()


class RateLimiter:
    """A token bucket: ``rate`` requests per second, bursts of twice that."""

    __slots__ = ("burst", "last", "rate", "tokens")

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.burst = 2.0 * rate
        self.tokens = self.burst
        self.last = time.monotonic()

    def allow(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class Session:
    """One websocket connection."""

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        rate: int,
        max_queue: int,
        sock: Any = None,
    ) -> None:
        self.ws = ws
        # The connection's socket, to cork while a burst is written; None: never.
        self._sock = sock
        self.nonce = secrets.token_hex(16)
        self.account: str | None = None
        self.roles: tuple[str, ...] = ()
        self.cancel_on_disconnect = False
        # A registered provider node: it may send larger frames (its results).
        self.node = False
        self.placed: set[int] = set()
        self.channels: set[ChannelKey] = set()
        self.limiter = RateLimiter(rate)
        self.max_queue = max_queue
        self.closed = False
        self.resyncs = 0
        # True while the writer waits for the socket to take more data.
        self._blocked = False
        self._closing: asyncio.Future[bool] | None = None
        # Each entry: (data, channel key of public market data, or None).
        self._queue: deque[tuple[bytes, ChannelKey | None]] = deque()
        self._ready = asyncio.Event()
        self._writer = asyncio.create_task(self._write_loop())

    # -- sending ----------------------------------------------------------------

    def send(self, data: bytes, channel: ChannelKey | None = None) -> None:
        """Queue ``data``; ``channel`` marks public market data, which may be
        dropped for a resync when the client falls behind."""
        if self.closed:
            return
        self._queue.append((data, channel))
        self._ready.set()
        if len(self._queue) > self.max_queue and self._blocked:
            self._fall_behind()

    def _fall_behind(self) -> None:
        dropped = {key for _, key in self._queue if key is not None}
        if dropped:
            self._queue = deque(item for item in self._queue if item[1] is None)
            self.channels -= dropped
            self.resyncs += 1
            names = sorted({_channel_name(key) for key in dropped})
            log.warning("session %s fell behind; resync %s", self.account, names)
            self._queue.append((encode(Resync(names, "slow consumer")), None))
        if len(self._queue) > self.max_queue:
            log.warning("session %s closed: slow consumer", self.account)
            self.close(1013, "slow consumer")

    async def _write_loop(self) -> None:
        ws = self.ws
        try:
            while True:
                await self._ready.wait()
                self._ready.clear()
                # Several messages at once (a batch's replies, market data of
                # many commands): corked, they leave in as few segments as
                # they fill, and the client is woken once, not once a message.
                corked = len(self._queue) > 1 and self._cork(True)
                try:
                    while self._queue:
                        data, _ = self._queue.popleft()
                        # send_frame returns at once unless the socket is full;
                        # only then can `send` run while this flag is set.
                        self._blocked = True
                        await ws.send_frame(data, WSMsgType.TEXT)
                        self._blocked = False
                finally:
                    if corked:
                        self._cork(False)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return

    def _cork(self, on: bool) -> bool:
        """Set or clear TCP_CORK on the connection's socket; whether it could
        (Linux only, and only with a socket)."""
        if self._sock is None or _TCP_CORK is None:
            return False
        try:
            self._sock.setsockopt(socket.IPPROTO_TCP, _TCP_CORK, int(on))
        except OSError:
            return False
        return True

    def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` and ``reason``; queued messages
        are dropped."""
        if self.closed:
            return
        self.closed = True
        self._queue.clear()
        self._writer.cancel()
        self._closing = asyncio.ensure_future(
            self.ws.close(code=code, message=reason.encode())
        )

    async def flush_and_close(self, code: int, reason: str, timeout: float) -> None:
        """Send what is queued (for at most ``timeout`` s), then close."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline and not self.ws.closed:
            await asyncio.sleep(0.01)
        self.closed = True
        self._writer.cancel()
        await self.ws.close(code=code, message=reason.encode())

    def stop(self) -> None:
        """The connection is gone: stop the writer, drop what is queued."""
        self.closed = True
        self._queue.clear()
        self._writer.cancel()

    @property
    def queued(self) -> int:
        return len(self._queue)


def _channel_name(key: ChannelKey) -> str:
    return key[0]


class Hub:
    """Subscriptions by channel, and the fan-out of publications."""

    def __init__(self) -> None:
        self._subscribers: dict[ChannelKey, set[Session]] = {}
        self.sessions: set[Session] = set()

    def add(self, session: Session, key: ChannelKey) -> None:
        self._subscribers.setdefault(key, set()).add(session)
        session.channels.add(key)

    def remove(self, session: Session, keys: Iterable[ChannelKey]) -> None:
        for key in list(keys):
            subscribers = self._subscribers.get(key)
            if subscribers is not None:
                subscribers.discard(session)
                if not subscribers:
                    del self._subscribers[key]
            session.channels.discard(key)

    def drop(self, session: Session) -> None:
        """Forget a closed session."""
        self.remove(session, list(session.channels))
        self.sessions.discard(session)

    def listening(self, channel: str, account: str) -> bool:
        """Whether any session subscribes to a private channel of ``account``."""
        return (channel, account) in self._subscribers

    def publish(self, publications: list[Any]) -> None:
        """Send each publication to the sessions subscribed to its channel."""
        subscribers = self._subscribers
        for pub in publications:
            if pub.account is not None:
                key: ChannelKey = (pub.channel, pub.account)
                for session in subscribers.get(key, ()):
                    session.send(pub.data)
            else:
                key = (pub.channel, pub.depth)
                sessions = subscribers.get(key)
                if not sessions:
                    continue
                for session in list(sessions):
                    if key in session.channels:
                        session.send(pub.data, key)
                    else:  # it fell behind and was unsubscribed
                        sessions.discard(session)
