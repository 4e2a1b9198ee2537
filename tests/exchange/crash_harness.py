"""Traders that stream orders at a real `cux serve`, and the market its journal holds.

`Trader` is one account on its own websocket connection, sending bursts of
places, cancels and amends back to back and keeping everything the server
answered: acks, errors, and the messages of the ``orders``, ``fills`` and
``trades.cpu-SPOT`` channels. `JournalMarket` rebuilds the market from the
journal alone, with the same market data code the server runs, so a test can
hold what the clients saw against what the journal says happened.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import msgspec
import websockets
from server_harness import Client, signed_headers

from exchange.gateway import order_info
from exchange.journal import read_records
from exchange.marketdata import MarketData
from exchange.settings import load
from matching import Engine

SYMBOL = "cpu-SPOT"
TRADES = f"trades.{SYMBOL}"
PRIVATE = ("orders", "fills")
TERMINAL = frozenset({"filled", "cancelled", "expired"})

Message = dict[str, Any]


class Trader:
    """One account streaming orders over its own connection, a burst at a time.

    A burst is ``burst`` requests sent back to back without waiting; the next
    starts once the last of them is answered (answers come in engine order, so
    then all of them are). Prices straddle 1000 so that orders cross and the
    accounts trade with each other; cancels and amends pick acked orders, which
    may have been filled meanwhile (the server then answers with an error).

    Args:
        account: the account to log in as; ``alice`` only buys (she has no
            capacity to sell).
        seed: the seed of its choices.
        burst: requests per burst.
        on_send: called with the trader after each request is written, so a
            test can kill the server at an exact point of the stream.
    """

    def __init__(
        self,
        account: str,
        seed: int,
        burst: int = 40,
        on_send: Callable[[Trader], None] | None = None,
    ) -> None:
        self.account = account
        self.random = random.Random(seed)
        self.burst = burst
        self.on_send = on_send
        self.client: Client | None = None
        self.sent: dict[int, Message] = {}
        self.answers: dict[int, Message] = {}
        self.order_ids: list[str] = []
        self.bursts_sent = 0
        self.bursts_answered = 0
        self._acks = 0

    async def connect(self, url: str) -> None:
        """Log in and subscribe to the account's orders and fills and the trades."""
        self.client = await Client.connect(url)
        assert (await self.client.login(self.account))["type"] == "ack"
        reply = await self.client.request("subscribe", channels=[*PRIVATE, TRADES])
        assert reply["type"] == "subscribed", reply

    async def run(self, bursts: int | None = None) -> None:
        """Stream bursts until the connection drops, or ``bursts`` are answered."""
        assert self.client is not None
        try:
            while bursts is None or self.bursts_answered < bursts:
                last = 0
                self.bursts_sent += 1
                for _ in range(self.burst):
                    last = await self._send(self._request())
                answer = await self.client.response(last, timeout=60)
                self.answers[last] = answer
                self._acks += answer["type"] == "ack"
                self.bursts_answered += 1
                self._collect()
        except (ConnectionError, websockets.ConnectionClosed):
            pass  # the server was killed
        self._collect()

    @property
    def acks(self) -> int:
        """The acks received so far, also those of a burst still coming in."""
        assert self.client is not None
        pending = self.client.responses.values()
        return self._acks + sum(1 for answer in pending if answer["type"] == "ack")

    @property
    def orders(self) -> list[Message]:
        """The ``order`` messages received, in order."""
        assert self.client is not None
        return self.client.messages["order"]

    @property
    def trades(self) -> list[Message]:
        assert self.client is not None
        return self.client.messages["trade"]

    def private(self) -> list[Message]:
        """The ``order`` and ``fill`` messages received, in arrival order."""
        assert self.client is not None
        return [m for m in self.client.stream if m["type"] in ("order", "fill")]

    def acked(self, op: str) -> list[Message]:
        """The requests of ``op`` the server acked, each with its ``order_id``."""
        return [
            {**self.sent[rid], "order_id": answer.get("order_id")}
            for rid, answer in sorted(self.answers.items())
            if answer["type"] == "ack" and self.sent[rid]["op"] == op
        ]

    def last_seen(self) -> dict[str, Message]:
        """The last ``order`` message received for each order."""
        return {message["order_id"]: message for message in self.orders}

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()

    def _collect(self) -> None:
        """Move the answers that arrived into `answers`, and learn order ids."""
        assert self.client is not None
        responses = self.client.responses
        for rid in sorted(responses):
            if rid in self.sent:
                self.answers[rid] = answer = responses.pop(rid)
                self._acks += answer["type"] == "ack"
        self.order_ids = [
            str(answer["order_id"])
            for rid, answer in sorted(self.answers.items())
            if answer["type"] == "ack" and self.sent[rid]["op"] == "place"
        ]

    async def _send(self, request: Message) -> int:
        assert self.client is not None
        rid = self.client.next_id
        self.client.next_id += 1
        self.sent[rid] = request
        await self.client.send_raw(json.dumps({"id": rid, **request}))
        if self.on_send is not None:
            self.on_send(self)
        return rid

    def _request(self) -> Message:
        rnd = self.random
        roll = rnd.random()
        if self.order_ids and roll < 0.2:
            return {"op": "cancel", "order_id": rnd.choice(self.order_ids[-30:])}
        if self.order_ids and roll < 0.35:
            order_id = rnd.choice(self.order_ids[-30:])
            if rnd.random() < 0.5:
                return {"op": "amend", "order_id": order_id, "qty": rnd.randint(1, 3)}
            return {
                "op": "amend",
                "order_id": order_id,
                "price": rnd.randint(995, 1005),
            }
        side = "buy" if self.account == "alice" else rnd.choice(["buy", "sell"])
        low = 994 if side == "buy" else 997
        return {
            "op": "place",
            "symbol": SYMBOL,
            "side": side,
            "qty": rnd.randint(1, 5),
            "price": rnd.randint(low, low + 9),
            "client_order_id": f"{self.account}-{len(self.sent)}",
        }


