"""A deliberately simple order book, written from the rules, to check the fast one.

`ReferenceBook` has the interface and the semantics of `matching.book.Book`, and
none of its speed. Each side is one plain list of the resting `Order` records in
the order they arrived; an order leaves the list the moment it leaves the book.
Every question (the best price, the next maker, the depth) is answered by
scanning or sorting that list again, so there is no cache, no heap and no dead
entry that could go stale.

The rules it follows (DESIGN.md, sections 4 and 5):

- Price-time priority: the best maker is the best price, and at that price the
  earliest arrival. A trade happens at the maker's price, while the maker's
  price crosses the taker's limit.
- Self-trade prevention, in the taker's mode, when the best maker belongs to
  the taker's own account: ``cancel_taker`` stops matching and the taker's
  remainder is cancelled; ``cancel_maker`` cancels that maker and matching goes
  on; ``cancel_both`` cancels that maker and then stops like ``cancel_taker``.
- A market buy has a budget: a fill takes only the lots whose cost plus fee
  (the fee rounded up per fill) fit in what is left of the budget, and matching
  stops once the next lot does not fit.
- A FOK order's feasibility check is the same computation as the match:
  `ReferenceBook.fillable` runs `ReferenceBook.match` on a copy of the book.

It is used by the tests only: ``Engine(config, book_factory=ReferenceBook)``.
"""

from __future__ import annotations

from collections.abc import Iterator

from matching.book import (
    FILL,
    STOP_FUNDS,
    STOP_NONE,
    STOP_SELF_TRADE,
    STP_CANCEL,
    Happening,
)
from matching.errors import InvariantViolation
from matching.order import (
    BUY,
    CANCEL_BOTH,
    CANCEL_MAKER,
    CANCEL_TAKER,
    NO_ASK,
    NO_BID,
    SELL,
    UNLIMITED,
    Order,
    affordable_lots,
    fee_for,
)

__all__ = ["ReferenceBook"]


