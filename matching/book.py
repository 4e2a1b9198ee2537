"""The continuous limit order book of one instrument: price-time priority.

Layout, chosen for speed in plain CPython (see bench/README.md):

- Each side maps a price to a `Level`: the total open quantity, and a FIFO list
  of `Order` records with a head index. Taking from the front advances the head;
  the list is compacted once the dead prefix is long.
- A cancelled order, or the old place of an order that lost its priority, stays
  in its list as a dead entry (``leaves == 0``) until the head passes it. Nothing
  else refers to it, so removing an order is O(1).
- The best price of each side is cached; a heap of prices (bids negated) finds
  the next level when the best one empties. Prices of deleted levels are removed
  from the heap lazily.

The book knows nothing of money except what a market buy can afford: the engine
passes a budget and the fee rate, and the book stops filling when the next lot
would cost more. It never reads a clock and never fails on a valid call.

In a call phase orders rest without matching, so the book may be crossed; a call
auction then takes the executable lots off both sides with `Book.take`.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Final

from matching.errors import InvariantViolation
from matching.order import (
    BUY,
    CANCEL_BOTH,
    CANCEL_TAKER,
    NO_ASK,
    NO_BID,
    SELL,
    UNLIMITED,
    Order,
    affordable_lots,
    fee_for,
)

__all__ = ["FILL", "STOP_FUNDS", "STOP_NONE", "STOP_SELF_TRADE", "STP_CANCEL", "Book"]

FILL: Final = 0
"""A happening ``(FILL, maker, price, qty)``: the taker traded with ``maker``."""
STP_CANCEL: Final = 1
"""A happening ``(STP_CANCEL, maker, 0, qty)``: self-trade prevention cancelled
``maker``, whose open quantity was ``qty``."""

STOP_NONE: Final = 0
"""The taker matched all it could: it is filled or no longer crosses."""
STOP_SELF_TRADE: Final = 1
"""Self-trade prevention cancels the taker's remainder."""
STOP_FUNDS: Final = 2
"""A market buy ran out of budget."""

Happening = tuple[int, Order, int, int]

_COMPACT_AT: Final = 64
"""Dead queue entries a level tolerates before it is compacted."""
_HEAP_SLACK: Final = 64
"""Stale prices a side's heap tolerates beyond twice its levels."""


class Level:
    """The orders at one price, oldest first, from index ``head`` on.

    ``dead`` counts the entries from ``head`` on whose order has left the book.
    A plain class with slots rather than a msgspec struct: the matching loop
    writes ``qty`` and ``head`` at every fill, and CPython specialises stores
    to slots (a struct's go through its own ``__setattr__``, about three times
    slower).
    """

    __slots__ = ("dead", "head", "orders", "qty")

    def __init__(self, qty: int, head: int, orders: list[Order]) -> None:
        self.qty = qty
        self.head = head
        self.orders = orders
        self.dead = 0


