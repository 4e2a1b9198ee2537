"""The provider daemon behind ``cux node``: register capacity, quote it, stay up.

A `Node` keeps one websocket to the exchange. On every connection it logs in
(with cancel-on-disconnect, so its quotes never outlive it), subscribes to its
private ``orders``, ``fills`` and ``leases`` channels, registers the node's
capacity (``register_node``: CU/s, model, quality profile), clears any quote
a previous run left, and quotes its unsold capacity as one GTC sell limit order
on the class's spot book, priced by `providers.pricing`. What is sold already
comes with the registration's answer (``spot_leases``: the account's live spot
leases), so a node that starts while a lease of its account lives quotes the
rest. A fill on its order marks lots sold; a spot lease of the account that
ends frees its lots; either way the node re-quotes (amend: new leaves and a
new price, since the markup rises with utilisation). When the CU/s it
delivers falls short of what it registered, it registers the lower figure and
re-quotes. It prices lots of the size and on the tick the exchange lists for
the spot instrument (``GET /api/v1/instruments``); the configured ones only
stand in when the listing cannot be read. A refused quote is retried after a
backoff, once its order's state is read again (and, after
``INSUFFICIENT_CAPACITY``, its capacity and the live leases, by registering
again). A node id that another live node of the account holds
(``NODE_ID_IN_USE``) stops the node.

It pings every ``heartbeat_seconds``; a connection that drops or stops
answering is re-opened after an exponential backoff (capped, with jitter from
a seeded RNG), and the node registers and quotes again. `Node.stop` (SIGTERM,
Ctrl-C) cancels its quotes with ``cancel_all`` and closes the connection.

Logs go to the ``cux.node`` logger: INFO for the lifecycle (connected,
registered, quoted), WARNING for degraded service (refusals, drops, shortfall).

Given a ``run`` function (``cux node`` passes the model's), the node runs the
shards the exchange dispatches to it (`providers.shards`), one at a time, and
reports each one's embeddings and metering; what it delivers feeds
`Node.record_delivery`. On stop it finishes the shard running and hands the
queued ones back before it closes the connection.

It also quotes every futures window of its class that trades, one GTC sell
per window for the window's unsold lots (`providers.quotes`). On stop it
cancels the quotes of every symbol it quotes: a ``cancel_all`` per window,
then one for the spot book.

Known limitation: the leases a registration's answer lists are the account's,
so with several nodes on one account each counts all of them as its own sold
lots until they end, and quotes less than it could meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import logging
import os
import random
from dataclasses import dataclass
from typing import Any

import aiohttp

from providers.pricing import Pricing, reservation_price
from providers.profile import QualityProfile
from providers.quotes import (
    MARKET_MESSAGES,
    FuturesQuotes,
    Quote,
    RequestRefused,
    fetch_instruments,
)
from providers.shards import Run, ShardOutcome, Shards, shard_payload

__all__ = ["Backoff", "Node", "NodeConfig", "RequestRefused", "published_tiers"]

log = logging.getLogger("cux.node")

MODEL_NAME = "all-MiniLM-L6-v2"

REFUSAL_BACKOFF_INITIAL = 0.2
"""Seconds before the first retry of a refused quote; each refusal in a row
doubles it, up to the reconnect backoff's cap."""

SHORTFALL_WINDOW_NS = 10_000_000_000
"""Shard run time (ns) over which delivery is compared with the registered CU/s."""