class ReferenceBook:
    """The continuous order book of one instrument, kept as two plain lists.

    Attributes:
        bid: best bid price, or `NO_BID` when there are no bids.
        ask: best ask price, or `NO_ASK` when there are no asks.
    """

    def __init__(self) -> None:
        # The resting orders of each side (indexed by BUY and SELL), oldest first.
        self._sides: tuple[list[Order], list[Order]] = ([], [])

    @property
    def bid(self) -> int:
        """The highest bid price, or `NO_BID`."""
        return max((o.price for o in self._sides[BUY]), default=NO_BID)

    @property
    def ask(self) -> int:
        """The lowest ask price, or `NO_ASK`."""
        return min((o.price for o in self._sides[SELL]), default=NO_ASK)

    # -- entering and leaving ---------------------------------------------------

    def add(self, order: Order) -> None:
        """Rest ``order``: it arrives now, so it is the last at its price."""
        self._sides[order.side].append(order)

    def remove(self, order: Order) -> None:
        """Take a resting ``order`` off the book and set its leaves to 0."""
        self._take_off(order)

    def reduce(self, order: Order, leaves: int) -> None:
        """Lower a resting order's open quantity; its arrival stays the same."""
        order.leaves = leaves

    # -- matching ---------------------------------------------------------------

    def would_trade(self, side: int, price: int) -> bool:
        """Whether an order on ``side`` at ``price`` crosses a resting order."""
        return any(_crosses(side, o.price, price) for o in self._sides[1 - side])

    def match(
        self,
        taker: Order,
        limit: int,
        budget: int,
        fee_bps: int,
        out: list[Happening],
    ) -> int:
        """Trade ``taker`` against the best makers, one maker at a time.

        Same contract as `matching.book.Book.match`: appends the happenings to
        ``out`` in order, lowers the makers' and the taker's ``leaves``, and
        returns `STOP_NONE`, `STOP_SELF_TRADE` or `STOP_FUNDS`.
        """
        while taker.leaves:
            maker = self._best(1 - taker.side)
            if maker is None or not _crosses(taker.side, maker.price, limit):
                return STOP_NONE

            if maker.account == taker.account:
                if taker.stp == CANCEL_TAKER:
                    return STOP_SELF_TRADE
                out.append((STP_CANCEL, maker, 0, maker.leaves))
                self._take_off(maker)
                if taker.stp == CANCEL_BOTH:
                    return STOP_SELF_TRADE
                assert taker.stp == CANCEL_MAKER
                continue

            qty = min(taker.leaves, maker.leaves)
            if budget != UNLIMITED:
                fits = affordable_lots(maker.price, fee_bps, budget)
                if fits < qty:
                    # The budget runs out inside this fill: take what fits, stop.
                    if fits:
                        self._fill(taker, maker, fits, out)
                    return STOP_FUNDS
                notional = maker.price * qty
                budget -= notional + fee_for(notional, fee_bps)
            self._fill(taker, maker, qty, out)
        return STOP_NONE

    def take_from(self, taker: Order, limit: int, allowed: set[int]) -> list[Happening]:
        """Trade only with the ``allowed`` accounts' orders, in priority."""
        out: list[Happening] = []
        for maker in self._in_priority(1 - taker.side):
            crosses = (
                maker.price <= limit if taker.side == BUY else maker.price >= limit
            )
            if not taker.leaves or not crosses:
                break
            if maker.account in allowed:
                self._fill(taker, maker, min(taker.leaves, maker.leaves), out)
        return out

    def fillable(self, taker: Order, limit: int, budget: int, fee_bps: int) -> int:
        """How many lots `match` would fill for ``taker`` now, changing nothing.

        It is literally the same computation: `match` on copies of the book and
        of the taker.
        """
        trial = ReferenceBook()
        for side in (BUY, SELL):
            trial._sides[side].extend(o.copy() for o in self._sides[side])
        trial_taker = taker.copy()
        trial.match(trial_taker, limit, budget, fee_bps, [])
        return taker.leaves - trial_taker.leaves

    def take(self, side: int, qty: int) -> tuple[list[Order], list[int]]:
        """Take ``qty`` lots off ``side`` in priority order (a call auction):
        the orders, and the lots taken from each."""
        taken: list[Order] = []
        lots_taken: list[int] = []
        for order in self._in_priority(side):
            if not qty:
                break
            lots = min(qty, order.leaves)
            taken.append(order)
            lots_taken.append(lots)
            qty -= lots
            if lots == order.leaves:
                self._take_off(order)
            else:
                order.leaves -= lots
        return taken, lots_taken

    # -- reading ----------------------------------------------------------------

    def crossing_levels(self) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """Bids at or above the best ask and asks at or below the best bid."""
        bid, ask = self.bid, self.ask
        if bid < ask:
            return [], []
        return (
            [(p, q) for p, q in self.depth(BUY) if p >= ask],
            [(p, q) for p, q in self.depth(SELL) if p <= bid],
        )

    def levels(self, side: int) -> list[tuple[int, int]]:
        """Every level of ``side`` as (price, qty)."""
        return self.depth(side)

    def depth(self, side: int, n: int | None = None) -> list[tuple[int, int]]:
        """The best ``n`` price levels of ``side`` (all if None) as (price, qty)."""
        totals: dict[int, int] = {}
        for order in self._sides[side]:
            totals[order.price] = totals.get(order.price, 0) + order.leaves
        levels = sorted(totals.items(), reverse=side == BUY)
        return levels if n is None else levels[:n]

    def level_qty(self, side: int, price: int) -> int:
        """The open quantity at ``price`` on ``side``; 0 if nothing rests there."""
        return sum(o.leaves for o in self._sides[side] if o.price == price)

    def resting(self, side: int) -> Iterator[Order]:
        """The open orders of ``side``, best price first, oldest first."""
        return iter(self._in_priority(side))

    def volume(self, side: int) -> int:
        """Total open lots on ``side``."""
        return sum(o.leaves for o in self._sides[side])

    def check(self, crossed_ok: bool = False) -> None:
        """Raise `InvariantViolation` if the book is inconsistent, or crossed
        when ``crossed_ok`` is False."""
        seen: set[int] = set()
        for side in (BUY, SELL):
            for order in self._sides[side]:
                if order.side != side:
                    raise InvariantViolation(f"order {order.order_id} on wrong side")
                if order.leaves <= 0:
                    raise InvariantViolation(
                        f"order {order.order_id} rests with leaves {order.leaves}"
                    )
                if id(order) in seen:
                    raise InvariantViolation(f"order {order.order_id} rests twice")
                seen.add(id(order))
        if self.bid >= self.ask and not crossed_ok:
            raise InvariantViolation(f"book crossed: bid {self.bid} ask {self.ask}")

    # -- internals --------------------------------------------------------------

    def _in_priority(self, side: int) -> list[Order]:
        """The orders of ``side`` in priority order: best price first, then oldest."""
        arrivals = enumerate(self._sides[side])
        if side == BUY:
            ranked = sorted(arrivals, key=lambda a: (-a[1].price, a[0]))
        else:
            ranked = sorted(arrivals, key=lambda a: (a[1].price, a[0]))
        return [order for _, order in ranked]

    def _best(self, side: int) -> Order | None:
        """The maker with the highest priority on ``side``, or None."""
        in_priority = self._in_priority(side)
        return in_priority[0] if in_priority else None

    def _fill(self, taker: Order, maker: Order, qty: int, out: list[Happening]) -> None:
        """Trade ``qty`` lots between ``taker`` and ``maker`` at the maker's price."""
        out.append((FILL, maker, maker.price, qty))
        taker.leaves -= qty
        if qty == maker.leaves:
            self._take_off(maker)
        else:
            maker.leaves -= qty

    def _take_off(self, order: Order) -> None:
        """Remove ``order`` (this very record) from its side; its leaves become 0."""
        orders = self._sides[order.side]
        for place, resting in enumerate(orders):
            if resting is order:
                del orders[place]
                order.leaves = 0
                return
        raise ValueError(f"order {order.order_id} is not on the book")


def _crosses(taker_side: int, maker_price: int, limit: int) -> bool:
    """Whether a maker at ``maker_price`` trades with a taker limited to ``limit``."""
    return maker_price <= limit if taker_side == BUY else maker_price >= limit
