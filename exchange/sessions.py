"""Connections and subscriptions: who gets which message, and at what pace.

A `Session` is one websocket connection: its login, its subscriptions, its rate
limit and its outbound queue. Messages are queued as encoded bytes; once a turn
of the event loop, the session writes all that its queue holds as text frames
in one write to the transport, so a burst leaves in full segments and wakes the
client once. A slow client never holds up the sequencer or other clients: when
its socket takes no more, the session waits for it to drain, apart.

The queue is bounded. A client falls behind when its socket stops taking data
(the session waits for it to drain) while more than `max_queue` messages wait:
the public market data still queued for it is dropped, every public channel
it subscribes to is unsubscribed, and one `resync` message names them: the
client subscribes again and gets fresh snapshots. It never silently misses an
update. If replies and private messages alone still overflow the queue, the
connection is closed with code 1013 and the reason ``slow consumer``. A client
that keeps reading is never cut off: the sequencer hands over a whole batch of
messages at once, and the queue may then hold more than `max_queue` until it is
written (at most one batch's messages).

`Hub` maps each channel to its subscribers and fans publications out.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import secrets
import struct
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

_HEAD1 = struct.Struct("!BB")
_HEAD2 = struct.Struct("!BBH")
_HEAD3 = struct.Struct("!BBQ")


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
    """One websocket connection.

    Args:
        ws: the prepared websocket.
        rate: requests per second allowed (`RateLimiter`).
        max_queue: messages that may wait for a socket that takes no more
            before the client falls behind (see the module docstring).
        transport: the connection's transport, which the frames are written
            to; None: through ``ws`` (slower: a task step and a write per
            message).
        protocol: the transport's protocol, whose drain helper says when a
            full socket takes data again (aiohttp's `BaseProtocol`).
    """

    def __init__(
        self,
        ws: web.WebSocketResponse,
        *,
        rate: int,
        max_queue: int,
        transport: asyncio.Transport | None = None,
        protocol: Any = None,
    ) -> None:
        self.ws = ws
        self._transport = transport
        self._drain = getattr(protocol, "_drain_helper", None)
        self._loop = asyncio.get_running_loop()
        self.nonce = secrets.token_hex(16)
        # The peer's address, which failed logins are counted under.
        self.remote: str | None = None
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
        # True while the socket takes no more data and the writer waits.
        self._blocked = False
        # True while a write of the queue is due in this turn of the loop.
        self._scheduled = False
        self._waiter: asyncio.Task[None] | None = None
        self._closing: asyncio.Future[bool] | None = None
        # Each entry: (data, channel key of public market data, or None).
        self._queue: deque[tuple[bytes, ChannelKey | None]] = deque()

    # -- sending ----------------------------------------------------------------

    def send(self, data: bytes, channel: ChannelKey | None = None) -> None:
        """Queue ``data``; ``channel`` marks public market data, which may be
        dropped for a resync when the client falls behind."""
        if self.closed:
            return
        self._queue.append((data, channel))
        if not self._scheduled and not self._blocked:
            # Everything queued in this turn of the loop (a batch's replies,
            # the market data of many commands) leaves in one write.
            self._scheduled = True
            self._loop.call_soon(self._write)
        if len(self._queue) > self.max_queue and self._blocked:
            self._fall_behind()

    def _fall_behind(self) -> None:
        # A client this far behind is behind on all its market data: every
        # public channel goes at once, so one resync names them all (and a
        # channel with nothing queued yet does not fall behind a moment later).
        dropped = {key for key in self.channels if key[0] not in PRIVATE_CHANNELS}
        dropped.update(key for _, key in self._queue if key is not None)
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

    def _write(self) -> None:
        """Write every queued message as a text frame, all in one write; wait
        for the socket to drain if that filled it."""
        self._scheduled = False
        queue = self._queue
        if self.closed or self._blocked or not queue:
            return
        transport = self._transport
        if transport is None or self._drain is None:
            self._blocked = True
            self._waiter = self._loop.create_task(self._send_through_ws())
            return
        if transport.is_closing():  # the connection is going: the reader ends it
            return
        parts = []
        for data, _ in queue:
            parts.append(_frame_header(len(data)))
            parts.append(data)
        queue.clear()
        transport.write(b"".join(parts))
        if transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            # The transport paused its protocol: wait until it resumes.
            self._blocked = True
            self._waiter = self._loop.create_task(self._wait_for_drain())

    async def _wait_for_drain(self) -> None:
        assert self._drain is not None
        try:
            await self._drain()
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return
        self._blocked = False
        self._write()

    async def _send_through_ws(self) -> None:
        try:
            while self._queue:
                data, _ = self._queue.popleft()
                await self.ws.send_frame(data, WSMsgType.TEXT)
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return
        self._blocked = False

    def close(self, code: int, reason: str) -> None:
        """Close the connection with ``code`` and ``reason``; queued messages
        are dropped."""
        if self.closed:
            return
        self.stop()
        self._closing = asyncio.ensure_future(
            self.ws.close(code=code, message=reason.encode())
        )

    async def flush_and_close(self, code: int, reason: str, timeout: float) -> None:
        """Send what is queued (for at most ``timeout`` s), then close."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline and not self.ws.closed:
            await asyncio.sleep(0.01)
        self.stop()
        await self.ws.close(code=code, message=reason.encode())

    def stop(self) -> None:
        """The connection is gone: stop writing, drop what is queued."""
        self.closed = True
        self._queue.clear()
        if self._waiter is not None:
            self._waiter.cancel()

    @property
    def queued(self) -> int:
        return len(self._queue)


def _frame_header(length: int) -> bytes:
    """The header of an unmasked, final text frame of ``length`` bytes
    (RFC 6455, 5.2): what a server sends."""
    if length < 126:
        return _HEAD1.pack(0x81, length)
    if length < 65536:
        return _HEAD2.pack(0x81, 126, length)
    return _HEAD3.pack(0x81, 127, length)


def _channel_name(key: ChannelKey) -> str:
    return key[0]


class Hub:
    """Subscriptions by channel, and the fan-out of publications."""

    def __init__(self) -> None:
        self._subscribers: dict[ChannelKey, set[Session]] = {}
        # Subscriptions whose snapshots the sequencer has read but whose
        # subscribers are not added yet (that happens once the commands
        # before them are durable), by channel key: how many.
        self._expected: dict[ChannelKey, int] = {}
        self.sessions: set[Session] = set()

    def expect(self, keys: Iterable[ChannelKey]) -> None:
        """Subscribers to ``keys`` are on their way: call it in engine order,
        where their snapshots are taken, so that the messages of the commands
        that follow are built for them (see `listening`); `add` or `unexpect`
        each key later."""
        expected = self._expected
        for key in keys:
            expected[key] = expected.get(key, 0) + 1

    def unexpect(self, key: ChannelKey) -> None:
        """An expected subscriber to ``key`` arrived or never will."""
        left = self._expected.get(key, 0) - 1
        if left > 0:
            self._expected[key] = left
        else:
            self._expected.pop(key, None)

    def add(self, session: Session, key: ChannelKey, *, expected: bool = False) -> None:
        """Subscribe ``session`` to ``key``; ``expected``: announced by
        `expect`."""
        if expected:
            self.unexpect(key)
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
        """Forget a closed session: also under the channels it lost by falling
        behind, which `publish` forgets only when one of them next speaks."""
        keys = [
            key for key, sessions in self._subscribers.items() if session in sessions
        ]
        self.remove(session, keys)
        self.sessions.discard(session)

    def listening(self, channel: str, detail: Any) -> bool:
        """Whether any session subscribes, or is about to, to ``channel`` of
        ``detail``: the account of a private channel, the depth of a book
        channel, None for the other public ones."""
        key = (channel, detail)
        return key in self._subscribers or key in self._expected

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
