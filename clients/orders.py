"""Order tracking: what became of each order, from the private channels.

`OrderTracker` follows the account's ``orders`` and ``fills`` channels (the
client subscribes to both on login when it tracks orders) and resolves
`wait` once an order is terminal and every fill it counted has arrived (the
server sends an order's ``filled`` status just before that fill's message).

It remembers every open order it saw and the last `keep` terminal ones, so
memory follows the account's open orders.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from dataclasses import dataclass, field

from clients.messages import TERMINAL_ORDER_STATUSES, Fill, OpenOrder, OrderResult
from clients.messages import OrderUpdate as OrderUpdateMessage

__all__ = ["OrderTracker"]


@dataclass
class _Entry:
    order_id: str
    status: str = "pending"
    filled: int = 0
    leaves: int = 0
    reason: str | None = None
    # Lots filled before tracking began (fills not seen by this client).
    base_filled: int = 0
    fills: list[Fill] = field(default_factory=list)
    waiters: list[asyncio.Future[OrderResult]] = field(default_factory=list)

    @property
    def done(self) -> bool:
        if self.status == "unknown":
            return True
        seen = self.base_filled + sum(f.qty for f in self.fills)
        return self.status in TERMINAL_ORDER_STATUSES and seen >= self.filled

    def result(self) -> OrderResult:
        return OrderResult(
            self.order_id,
            self.status,
            self.filled,
            self.leaves,
            self.reason,
            list(self.fills),
        )


class OrderTracker:
    """The state of the account's orders, as its private channels tell it.

    Args:
        keep: how many terminal orders to remember for a late `wait`.
    """

    def __init__(self, keep: int = 10_000) -> None:
        self.keep = keep
        self._open: dict[str, _Entry] = {}
        self._done: OrderedDict[str, _Entry] = OrderedDict()

    def get(self, order_id: str) -> OrderResult | None:
        """The order's state as last seen, or None if never seen."""
        entry = self._open.get(order_id) or self._done.get(order_id)
        return None if entry is None else entry.result()

    def knows(self, order_id: str) -> bool:
        return order_id in self._open or order_id in self._done

    def placed(self, order_id: str, qty: int) -> None:
        """The server accepted an order of ``qty`` lots."""
        if not self.knows(order_id):
            self._open[order_id] = _Entry(order_id, leaves=qty)

    def follow(self, order: OpenOrder) -> None:
        """Track an open order first seen in an ``orders`` listing."""
        if not self.knows(order.order_id):
            self._open[order.order_id] = _Entry(
                order.order_id,
                status="new",
                filled=order.filled,
                leaves=order.leaves,
                base_filled=order.filled,
            )

    def on_order(self, update: OrderUpdateMessage) -> None:
        entry = self._entry(update.order_id)
        entry.status = update.status
        entry.filled = update.filled
        entry.leaves = update.leaves
        entry.reason = update.reason
        self._settle(entry)

    def on_fill(self, fill: Fill) -> None:
        entry = self._entry(fill.order_id)
        entry.fills.append(fill)
        self._settle(entry)

    def reconcile(self, open_orders: list[OpenOrder]) -> None:
        """After a reconnection: update the open orders from a fresh listing;
        an order no longer open ended while the client was away (status
        ``unknown``: its last fills and how it ended were not seen)."""
        listed = {o.order_id: o for o in open_orders}
        for order_id, entry in list(self._open.items()):
            info = listed.get(order_id)
            if info is None:
                entry.status = "unknown"
                entry.leaves = 0
                self._settle(entry)
                continue
            missed = info.filled - entry.filled
            entry.base_filled += max(missed, 0)
            entry.filled = info.filled
            entry.leaves = info.leaves

    async def wait(self, order_id: str) -> OrderResult:
        """The order's result once it is terminal (it must be known)."""
        entry = self._open.get(order_id) or self._done.get(order_id)
        assert entry is not None, order_id
        if entry.done:
            return entry.result()
        future: asyncio.Future[OrderResult] = asyncio.get_running_loop().create_future()
        entry.waiters.append(future)
        try:
            return await future
        finally:
            if future in entry.waiters:
                entry.waiters.remove(future)

    def _entry(self, order_id: str) -> _Entry:
        entry = self._open.get(order_id) or self._done.get(order_id)
        if entry is None:
            entry = self._open[order_id] = _Entry(order_id)
        return entry

    def _settle(self, entry: _Entry) -> None:
        if not entry.done:
            return
        self._open.pop(entry.order_id, None)
        self._done[entry.order_id] = entry
        self._done.move_to_end(entry.order_id)
        while len(self._done) > self.keep:
            self._done.popitem(last=False)
        result = entry.result()
        for future in entry.waiters:
            if not future.done():
                future.set_result(result)
        entry.waiters.clear()
