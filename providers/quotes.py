"""A node's quotes on futures windows: one GTC sell per window that trades.

`FuturesQuotes` is the futures half of a `providers.daemon.Node`'s quoting (the
node quotes ``<class>-SPOT`` itself). On every connection it subscribes to the
public ``instruments`` and ``phases`` channels, reads the listed futures of its
class from ``GET /api/v1/instruments`` and then follows them on those channels:

- ``listed`` adds a window; the node registers again to learn its capacity.
- ``phase`` moves it between phases. It is quoted while it trades
  (``continuous``, the ``closing`` call, an operator's ``pre_open`` or
  ``batch``); a ``halted`` window's quote is left alone.
- ``closed`` (the gate), ``settlement``, or the quote's cancellation with
  reason ``closed`` end its trading: the server has cancelled the quote.
- ``delivery`` ``ended`` forgets it (the instrument is delisted).

A window's capacity is what the server registered for it, in lots: the
``register_node`` ack's ``capacity`` for the window's symbol (the CU the
account's nodes deliver over the window). The node keeps one GTC sell limit
order per trading window for its unsold lots, at the node's ask
(`providers.pricing.Pricing`) with the window's own utilisation: lots sold in
that window over its capacity. A fill on a window marks lots sold for good: a
future's lease is firm, so they never come back. Windows that overlap (a
two-hour window around a one-hour one) share capacity as the engine counts it
(`plan`).

Known limitations: a node does not know what a previous run of it, or its
account's other orders, sold or offer in a window. When the server refuses a
quote with ``INSUFFICIENT_CAPACITY``, the node halves that window's quote
until one is accepted (a few requests), so it may quote less than it could.
And since it quotes all of the account's capacity, a sell the provider places
on a window by hand finds none left.

`RequestRefused`, the error of a request the exchange refused, is defined
here and used by `providers.daemon` too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from providers.pricing import Pricing

__all__ = [
    "MARKET_MESSAGES",
    "FuturesQuotes",
    "Quote",
    "RequestRefused",
    "Window",
    "fetch_instruments",
    "instruments_url",
    "plan",
]

log = logging.getLogger("cux.node")

MARKET_MESSAGES = frozenset({"listed", "phase", "settlement", "delivery"})
"""The public messages `FuturesQuotes.on_market` follows."""

TRADING_PHASES = frozenset({"continuous", "closing", "pre_open", "batch"})
"""Phases in which a window accepts (and so gets) a quote."""

Request = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class RequestRefused(Exception):
    """The exchange answered a request with an error."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass(slots=True)
class Quote:
    """One open sell order of the node."""

    order_id: str
    price: int
    qty: int


@dataclass(slots=True)
class Window:
    """A listed future of the node's class.

    Attributes:
        symbol: the future's symbol.
        start: the window's start, ns since the epoch.
        end: its end, ns.
        phase: its phase as last heard.
        capacity: lots the server registered for it; None: not known yet.
        quote: the node's open sell on it.
        ceiling: the most lots the server accepted to be quoted after a refusal
            for capacity; None: no refusal.
        paused: a quote was refused for another reason; no new one until its
            phase changes.
    """

    symbol: str
    start: int
    end: int
    phase: str
    capacity: int | None = None
    quote: Quote | None = None
    ceiling: int | None = None
    paused: bool = False

    @property
    def trading(self) -> bool:
        return self.phase in TRADING_PHASES

    def overlaps(self, other: Window) -> bool:
        return self.start < other.end and other.start < self.end


def plan(windows: Iterable[Window], sold: dict[str, int]) -> dict[str, int]:
    """Lots to quote per trading window, by symbol.

    The engine's rule: for every window, the lots sold and offered in all the
    windows that overlap it (itself included) must fit its capacity. Windows
    are served in order of start, so an earlier window gets what fits first;
    windows that overlap no other simply get their capacity less what is sold.
    """
    known = sorted(
        (w for w in windows if w.capacity is not None),
        key=lambda w: (w.start, w.end, w.symbol),
    )
    near = {w.symbol: [o for o in known if o.overlaps(w)] for w in known}
    lots: dict[str, int] = {}

    def room(window: Window) -> int:
        """What ``window``'s capacity leaves after the shorts that count in it."""
        shorts = sum(
            sold.get(x.symbol, 0) + lots.get(x.symbol, 0) for x in near[window.symbol]
        )
        return (window.capacity or 0) - shorts

    for window in known:
        if not window.trading or window.paused:
            continue
        free = min(room(other) for other in near[window.symbol])
        if window.ceiling is not None:
            free = min(free, window.ceiling)
        lots[window.symbol] = max(0, free)
    return lots