async def kill_when(
    server: Any, done: Callable[[], bool], timeout: float, *, from_thread: bool
) -> None:
    """SIGKILL ``server`` as soon as ``done()`` is true, checked every ms.

    With ``from_thread`` it is checked from a thread, which the traders' work
    on the event loop does not hold up: for a ``done`` that only reads files.
    """
    if from_thread:
        await asyncio.to_thread(_kill_when, server, done, timeout)
        return
    deadline = time.monotonic() + timeout
    while not done():
        _check_running(server, deadline)
        await asyncio.sleep(0.001)
    server.proc.kill()


def _kill_when(server: Any, done: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        _check_running(server, deadline)
        time.sleep(0.0005)
    server.proc.kill()


def _check_running(server: Any, deadline: float) -> None:
    assert server.proc.poll() is None, "the server died on its own"
    assert time.monotonic() < deadline, "the kill point never came"


@dataclass
class JournalMarket:
    """The market rebuilt from a journal, record by record, with market data.

    Attributes:
        engine: the engine after every complete record.
        private: each account's ``order`` and ``fill`` messages, in order, each
            with the sequence number of the record that caused it.
        trades: the ``trades.cpu-SPOT`` messages, in order, each with its
            record's sequence number.
    """

    engine: Engine
    private: dict[str, list[tuple[int, Message]]] = field(default_factory=dict)
    trades: list[tuple[int, Message]] = field(default_factory=list)

    @classmethod
    def read(cls, data: Path, config: Path) -> JournalMarket:
        engine = Engine(load(config).market)
        marketdata = MarketData(engine)
        private: dict[str, list[tuple[int, Message]]] = defaultdict(list)
        trades: list[tuple[int, Message]] = []
        for record in read_records(data):
            events = engine.apply(record.seq, record.ts, record.command)
            for publication in marketdata.apply(events, record.ts):
                message = (record.seq, json.loads(publication.data))
                account = publication.account
                if account is not None and publication.channel in PRIVATE:
                    private[account].append(message)
                elif publication.channel == TRADES:
                    trades.append(message)
        engine.check()
        return cls(engine, dict(private), trades)

    def private_since(self, account: str, seq: int) -> list[Message]:
        """``account``'s order and fill messages of the records after ``seq``."""
        return [m for s, m in self.private.get(account, []) if s > seq]

    def trades_since(self, seq: int) -> list[Message]:
        return [m for s, m in self.trades if s > seq]

    def history(self, account: str, since: int = 0) -> dict[str, list[Message]]:
        """The ``order`` messages of each of ``account``'s orders after ``since``."""
        out: dict[str, list[Message]] = defaultdict(list)
        for message in self.private_since(account, since):
            if message["type"] == "order":
                out[message["order_id"]].append(message)
        return out

    def open_orders(self, account: str) -> list[Message]:
        """``account``'s open orders as the ``orders`` request lists them."""
        number = self.engine.ledger.index(account)
        return [
            msgspec.to_builtins(order_info(order))
            for order in sorted(self.engine.orders.values(), key=lambda o: o.order_id)
            if order.account == number
        ]


async def open_orders(http: str, url: str, account: str) -> tuple[Any, Any]:
    """``account``'s open orders, asked over the websocket and over REST."""
    client = await Client.connect(url)
    try:
        await client.login(account)
        listed = await client.request("orders", timeout=30)
    finally:
        await client.close()
    path = "/api/v1/orders"
    async with (
        aiohttp.ClientSession() as session,
        session.get(http + path, headers=signed_headers(account, "GET", path)) as r,
    ):
        assert r.status == 200, await r.text()
        rest = await r.json()
    return listed["orders"], rest["orders"]


async def get_json(url: str) -> Any:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200, await response.text()
        return await response.json()