class Book:
    """The continuous order book of one instrument.

    Attributes:
        bid: best bid price, or `NO_BID` when there are no bids.
        ask: best ask price, or `NO_ASK` when there are no asks.
    """

    __slots__ = ("_heaps", "_levels", "ask", "bid")

    def __init__(self) -> None:
        self._levels: tuple[dict[int, Level], dict[int, Level]] = ({}, {})
        self._heaps: tuple[list[int], list[int]] = ([], [])
        self.bid = NO_BID
        self.ask = NO_ASK

    # -- entering and leaving ---------------------------------------------------

    def add(self, order: Order) -> None:
        """Rest ``order`` at the back of its price level."""
        side = order.side
        price = order.price
        levels = self._levels[side]
        level = levels.get(price)
        if level is not None:
            level.qty += order.leaves
            level.orders.append(order)
            return

        levels[price] = Level(order.leaves, 0, [order])
        heap = self._heaps[side]
        if side == BUY:
            heapq.heappush(heap, -price)
            if price > self.bid:
                self.bid = price
        else:
            heapq.heappush(heap, price)
            if price < self.ask:
                self.ask = price
        if len(heap) > 2 * len(levels) + _HEAP_SLACK:
            self._rebuild_heap(side)

    def remove(self, order: Order) -> None:
        """Take a resting ``order`` off the book and set its leaves to 0."""
        side = order.side
        price = order.price
        level = self._levels[side][price]
        level.qty -= order.leaves
        order.leaves = 0
        if level.qty == 0:
            self._drop_level(side, price)
            return
        # Dead entries behind a long-lived order are never reached by the head:
        # drop them once they are half the queue, so memory follows live orders.
        level.dead += 1
        if level.dead > _COMPACT_AT and level.dead * 2 > len(level.orders) - level.head:
            level.orders = [o for o in level.orders[level.head :] if o.leaves]
            level.head = 0
            level.dead = 0

    def reduce(self, order: Order, leaves: int) -> None:
        """Lower a resting order's open quantity in place; it keeps its priority."""
        self._levels[order.side][order.price].qty -= order.leaves - leaves
        order.leaves = leaves

    # -- matching ---------------------------------------------------------------

    def would_trade(self, side: int, price: int) -> bool:
        """Whether an order on ``side`` at ``price`` crosses the opposite best."""
        if side == BUY:
            return self.ask <= price
        return self.bid >= price

    def match(
        self,
        taker: Order,
        limit: int,
        budget: int,
        fee_bps: int,
        out: list[Happening],
    ) -> int:
        """Trade ``taker`` against the opposite side, best price first.

        Fills are at each maker's price while the maker crosses ``limit``. A
        maker of the taker's own account is handled by the taker's self-trade
        prevention mode. With ``budget`` >= 0 (a market buy) the fills stop when
        the next lot, with its fee at ``fee_bps``, would cost more than is left.

        Appends the happenings to ``out`` in the order they happened, updates the
        makers' and the taker's ``leaves`` (not ``filled``: the engine settles
        that), and returns why matching stopped: `STOP_NONE`,
        `STOP_SELF_TRADE` or `STOP_FUNDS`.
        """
        side = taker.side
        opp = 1 - side
        levels = self._levels[opp]
        remaining = taker.leaves
        account = taker.account
        stop = STOP_NONE
        while remaining:
            best = self.ask if side == BUY else self.bid
            if (best > limit) if side == BUY else (best < limit):
                break
            level = levels[best]
            orders = level.orders
            head = level.head
            while remaining:
                maker = orders[head]
                open_qty = maker.leaves
                if not open_qty:
                    head += 1
                    level.dead -= 1
                    continue

                if maker.account == account:
                    if taker.stp == CANCEL_TAKER:
                        stop = STOP_SELF_TRADE
                        break
                    out.append((STP_CANCEL, maker, 0, open_qty))
                    maker.leaves = 0
                    level.qty -= open_qty
                    head += 1
                    if taker.stp == CANCEL_BOTH:
                        stop = STOP_SELF_TRADE
                        break
                    if not level.qty:
                        break
                    continue

                qty = remaining if remaining < open_qty else open_qty
                if budget != UNLIMITED:
                    cost = best * qty + fee_for(best * qty, fee_bps)
                    if cost > budget:
                        stop = STOP_FUNDS
                        qty = affordable_lots(best, fee_bps, budget)
                        if not qty:
                            break
                        cost = best * qty + fee_for(best * qty, fee_bps)
                    budget -= cost

                out.append((FILL, maker, best, qty))
                remaining -= qty
                level.qty -= qty
                if qty == open_qty:
                    maker.leaves = 0
                    head += 1
                    if not level.qty:
                        break
                else:
                    maker.leaves = open_qty - qty
                if stop:
                    break

            if level.qty:
                level.head = head
                if head > _COMPACT_AT and head * 2 > len(orders):
                    del orders[:head]
                    level.head = 0
            else:
                self._drop_level(opp, best)
            if stop:
                break
        taker.leaves = remaining
        return stop

    def take_from(self, taker: Order, limit: int, allowed: set[int]) -> list[Happening]:
        """Trade ``taker`` only with resting orders of the ``allowed`` accounts,
        best price first and oldest first, while they cross ``limit``; every
        other order keeps its place. Updates the leaves as `match` does and
        returns the fills. Slower than `match` (it walks the orders it skips),
        and only for orders that name their counterparties.
        """
        out: list[Happening] = []
        if not allowed:
            return out
        side = taker.side
        eligible = [
            maker
            for maker in self.resting(1 - side)
            if maker.account in allowed
            and (maker.price <= limit if side == BUY else maker.price >= limit)
        ]
        remaining = taker.leaves
        for maker in eligible:
            if not remaining:
                break
            qty = min(remaining, maker.leaves)
            out.append((FILL, maker, maker.price, qty))
            remaining -= qty
            if qty == maker.leaves:
                self.remove(maker)
            else:
                self.reduce(maker, maker.leaves - qty)
        taker.leaves = remaining
        return out

    def fillable(self, taker: Order, limit: int, budget: int, fee_bps: int) -> int:
        """How many lots `match` would fill for ``taker`` now, changing nothing.

        It walks the book exactly as `match` does, self-trade prevention and
        budget included, so that a FOK order can be checked before it trades.
        """
        side = taker.side
        book_side = self._levels[1 - side]
        prices = sorted(book_side, reverse=side == SELL)
        wanted = taker.leaves
        got = 0
        for price in prices:
            if (price > limit) if side == BUY else (price < limit):
                break
            level = book_side[price]
            for maker in level.orders[level.head :]:
                if not maker.leaves:
                    continue
                if maker.account == taker.account:
                    if taker.stp == CANCEL_TAKER or taker.stp == CANCEL_BOTH:
                        return got
                    continue
                qty = min(wanted - got, maker.leaves)
                if budget != UNLIMITED:
                    lots = affordable_lots(price, fee_bps, budget)
                    if lots < qty:
                        return got + lots
                    budget -= price * qty + fee_for(price * qty, fee_bps)
                got += qty
                if got == wanted:
                    return got
        return got

    def take(self, side: int, qty: int) -> tuple[list[Order], list[int]]:
        """Take ``qty`` lots off ``side``, best price first, oldest first.

        Used by a call auction once it knows its volume. Returns the orders in
        priority order and, beside them, the lots taken from each (two lists,
        which cost less than a pair per order); the orders' ``leaves`` are
        lowered (to 0 for those taken completely, which leave the book).
        ``qty`` must not exceed the side's volume.
        """
        levels = self._levels[side]
        taken: list[Order] = []
        lots_taken: list[int] = []
        while qty:
            best = self.bid if side == BUY else self.ask
            level = levels[best]
            orders = level.orders
            head = level.head
            while qty:
                order = orders[head]
                open_qty = order.leaves
                if not open_qty:
                    head += 1
                    level.dead -= 1
                    continue
                lots = qty if qty < open_qty else open_qty
                taken.append(order)
                lots_taken.append(lots)
                qty -= lots
                level.qty -= lots
                order.leaves = open_qty - lots
                if lots == open_qty:
                    head += 1
                    if not level.qty:
                        break
            if level.qty:
                level.head = head
            else:
                self._drop_level(side, best)
        return taken, lots_taken

    # -- reading ----------------------------------------------------------------

    def crossing_levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The levels a call auction can trade: bids priced at or above the best
        ask and asks at or below the best bid, as (price, qty) in no particular
        order; two empty lists when the book is not crossed.

        Outside this region the executable volume is 0, so clearing over it
        alone gives the same price as clearing over the whole book. It walks
        each side's price heap only as deep as the region, so it costs in
        proportion to the levels it returns, not to the whole book.
        """
        bid, ask = self.bid, self.ask
        if bid < ask:
            return [], []
        return self._heap_walk(BUY, ask), self._heap_walk(SELL, bid)

    def _heap_walk(self, side: int, limit: int) -> list[tuple[int, int]]:
        # Heap order: a child is never better than its parent, so a subtree
        # whose root is outside the region holds nothing inside it.
        heap = self._heaps[side]
        levels = self._levels[side]
        sign = -1 if side == BUY else 1
        size = len(heap)
        found: dict[int, int] = {}
        stack = [0] if heap else []
        while stack:
            i = stack.pop()
            price = sign * heap[i]
            if (price < limit) if side == BUY else (price > limit):
                continue
            level = levels.get(price)
            if level is not None:
                found[price] = level.qty
            child = 2 * i + 1
            if child < size:
                stack.append(child)
                if child + 1 < size:
                    stack.append(child + 1)
        return list(found.items())

    def levels(self, side: int) -> list[tuple[int, int]]:
        """Every level of ``side`` as (price, qty), in no particular order."""
        return [(price, level.qty) for price, level in self._levels[side].items()]

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int]]:
        """The best ``n`` levels of ``side`` (all if None) as (price, qty)."""
        levels = self._levels[side]
        prices = sorted(levels, reverse=side == BUY)
        if n is not None:
            prices = prices[:n]
        return [(p, levels[p].qty) for p in prices]

    def level_qty(self, side: int, price: int) -> int:
        """The open quantity at ``price`` on ``side``; 0 if there is no level."""
        level = self._levels[side].get(price)
        return 0 if level is None else level.qty

    def resting(self, side: int) -> Iterator[Order]:
        """The open orders of ``side``, best price first, oldest first."""
        levels = self._levels[side]
        for price in sorted(levels, reverse=side == BUY):
            level = levels[price]
            for order in level.orders[level.head :]:
                if order.leaves:
                    yield order

    def volume(self, side: int) -> int:
        """Total open lots on ``side``."""
        return sum(level.qty for level in self._levels[side].values())

    def check(self, crossed_ok: bool = False) -> None:
        """Raise `InvariantViolation` if the book's structure is inconsistent,
        or if it is crossed and ``crossed_ok`` is False."""
        for side in (BUY, SELL):
            levels = self._levels[side]
            heap_prices = {-p if side == BUY else p for p in self._heaps[side]}
            for price, level in levels.items():
                live = [o for o in level.orders[level.head :] if o.leaves]
                total = sum(o.leaves for o in live)
                if level.qty <= 0 or total != level.qty:
                    raise InvariantViolation(
                        f"level {side}:{price} has qty {level.qty}, orders sum {total}"
                    )
                if any(o.price != price or o.side != side for o in live):
                    raise InvariantViolation(f"order on wrong level {side}:{price}")
                if any(o.leaves < 0 for o in level.orders):
                    raise InvariantViolation(f"negative leaves at {side}:{price}")
                dead = len(level.orders) - level.head - len(live)
                if dead != level.dead:
                    raise InvariantViolation(
                        f"level {side}:{price} counts {level.dead} dead, has {dead}"
                    )
                if price not in heap_prices:
                    raise InvariantViolation(f"level {side}:{price} not in heap")
        want_bid = max(self._levels[BUY], default=NO_BID)
        want_ask = min(self._levels[SELL], default=NO_ASK)
        if (self.bid, self.ask) != (want_bid, want_ask):
            raise InvariantViolation(
                f"cached best {self.bid}/{self.ask}, real {want_bid}/{want_ask}"
            )
        if self.bid >= self.ask and not crossed_ok:
            raise InvariantViolation(f"book crossed: bid {self.bid} ask {self.ask}")

    # -- internals --------------------------------------------------------------

    def _drop_level(self, side: int, price: int) -> None:
        levels = self._levels[side]
        del levels[price]
        if side == BUY:
            if price != self.bid:
                return
            heap = self._heaps[BUY]
            while heap and -heap[0] not in levels:
                heapq.heappop(heap)
            self.bid = -heap[0] if heap else NO_BID
        else:
            if price != self.ask:
                return
            heap = self._heaps[SELL]
            while heap and heap[0] not in levels:
                heapq.heappop(heap)
            self.ask = heap[0] if heap else NO_ASK

    def _rebuild_heap(self, side: int) -> None:
        sign = -1 if side == BUY else 1
        heap = [sign * p for p in self._levels[side]]
        heapq.heapify(heap)
        self._heaps[side][:] = heap
