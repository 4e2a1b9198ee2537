"""Trading from the client's side: orders, balances, and what became of them.

`TradingMixin` gives `clients.Client` its trading calls; see `clients.client`
for the connection they go over. Every call raises the `clients.errors`
exception of the server's code when the request is refused.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from clients.errors import ClientError, OrderNotFound
from clients.messages import Balance, OpenOrder, OrderResult, PlacedOrder
from clients.orders import OrderTracker

__all__ = ["TradingMixin"]

T = TypeVar("T")


class _Ack(msgspec.Struct):
    order_id: str | None = None
    account: str | None = None
    cancelled: int | None = None


class _OrdersBody(msgspec.Struct):
    orders: list[OpenOrder]


class _Pong(msgspec.Struct):
    server_time: int


class TradingMixin:
    """The trading calls of `clients.Client`."""

    if TYPE_CHECKING:
        track_orders: bool
        orders_tracker: OrderTracker

        async def _call(
            self,
            op: str,
            result: type[T],
            timeout: float | None,
            *,
            internal: bool = False,
            **fields: Any,
        ) -> T: ...

    async def place(
        self,
        symbol: str,
        side: str,
        qty: int,
        price: int | None = None,
        *,
        tif: str | None = None,
        expire_at: int | None = None,
        post_only: bool = False,
        stp: str | None = None,
        client_order_id: str | None = None,
        counterparties: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> PlacedOrder:
        """Enter an order: a limit order at ``price`` (µcr per lot), or a
        market order when ``price`` is None.

        Args:
            side: ``buy`` or ``sell``.
            qty: whole lots.
            tif: ``GTC`` (a limit order's default), ``IOC`` (a market order's
                default), ``FOK`` or ``GTD`` (with ``expire_at``, ns).
            post_only: reject a limit order that would trade on arrival.
            stp: self-trade prevention, ``cancel_taker`` (default),
                ``cancel_maker`` or ``cancel_both``.
            client_order_id: your own label, at most 64 characters.
            counterparties: trade only with these accounts (1 to 64 names;
                an IOC limit order in continuous trading only); it passes
                over every other resting order. None: anyone.

        Raises:
            OrderRejected: InsufficientFunds, InvalidOrder, NotTrading, ...
                (see `clients.errors`).
        """
        order_type = "limit" if price is not None else "market"
        fields: dict[str, Any] = {
            "symbol": symbol,
            "side": side,
            "qty": qty,
            "type": order_type,
            "price": price,
            "tif": tif,
            "expire_at": expire_at,
            "post_only": post_only or None,
            "stp": stp,
            "client_order_id": client_order_id,
            "counterparties": None if counterparties is None else list(counterparties),
        }
        ack = await self._call("place", _Ack, timeout, **fields)
        assert ack.order_id is not None
        if self.track_orders:
            self.orders_tracker.placed(ack.order_id, qty)
        return PlacedOrder(
            ack.order_id,
            symbol,
            side,
            qty,
            price,
            order_type,
            tif,
            client_order_id,
        )

    async def buy(
        self, symbol: str, qty: int, price: int | None = None, **options: Any
    ) -> PlacedOrder:
        """`place` a buy order (market when ``price`` is None)."""
        return await self.place(symbol, "buy", qty, price, **options)

    async def sell(
        self, symbol: str, qty: int, price: int | None = None, **options: Any
    ) -> PlacedOrder:
        """`place` a sell order (market when ``price`` is None)."""
        return await self.place(symbol, "sell", qty, price, **options)

    async def amend(
        self,
        order_id: str,
        *,
        qty: int | None = None,
        price: int | None = None,
        timeout: float | None = None,
    ) -> None:
        """Change an open order's leaves quantity and/or price.

        Raises:
            OrderNotFound, OrderClosed, InvalidOrder, InsufficientFunds, ...
        """
        await self._call(
            "amend", _Ack, timeout, order_id=str(order_id), qty=qty, price=price
        )

    async def cancel(self, order_id: str, *, timeout: float | None = None) -> None:
        """Cancel an open order.

        Raises:
            OrderNotFound: no order of the account has this id.
            OrderClosed: it is already filled, cancelled or expired.
        """
        await self._call("cancel", _Ack, timeout, order_id=str(order_id))

    async def cancel_all(
        self, symbol: str | None = None, *, timeout: float | None = None
    ) -> int:
        """Cancel every open order of the account (of ``symbol`` only, if
        given); how many were cancelled."""
        ack = await self._call("cancel_all", _Ack, timeout, symbol=symbol)
        return ack.cancelled or 0

    async def orders(
        self, symbol: str | None = None, *, timeout: float | None = None
    ) -> list[OpenOrder]:
        """The account's open orders (of ``symbol`` only, if given), oldest first."""
        body = await self._call("orders", _OrdersBody, timeout, symbol=symbol)
        return body.orders

    async def balance(self, *, timeout: float | None = None) -> Balance:
        """The account's balances (µcr)."""
        return await self._call("balance", Balance, timeout)

    async def ping(self, *, timeout: float | None = None) -> int:
        """The server's clock, ns since the epoch."""
        return (await self._call("ping", _Pong, timeout)).server_time

    async def sync(self, *, timeout: float | None = None) -> None:
        """Return once every message the server sent before now has been
        handled: after an acknowledged request, its order, fill and balance
        messages (the server answers a ping after what it queued before)."""
        await self.ping(timeout=timeout)

    async def wait_order(
        self, order_id: str, timeout: float | None = None
    ) -> OrderResult:
        """What became of an order, once it is filled, cancelled or expired,
        with every fill this client saw.

        Args:
            timeout: seconds to wait; None waits as long as it takes.

        Raises:
            OrderNotFound: the order is neither known to this client nor open.
            TimeoutError: it is still open after ``timeout``.
            ClientError: the client does not track orders.
        """
        if not self.track_orders:
            raise ClientError("wait_order needs track_orders (and a login)")
        order_id = str(order_id)
        tracker = self.orders_tracker
        if not tracker.knows(order_id):
            for order in await self.orders():
                if order.order_id == order_id:
                    tracker.follow(order)
                    break
            else:
                raise OrderNotFound(
                    "UNKNOWN_ORDER", f"order {order_id} is not open nor seen here"
                )
        return await asyncio.wait_for(tracker.wait(order_id), timeout)

    # -- operators ------------------------------------------------------------------

    async def set_phase(
        self, symbol: str, phase: str, interval_ms: int | None = None
    ) -> None:
        """Change an instrument's phase now (operators only), running the
        auction the change calls for (``pre_open`` to ``continuous``: the
        opening auction, seen on ``auction.<symbol>``).

        Raises:
            AuthError: the account is no operator (``ROLE_NOT_ALLOWED``).
            OperatorError: an unknown phase or the current one (``INVALID_PHASE``).
        """
        await self._call(
            "set_phase", _Ack, None, symbol=symbol, phase=phase, interval_ms=interval_ms
        )