FATAL_CODES = frozenset(
    {
        "AUTH_FAILED",
        "ROLE_NOT_ALLOWED",
        "INVALID_FIELD",
        "UNKNOWN_CLASS",
        "NODE_ID_IN_USE",
    }
)
"""Refusals that retrying cannot cure: `Node.run` raises them."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """What a node needs to know, checked by the command line.

    Attributes:
        url: the exchange's websocket, ``ws://HOST:PORT/ws``.
        key: the provider account's login key.
        secret: its secret.
        node_id: this node's name, unique within the account.
        resource_class: the class it sells (the instrument ``<class>-SPOT``
            and the class's futures).
        cost_micro_usd_per_hour: what an hour of the machine costs, µUSD.
        lot_cu: CU in one lot of the class, used only when the exchange's
            listing (``GET /api/v1/instruments``) cannot be read; the
            listing's value wins.
        tick: the class's tick, µcr; like ``lot_cu``, only without a listing.
        lease_seconds: seconds of capacity the node sells at once, used to
            count its lots when the server's ack does not say them.
        base_bps: markup with nothing sold, basis points.
        slope_bps: extra markup with everything sold, basis points.
        heartbeat_seconds: seconds between two pings.
        request_timeout: seconds to wait for a response before giving up on
            the connection.
        backoff_initial: first reconnect delay, seconds.
        backoff_max: the cap of the reconnect delay, seconds.
        shortfall_bps: re-register when delivery falls below this share of the
            registered CU/s, basis points.
        seed: the seed of the reconnect jitter.
    """

    url: str
    key: str
    secret: str
    node_id: str = "node-1"
    resource_class: str = "cpu"
    cost_micro_usd_per_hour: int = 100_000
    lot_cu: int = 100
    tick: int = 1
    lease_seconds: int = 60
    base_bps: int = 1_000
    slope_bps: int = 4_000
    heartbeat_seconds: float = 5.0
    request_timeout: float = 10.0
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    shortfall_bps: int = 9_000
    seed: int = 0

    @property
    def symbol(self) -> str:
        return f"{self.resource_class}-SPOT"


class Backoff:
    """Reconnect delays: ``initial × 2^n`` seconds, capped at ``cap``, each
    drawn uniformly from its upper half (jitter) by a seeded RNG."""

    def __init__(self, initial: float, cap: float, seed: int) -> None:
        self.initial = initial
        self.cap = cap
        self.failures = 0
        self._rng = random.Random(seed)

    def next(self) -> float:
        ceiling = min(self.cap, self.initial * 2.0**self.failures)
        self.failures += 1
        return ceiling / 2 + self._rng.random() * ceiling / 2

    def reset(self) -> None:
        self.failures = 0


def published_tiers(profile: QualityProfile) -> dict[str, dict[str, float | int]]:
    """The quality profile as ``register_node`` carries it, tier by tier."""
    return {
        t.tier: {
            "layers": t.layers,
            "cu_fraction": t.cu_fraction,
            "mean_cosine_to_exact": t.mean_cosine_to_exact,
            "min_cosine_to_exact": t.min_cosine_to_exact,
            "recall_at_1": t.recall_at_1,
        }
        for t in profile.tiers
    }


class Node:
    """One provider node's connection to the exchange (see the module doc).

    Args:
        config: the node's settings.
        cu_per_second_milli: the measured capacity, thousandths of a CU/s.
        tiers: the quality profile to publish (see `published_tiers`).
        run: runs a dispatched shard's inputs; None: the node runs no shards
            (it hands each back).
        drain_seconds: on stop, how long the shard running may take to finish.
    """

    def __init__(
        self,
        config: NodeConfig,
        cu_per_second_milli: int,
        tiers: dict[str, dict[str, float | int]] | None = None,
        run: Run | None = None,
        drain_seconds: float = 60.0,
    ) -> None:
        self.config = config
        self.run_shard = run
        self._window_flops = 0
        self._window_ns = 0
        self.lot_cu = config.lot_cu
        self.tick = config.tick
        self._refusals = 0
        self._refusal_backoff = Backoff(
            REFUSAL_BACKOFF_INITIAL, config.backoff_max, config.seed
        )
        self._retry: asyncio.TimerHandle | None = None
        self._stale = False
        self.drain_seconds = drain_seconds
        self.shards: Shards | None = None
        self.cu_per_second_milli = cu_per_second_milli
        self.tiers = tiers or {}
        self.capacity = 0
        self.sold = 0
        self.quote: Quote | None = None
        self.registrations = 0
        self._trades: dict[int, int] = {}
        # Spot leases heard ending before this connection's first registration
        # answered (None once it has): its list of live leases may name them.
        self._ended_early: set[int] | None = None
        self._ids = itertools.count(1)
        self._tags = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._hello: asyncio.Future[str] | None = None
        self._dirty = asyncio.Event()
        self._stopping = asyncio.Event()
        self._reregister = False
        self._backoff = Backoff(config.backoff_initial, config.backoff_max, config.seed)
        self._http: aiohttp.ClientSession | None = None
        self.futures = FuturesQuotes(
            config.resource_class,
            config.node_id,
            self._request,
            lambda: f"{config.node_id}.{next(self._tags)}",
            self.pricing,
            self._lots_in,
            self._dirty.set,
            self._stopping.is_set,
        )

    # -- the public surface ------------------------------------------------------

    def stop(self) -> None:
        """Stop quoting and exit `run` (safe to call from a signal handler)."""
        if not self._stopping.is_set():
            log.info("stopping: cancelling quotes")
        self._stopping.set()

    def record_delivery(self, flops: int, wall_ns: int) -> None:
        """Note what a shard delivered; once shards have run for
        `SHORTFALL_WINDOW_NS` together, re-register lower if what they
        delivered falls short. (A single small shard says little: its fixed
        costs — tokenizing, one batch — weigh more than its compute.)"""
        self._window_flops += flops
        self._window_ns += max(0, wall_ns)
        if self._window_ns < SHORTFALL_WINDOW_NS:
            return
        delivered = self._window_flops * 1000 // self._window_ns
        self._window_flops = self._window_ns = 0
        floor = self.cu_per_second_milli * self.config.shortfall_bps // 10_000
        if 0 < delivered < floor:
            log.warning(
                "delivered %.3f CU/s, short of the %.3f registered: re-registering",
                delivered / 1000,
                self.cu_per_second_milli / 1000,
            )
            self.cu_per_second_milli = delivered
            self._reregister = True
            self._dirty.set()

    def payload(self, shard_id: int, outcome: ShardOutcome) -> dict[str, Any]:
        """The ``shard_result`` request for a shard's outcome (an honest one)."""
        return shard_payload(shard_id, outcome)

    def _delivered(self, flops: int, wall_ns: int) -> None:
        self.record_delivery(flops, wall_ns)

    def pricing(self) -> Pricing:
        """The strategy at the current capacity."""
        c = self.config
        reservation = reservation_price(
            c.cost_micro_usd_per_hour, self.cu_per_second_milli, self.lot_cu, self.tick
        )
        return Pricing(reservation, self.tick, c.base_bps, c.slope_bps)

    async def run(self) -> None:
        """Connect, register and quote until `stop`, reconnecting on failure.

        Raises:
            RequestRefused: the exchange refused the node for good (bad
                credentials, not a provider, a field it does not accept): one
                of `FATAL_CODES`.
        """
        async with aiohttp.ClientSession() as http:
            self._http = http
            while not self._stopping.is_set():
                why = "session ended"
                try:
                    async with http.ws_connect(self.config.url, autoping=True) as ws:
                        await self._session(ws)
                except RequestRefused as exc:
                    if exc.code in FATAL_CODES and not self._own_stale_id(exc):
                        log.error("the exchange refuses this node: %s", exc)
                        raise
                    why = f"session ended: {exc}"
                except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                    why = connection_failure(self.config.url, exc)
                except Exception:
                    # A bug in handling one message must not take the node down.
                    log.exception("session failed")
                if self._stopping.is_set():
                    break
                delay = self._backoff.next()
                log.warning("%s; reconnecting in %.1f s", why, delay)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), delay)
        log.info("node %s stopped", self.config.node_id)

    def _own_stale_id(self, exc: RequestRefused) -> bool:
        """Whether ``exc`` is this node's own id held by its earlier connection.

        After a network cut the exchange may still take the old connection
        for alive until it misses its heartbeats, and refuse the id meanwhile
        (``NODE_ID_IN_USE``). A node that has registered before retries with
        its backoff until the old connection is dropped; only a node that
        never registered stops, since then another node holds the id.
        """
        return exc.code == "NODE_ID_IN_USE" and self.registrations > 0

    # -- one connection ----------------------------------------------------------

    async def _session(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self._ws = ws
        self._hello = asyncio.get_running_loop().create_future()
        self.quote = None
        self._ended_early = set()
        self.futures.reset()
        reader = asyncio.create_task(self._read(ws))
        tasks: list[asyncio.Task[Any]] = [reader]
        self.shards = Shards(
            self.run_shard or _hand_back, self._request, self.payload, self._delivered
        )
        worker = asyncio.create_task(self.shards.work())
        try:
            nonce = await asyncio.wait_for(
                asyncio.shield(self._hello), self.config.request_timeout
            )
            await self._login(nonce)
            await self._learn_spec()
            # Subscribed first: no lease can end unheard after the
            # registration's answer lists it.
            await self._request({"op": "subscribe", "channels": self._channels()})
            await self._register()
            await self._request({"op": "cancel_all", "symbol": self.config.symbol})
            self._backoff.reset()
            await self._requote()
            await self.futures.start(self._instruments)
            await self.futures.requote()

            tasks += [
                asyncio.create_task(self._ping()),
                asyncio.create_task(self._quoter()),
                asyncio.create_task(self._stopping.wait()),
            ]
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if self._stopping.is_set() and not reader.done():
                await self._cancel_quotes(tasks[1:])
                await self.shards.drain(self.drain_seconds)
                await ws.close()
                return
            for task in done:
                if not task.cancelled() and task.exception() is not None:
                    raise task.exception()  # type: ignore[misc]
            raise ConnectionError("the exchange closed the connection")
        finally:
            if self._retry is not None:
                self._retry.cancel()
                self._retry = None
            self.shards.forget("the connection closed; the exchange fails it")
            worker.cancel()
            for task in tasks:
                task.cancel()
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            self._ws = None

    async def _cancel_quotes(self, workers: list[asyncio.Task[Any]]) -> None:
        """Stop the workers first, so that no re-quote follows the cancel (a
        place already sent reaches the server before it, and is cancelled)."""
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        await self.futures.cancel()
        await self._request({"op": "cancel_all", "symbol": self.config.symbol})
        self.quote = None
        log.info("quotes cancelled on %s", self.config.symbol)

    async def _learn_spec(self) -> None:
        """Take the spot instrument's lot size and tick from the exchange's
        listing; without one, keep the configured ones."""
        c = self.config
        try:
            rows = await self._instruments()
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            log.warning(
                "cannot read the listing of %s (%s): pricing lots of %d CU, tick %d",
                c.symbol,
                _http_reason(exc),
                self.lot_cu,
                self.tick,
            )
            return
        for row in rows:
            if row.get("symbol") == c.symbol and "lot_cu" in row and "tick" in row:
                lot_cu, tick = int(row["lot_cu"]), int(row["tick"])
                if (lot_cu, tick) != (c.lot_cu, c.tick):
                    log.info(
                        "%s: lots of %d CU, tick %d µcr (the exchange's listing)",
                        c.symbol,
                        lot_cu,
                        tick,
                    )
                self.lot_cu, self.tick = lot_cu, tick
                return

    def _channels(self) -> list[str]:
        return ["orders", "fills", "leases"]

    async def _login(self, nonce: str) -> None:
        signature = hmac.new(
            self.config.secret.encode(), nonce.encode(), hashlib.sha256
        ).hexdigest()
        await self._request(
            {
                "op": "login",
                "key": self.config.key,
                "signature": signature,
                "cancel_on_disconnect": True,
            }
        )
        log.info("logged in to %s as %s", self.config.url, self.config.key)

    async def _register(self) -> None:
        c = self.config
        ack = await self._request(
            {
                "op": "register_node",
                "node_id": c.node_id,
                "resource_class": c.resource_class,
                "cu_per_second_milli": self.cu_per_second_milli,
                "model": MODEL_NAME,
                "tiers": self.tiers,
            }
        )
        # Its own share (older servers say only the account's): two nodes of
        # one account then quote apart, never more than the account's whole.
        capacity = ack.get("node_capacity") or ack.get("capacity")
        registered = (capacity or {}).get(c.symbol)
        if isinstance(registered, int):
            self.capacity = registered
        else:
            self.capacity = self._lots_in(c.lease_seconds)
        if self._ended_early is not None:
            self._take_leases(ack.get("spot_leases") or {}, self._ended_early)
            self._ended_early = None
        self.registrations += 1
        self._reregister = False
        log.info(
            "registered node %s: %.3f CU/s, %d lots of %s",
            c.node_id,
            self.cu_per_second_milli / 1000,
            self.capacity,
            c.symbol,
        )
        self.futures.registered(capacity)

    def _take_leases(self, leases: dict[str, int], ended: set[int]) -> None:
        """On a new connection, before it quotes: what is sold is the account's
        live spot leases the server listed, less those heard ending since."""
        self._trades = {
            int(lease_id): int(lots)
            for lease_id, lots in leases.items()
            if int(lease_id) not in ended
        }
        self.sold = sum(self._trades.values())
        if self.sold:
            log.info(
                "%d lots sold already, in %d live leases", self.sold, len(self._trades)
            )

    def _lots_in(self, seconds: int) -> int:
        """Whole lots the node delivers in ``seconds`` at its registered rate."""
        cu = self.cu_per_second_milli * seconds // 1000
        return cu // self.lot_cu

    async def _instruments(self) -> list[dict[str, Any]]:
        assert self._http is not None
        c = self.config
        return await fetch_instruments(self._http, c.url, c.request_timeout)

    async def _ping(self) -> None:
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            await self._request({"op": "ping"})

    async def _quoter(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            if self._stale:
                await self._resync()
            if self._reregister or self.futures.unregistered():
                await self._register()
            await self._requote()
            await self.futures.requote()

    # -- quoting -----------------------------------------------------------------

    async def _requote(self) -> None:
        """Bring the quote to the unsold capacity at the current ask."""
        if self._stopping.is_set():
            return
        unsold = self.capacity - self.sold
        price = self.pricing().ask(self.sold, self.capacity)
        quote = self.quote
        try:
            if unsold <= 0:
                if quote is not None:
                    self.quote = None
                    await self._request({"op": "cancel", "order_id": quote.order_id})
                    log.info("sold out: quote %s cancelled", quote.order_id)
            elif quote is None:
                await self._place(price, unsold)
            elif (quote.price, quote.qty) != (price, unsold):
                await self._request(
                    {
                        "op": "amend",
                        "order_id": quote.order_id,
                        "qty": unsold,
                        "price": price,
                    }
                )
                quote.price, quote.qty = price, unsold
                log.info("re-quoted %d lots at %d µcr", unsold, price)
        except RequestRefused as exc:
            self._after_refusal(exc)
        else:
            self._refusals = 0
            self._refusal_backoff.reset()

    def _after_refusal(self, exc: RequestRefused) -> None:
        """A quote was refused: the node's view was stale (a fill or a lease's
        end on its way, the order filled or cancelled meanwhile, capacity the
        node does not know is sold). After a backoff that doubles with each
        refusal in a row, take the quote's state from the server — and on
        ``INSUFFICIENT_CAPACITY`` the capacity and the live leases too, by
        registering again — and quote again. A fill or a lease message
        retries sooner."""
        self._refusals += 1
        delay = self._refusal_backoff.next()
        log.warning(
            "quote refused: %s (%d in a row); reading its state and quoting "
            "again in %.1f s",
            exc,
            self._refusals,
            delay,
        )
        self._stale = True
        if exc.code == "INSUFFICIENT_CAPACITY":
            self._reregister = True
        if self._retry is not None:
            self._retry.cancel()
        self._retry = asyncio.get_running_loop().call_later(delay, self._dirty.set)

    async def _resync(self) -> None:
        """Take the spot quote's state from the server after a refusal."""
        self._stale = False
        answer = await self._request({"op": "orders", "symbol": self.config.symbol})
        quote = self.quote
        open_orders = {str(o["order_id"]): o for o in answer.get("orders", [])}
        found = None if quote is None else open_orders.get(quote.order_id)
        if found is None:
            self.quote = None
        else:
            assert quote is not None
            quote.price, quote.qty = int(found["price"]), int(found["leaves"])
        if self._reregister:
            # Its answer lists the live leases: what is sold, as the server
            # counts it, less the ends heard before it comes.
            self._ended_early = set()

    async def _place(self, price: int, qty: int) -> None:
        ack = await self._request(
            {
                "op": "place",
                "symbol": self.config.symbol,
                "side": "sell",
                "type": "limit",
                "price": price,
                "qty": qty,
                "tif": "GTC",
                "client_order_id": f"{self.config.node_id}.{next(self._tags)}",
            }
        )
        self.quote = Quote(str(ack["order_id"]), price, qty)
        log.info("quoted %d lots of %s at %d µcr", qty, self.config.symbol, price)

    def _ours(self, message: dict[str, Any]) -> bool:
        tag = message.get("client_order_id") or ""
        return bool(tag.startswith(f"{self.config.node_id}."))

    def _on_own(self, kind: str, message: dict[str, Any]) -> None:
        """An update or a fill of one of the node's orders, spot or future."""
        if message.get("symbol", self.config.symbol) != self.config.symbol:
            if kind == "order":
                self.futures.on_order(message)
            else:
                self.futures.on_fill(message)
        elif kind == "order":
            self._on_order(message)
        else:
            self._on_fill(message)

    def _on_order(self, message: dict[str, Any]) -> None:
        quote = self.quote
        if quote is None or message.get("order_id") != quote.order_id:
            return
        if message.get("status") in ("filled", "cancelled", "expired"):
            self.quote = None
        else:
            quote.qty = int(message.get("leaves", quote.qty))
        self._dirty.set()

    def _on_fill(self, message: dict[str, Any]) -> None:
        qty = int(message["qty"])
        self.sold += qty
        self._trades[int(message["trade_id"])] = qty
        log.info("sold %d lots at %d µcr", qty, message["price"])
        self._dirty.set()

    def _on_lease(self, message: dict[str, Any]) -> None:
        if message.get("status") == "active":
            return
        if message.get("symbol") != self.config.symbol:
            return  # a future's lease is firm: its lots never come back
        lease_id = int(message.get("lease_id", -1))
        lots = self._trades.pop(lease_id, None)
        if lots is not None:
            self.sold = max(0, self.sold - lots)
            log.info("lease %s ended: %d lots free again", message["lease_id"], lots)
        elif self._ended_early is not None:
            self._ended_early.add(lease_id)
        # Any lease of the account that ends may free capacity: quote again,
        # even after refusals.
        self._dirty.set()

    # -- requests and messages -----------------------------------------------------

    async def _request(self, payload: dict[str, Any]) -> dict[str, Any]:
        ws = self._ws
        if ws is None or ws.closed:
            raise ConnectionError("not connected")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = (
            asyncio.get_running_loop().create_future()
        )
        self._pending[request_id] = future
        await ws.send_str(json.dumps({**payload, "id": request_id}))
        try:
            response = await asyncio.wait_for(future, self.config.request_timeout)
        finally:
            self._pending.pop(request_id, None)
        if response.get("type") == "error":
            raise RequestRefused(
                str(response.get("code")), str(response.get("message"))
            )
        return response

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for frame in ws:
            if frame.type != aiohttp.WSMsgType.TEXT:
                continue
            message = json.loads(frame.data)
            kind = message.get("type")
            log.debug("< %s", kind)
            future = self._pending.get(message.get("id"))
            if future is not None and kind in (
                "ack",
                "error",
                "result",
                "pong",
                "subscribed",
            ):
                if not future.done():
                    future.set_result(message)
            elif kind == "hello" and self._hello is not None:
                if not self._hello.done():
                    self._hello.set_result(str(message["nonce"]))
            elif kind in ("order", "fill") and self._ours(message):
                self._on_own(kind, message)
            elif kind in MARKET_MESSAGES:
                self.futures.on_market(message)
            elif kind == "lease":
                self._on_lease(message)
            elif kind == "shard" and self.shards is not None:
                self.shards.received(message)
            elif kind == "shard_cancelled" and self.shards is not None:
                self.shards.cancelled(int(message["shard_id"]))


def connection_failure(url: str, exc: BaseException) -> str:
    """A plain line for a failed or lost connection to ``url``."""
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot reach {url}: {_os_reason(exc.os_error)}"
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return f"{url} refused the websocket: HTTP {exc.status} {exc.message}"
    if isinstance(exc, TimeoutError):
        return f"no answer from {url} in time"
    if isinstance(exc, ConnectionError | aiohttp.ClientError):
        return f"connection to {url} lost: {exc or type(exc).__name__}"
    if isinstance(exc, OSError):
        return f"connection to {url} failed: {_os_reason(exc)}"
    return f"connection to {url} failed: {exc or type(exc).__name__}"


def _http_reason(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientResponseError):
        return f"HTTP {exc.status} {exc.message}"
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    return str(exc) or type(exc).__name__


def _os_reason(exc: OSError) -> str:
    """``connection refused``: the system's words for the error, lower case."""
    if exc.errno:
        return os.strerror(exc.errno).lower()
    return str(exc) or type(exc).__name__


def _hand_back(texts: list[str], tier: str, budget: Any) -> ShardOutcome:
    raise RuntimeError("this node runs no shards")