def instruments_url(ws_url: str) -> str:
    """The REST listing beside a websocket address: ``ws://H:P/ws`` gives
    ``http://H:P/api/v1/instruments``."""
    url = URL(ws_url)
    path = url.path.removesuffix("/ws").rstrip("/")
    scheme = "https" if url.scheme in ("wss", "https") else "http"
    return str(url.with_scheme(scheme).with_path(f"{path}/api/v1/instruments"))


async def fetch_instruments(
    http: aiohttp.ClientSession, ws_url: str, timeout: float
) -> list[dict[str, Any]]:
    """The exchange's listed instruments (``GET /api/v1/instruments``).

    Raises:
        aiohttp.ClientError: the request failed or was answered with an error.
        TimeoutError: no answer within ``timeout`` seconds.
    """
    async with http.get(
        instruments_url(ws_url), timeout=aiohttp.ClientTimeout(total=timeout)
    ) as response:
        response.raise_for_status()
        body = await response.json()
    return list(body["instruments"])


class FuturesQuotes:
    """A node's futures windows and its quotes on them (see the module doc).

    Args:
        resource_class: the node's class.
        node_id: the node's id; its orders' ``client_order_id`` start with
            ``<node_id>.``.
        request: sends a request on the node's connection and returns the
            answer; raises `RequestRefused` when the exchange refuses it.
        tag: a new ``client_order_id`` of the node.
        pricing: the node's pricing strategy now.
        local_lots: the lots the node delivers in so many seconds, for a
            server whose ack does not say a window's capacity.
        changed: called when the quotes need to be brought up to date.
        stopping: true once the node stops quoting.
    """

    def __init__(
        self,
        resource_class: str,
        node_id: str,
        request: Request,
        tag: Callable[[], str],
        pricing: Callable[[], Pricing],
        local_lots: Callable[[int], int],
        changed: Callable[[], None],
        stopping: Callable[[], bool],
    ) -> None:
        self.resource_class = resource_class
        self.spot = f"{resource_class}-SPOT"
        self.windows: dict[str, Window] = {}
        self.sold: dict[str, int] = {}
        """Lots sold per future's symbol."""
        self._prefix = f"{node_id}."
        self._request = request
        self._tag = tag
        self._pricing = pricing
        self._local_lots = local_lots
        self._changed = changed
        self._stopping = stopping
        self._registered: dict[str, int] | None = {}
        self._heard: dict[str, str] | None = None

    def ours(self, symbol: str) -> bool:
        """Whether ``symbol`` is one of the class's futures (by its name)."""
        return symbol.startswith(f"{self.resource_class}-") and symbol != self.spot

    # -- the connection ----------------------------------------------------------

    def reset(self) -> None:
        """A new connection: the server cancelled the quotes with the old one."""
        for window in self.windows.values():
            window.quote = None

    async def start(self, fetch: Callable[[], Awaitable[list[dict[str, Any]]]]) -> None:
        """Follow the class's futures: subscribe, read the listing, cancel
        what an earlier run of the node left open on them."""
        # What the channels say from now on wins over the listing read after.
        self._heard = {}
        await self._request({"op": "subscribe", "channels": ["instruments", "phases"]})
        try:
            rows: list[dict[str, Any]] | None = await fetch()
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError) as exc:
            log.warning("cannot read the listed futures: %r", exc)
            rows = None
        self.learn(rows)
        await self._clear_leftovers()

    def learn(self, rows: list[dict[str, Any]] | None) -> None:
        """Take the class's windows from the REST listing ``rows`` (None: it
        could not be read), keeping what the channels said since `start`."""
        heard, self._heard = self._heard or {}, None
        if rows is None:
            return
        listed = set()
        for row in rows:
            symbol = str(row.get("symbol"))
            if row.get("kind") != "future" or not self.ours(symbol):
                continue
            listed.add(symbol)
            phase = heard.get(symbol, str(row["phase"]))
            window = self.windows.get(symbol)
            if window is None and phase != "delisted":
                window = Window(symbol, int(row["start"]), int(row["end"]), phase)
                window.capacity = self._capacity_of(window)
                self.windows[symbol] = window
            elif window is not None and window.phase != "closed":
                window.phase = phase
        for symbol in [s for s in self.windows if s not in listed | heard.keys()]:
            self._forget(symbol)  # delisted while the node was away
        trading = sorted(s for s, w in self.windows.items() if w.trading)
        if trading:
            log.info("futures of %s trading: %s", self.resource_class, trading)

    def registered(self, capacity: dict[str, Any] | None) -> None:
        """Take each window's capacity from a ``register_node`` ack's
        ``capacity`` (None: the ack does not say it)."""
        self._registered = None
        if capacity is not None:
            self._registered = {
                s: lots
                for s, lots in capacity.items()
                if self.ours(s) and isinstance(lots, int)
            }
        for window in self.windows.values():
            lots = self._capacity_of(window)
            if lots is None:
                # Not trading when the node registered: the server keeps what
                # it registered before (it still counts for overlapping ones).
                lots = window.capacity or 0
            if lots != window.capacity:
                window.ceiling = None
                window.capacity = lots
                if window.trading:
                    log.info("capacity of %s: %d lots", window.symbol, lots)

    def unregistered(self) -> bool:
        """Whether a trading window waits for its capacity (register again)."""
        return any(w.capacity is None and w.trading for w in self.windows.values())

    def _capacity_of(self, window: Window) -> int | None:
        if self._registered is None:
            return self._local_lots((window.end - window.start) // 10**9)
        return self._registered.get(window.symbol)

    async def _clear_leftovers(self) -> None:
        """Cancel the node's sells on futures that none of its quotes holds
        (an earlier run of it left them)."""
        try:
            reply = await self._request({"op": "orders"})
        except RequestRefused as exc:
            log.warning("cannot list the open orders: %s", exc)
            return
        held = {w.quote.order_id for w in self.windows.values() if w.quote}
        for order in reply.get("orders") or []:
            symbol, tag = str(order.get("symbol")), order.get("client_order_id")
            if (
                self.ours(symbol)
                and isinstance(tag, str)
                and tag.startswith(self._prefix)
                and order.get("order_id") not in held
            ):
                with contextlib.suppress(RequestRefused):
                    await self._request({"op": "cancel", "order_id": order["order_id"]})
                log.info("cancelled order %s left on %s", order["order_id"], symbol)

    async def cancel(self) -> None:
        """Cancel every quote: a ``cancel_all`` per window that trades or holds
        one (which also catches a place whose answer has not come)."""
        symbols = sorted(
            s for s, w in self.windows.items() if w.trading or w.quote is not None
        )
        results = await asyncio.gather(
            *(self._request({"op": "cancel_all", "symbol": s}) for s in symbols),
            return_exceptions=True,
        )
        for symbol, result in zip(symbols, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("cancelling the quotes on %s failed: %r", symbol, result)
        for window in self.windows.values():
            window.quote = None
        if symbols:
            log.info("quotes cancelled on %s", ", ".join(symbols))

    # -- messages ----------------------------------------------------------------

    def on_market(self, message: dict[str, Any]) -> None:
        """A message of the ``instruments`` or ``phases`` channel."""
        kind, symbol = message.get("type"), str(message.get("symbol"))
        if not self.ours(symbol):
            return
        if kind == "listed":
            self._listed(message)
        elif kind == "delivery" and message.get("status") == "ended":
            self._hear(symbol, "delisted")
            self._forget(symbol)
        elif kind == "phase":
            self._hear(symbol, str(message.get("phase")))
            window = self.windows.get(symbol)
            if window is not None and window.phase != "closed":
                window.phase, window.paused = str(message.get("phase")), False
                if window.phase == "closed":
                    self._ended(window)
                self._changed()
        elif kind == "settlement":
            self._hear(symbol, "closed")
            window = self.windows.get(symbol)
            if window is not None and window.phase != "closed":
                self._ended(window)

    def _hear(self, symbol: str, phase: str) -> None:
        if self._heard is not None:
            self._heard[symbol] = phase

    def _listed(self, message: dict[str, Any]) -> None:
        symbol = str(message["symbol"])
        if message.get("resource_class") != self.resource_class:
            return
        # The engine lists a window in its closing call when the call is due.
        calling = int(message["ts"]) >= int(message["closing_call_at"])
        phase = "closing" if calling else "continuous"
        self._hear(symbol, phase)
        if symbol in self.windows:
            return
        window = Window(symbol, int(message["start"]), int(message["end"]), phase)
        window.capacity = self._capacity_of(window)
        self.windows[symbol] = window
        log.info("future %s listed", symbol)
        self._changed()

    def _ended(self, window: Window) -> None:
        """Trading ended at the gate; the server cancelled the quote."""
        window.phase = "closed"
        window.quote = None
        log.info(
            "trading of %s ended: %d lots sold, quote gone",
            window.symbol,
            self.sold.get(window.symbol, 0),
        )

    def _forget(self, symbol: str) -> None:
        self.windows.pop(symbol, None)
        self.sold.pop(symbol, None)

    def on_order(self, message: dict[str, Any]) -> None:
        """An update of one of the node's orders on a future."""
        window = self.windows.get(str(message.get("symbol")))
        if window is None or window.quote is None:
            return
        quote = window.quote
        if message.get("order_id") != quote.order_id:
            return
        if message.get("status") in ("filled", "cancelled", "expired"):
            window.quote = None
            if message.get("reason") == "closed" and window.phase != "closed":
                self._ended(window)
        else:
            quote.qty = int(message.get("leaves", quote.qty))
        self._changed()

    def on_fill(self, message: dict[str, Any]) -> None:
        """A fill of one of the node's sells on a future: lots sold for good."""
        symbol, qty = str(message["symbol"]), int(message["qty"])
        self.sold[symbol] = self.sold.get(symbol, 0) + qty
        log.info("sold %d lots of %s at %d µcr", qty, symbol, message["price"])
        self._changed()

    # -- quoting -----------------------------------------------------------------

    async def requote(self) -> None:
        """Bring every trading window's quote to its planned lots at the ask.

        Quotes that shrink go first, so that the account's short never passes
        a window's capacity while another grows."""
        lots = plan(self.windows.values(), self.sold)
        pricing = self._pricing()

        def grows(w: Window) -> bool:
            return lots.get(w.symbol, 0) > (w.quote.qty if w.quote else 0)

        live = [w for w in self.windows.values() if w.trading]
        for window in sorted(live, key=lambda w: (grows(w), w.start, w.symbol)):
            if self._stopping():
                return
            await self._quote(window, lots.get(window.symbol, 0), pricing)

    async def _quote(self, window: Window, qty: int, pricing: Pricing) -> None:
        price = pricing.ask(self.sold.get(window.symbol, 0), window.capacity or 0)
        quote = window.quote
        try:
            if qty <= 0:
                if quote is not None:
                    window.quote = None
                    await self._request({"op": "cancel", "order_id": quote.order_id})
                    log.info("quote on %s cancelled", window.symbol)
            elif quote is None:
                await self._place(window, price, qty)
            elif (quote.price, quote.qty) != (price, qty):
                await self._request(
                    {
                        "op": "amend",
                        "order_id": quote.order_id,
                        "qty": qty,
                        "price": price,
                    }
                )
                quote.price, quote.qty = price, qty
                log.info("re-quoted %d lots of %s at %d µcr", qty, window.symbol, price)
        except RequestRefused as exc:
            self._refused(window, quote, qty, exc)

    def _refused(
        self, window: Window, quote: Quote | None, qty: int, exc: RequestRefused
    ) -> None:
        log.warning("quote on %s refused: %s", window.symbol, exc)
        if exc.code == "INSUFFICIENT_CAPACITY" and qty > 0:
            # Lots sold that the node does not know of: try half as many.
            window.ceiling = qty // 2
            self._changed()
        elif quote is not None and window.quote is quote:
            # The order is gone (filled or cancelled meanwhile): quote anew.
            window.quote = None
            self._changed()
        elif quote is None and exc.code in ("NOT_TRADING", "UNKNOWN_SYMBOL"):
            # Not trading after all (its phase message is on its way).
            window.paused = True

    async def _place(self, window: Window, price: int, qty: int) -> None:
        ack = await self._request(
            {
                "op": "place",
                "symbol": window.symbol,
                "side": "sell",
                "type": "limit",
                "price": price,
                "qty": qty,
                "tif": "GTC",
                "client_order_id": self._tag(),
            }
        )
        window.quote = Quote(str(ack["order_id"]), price, qty)
        log.info("quoted %d lots of %s at %d µcr", qty, window.symbol, price)
