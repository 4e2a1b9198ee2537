"""Uniform-price call auctions: the clearing price, and who fills at it.

A call auction collects orders without matching them, then trades everything it
can at one price. `clearing_price` applies the rules of the design, in order:

1. The candidates are the limit prices in the book. The price is the candidate
   with the largest executable volume, ``min(demand, supply)``; market orders
   are executable at every price.
2. Tie: the smallest surplus, ``|demand - supply|``.
3. Tie: if every remaining candidate has its surplus on the buy side, the
   highest; if every one on the sell side, the lowest.
4. Tie (mixed surplus, or none): the reference price (the last traded or last
   auction price) decides: at or above the highest candidate, the highest; at or
   below the lowest, the lowest; equal to a candidate, that one; strictly
   between, the nearest candidate, the higher one on an exact middle. With no
   reference price, the lowest candidate.
5. When only market orders would execute (the most that can trade is no more
   than the market orders of either side, which fill first), they trade at the
   reference price, moved into the range between the best limit bid and the
   best limit ask so that no limit order is better than the price and left
   unfilled. Without a reference price, or with nothing executable, there is
   no price.

One more rule narrows the candidates before the ties are broken: every order
whose limit is strictly better than the price must fill completely, so a
candidate where the strictly better orders of one side exceed the volume is
dropped. (Such a candidate can only tie with a better one; it never has more
volume.) Market orders are filled before any limit order; only when they alone
are more than can trade is the rule impossible, and then it is not applied.

The computation is vectorised with numpy over price levels, so it is linear in
the number of levels, not of orders, and it depends only on the aggregated
quantities: the same orders in any arrival order give the same price.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec
import numpy as np
import numpy.typing as npt

__all__ = ["Clearing", "clearing_price"]

Levels = Sequence[tuple[int, int]]
_Ints = npt.NDArray[np.int64]


class Clearing(msgspec.Struct, frozen=True):
    """The outcome of an auction's price determination.

    Attributes:
        price: the uniform price in µcr per lot, or None if nothing can trade.
        volume: lots that trade at ``price`` (0 when there is no price).
        surplus: demand minus supply at ``price``: positive when buyers are
            left over, negative when sellers are.
    """

    price: int | None
    volume: int
    surplus: int


NO_CLEARING = Clearing(None, 0, 0)


def clearing_price(
    bids: Levels,
    asks: Levels,
    market_buy: int = 0,
    market_sell: int = 0,
    reference: int | None = None,
) -> Clearing:
    """The uniform price, volume and surplus for a call book.

    Args:
        bids: (price, lots) per buy limit level, in any order.
        asks: (price, lots) per sell limit level, in any order.
        market_buy: lots of market buy orders.
        market_sell: lots of market sell orders.
        reference: the last traded or last auction price; None if there is none.
    """
    bid_prices, bid_lots = _arrays(bids)
    ask_prices, ask_lots = _arrays(asks)
    candidates = np.union1d(bid_prices, ask_prices)
    markets_only = (
        bid_prices,
        bid_lots,
        ask_prices,
        ask_lots,
        market_buy,
        market_sell,
        reference,
    )
    if candidates.size == 0:
        return _markets_only(*markets_only)

    demand, supply, better_demand, better_supply = _curves(
        candidates, bid_prices, bid_lots, ask_prices, ask_lots, market_buy, market_sell
    )
    volume = np.minimum(demand, supply)
    best = int(volume.max())
    if best == 0:
        return NO_CLEARING
    if best <= min(market_buy, market_sell):
        return _markets_only(*markets_only)

    # Rule 1, with the strictly-better rule: the candidates that trade the most.
    # Market orders come first in the allocation; when they alone are more than
    # can trade, no candidate lets every better order fill, and the rule yields.
    keep = volume == best
    fitting = keep & (better_demand <= best) & (better_supply <= best)
    if fitting.any():
        keep = fitting
    surplus = demand - supply
    # Rule 2: the smallest surplus among them.
    keep &= np.abs(surplus) == np.abs(surplus[keep]).min()
    tied = np.flatnonzero(keep)
    index = _break_tie(candidates, surplus, tied, reference)
    return Clearing(int(candidates[index]), best, int(surplus[index]))


def _arrays(levels: Levels) -> tuple[_Ints, _Ints]:
    if not levels:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty
    table = np.asarray(levels, dtype=np.int64)
    order = np.argsort(table[:, 0], kind="stable")
    return table[order, 0], table[order, 1]


def _curves(
    candidates: _Ints,
    bid_prices: _Ints,
    bid_lots: _Ints,
    ask_prices: _Ints,
    ask_lots: _Ints,
    market_buy: int,
    market_sell: int,
) -> tuple[_Ints, _Ints, _Ints, _Ints]:
    """Demand and supply at each candidate, and at strictly better prices."""
    # Prefix sums with a leading 0: prefix[k] is the lots of the k lowest levels.
    bid_prefix = np.concatenate(([0], np.cumsum(bid_lots)))
    ask_prefix = np.concatenate(([0], np.cumsum(ask_lots)))
    bid_total = int(bid_prefix[-1])

    # Buyers at p: every bid priced at p or higher; strictly better: above p.
    demand = bid_total - bid_prefix[np.searchsorted(bid_prices, candidates, "left")]
    better_demand = (
        bid_total - bid_prefix[np.searchsorted(bid_prices, candidates, "right")]
    )
    # Sellers at p: every ask priced at p or lower; strictly better: below p.
    supply = ask_prefix[np.searchsorted(ask_prices, candidates, "right")]
    better_supply = ask_prefix[np.searchsorted(ask_prices, candidates, "left")]
    return (
        demand + market_buy,
        supply + market_sell,
        better_demand + market_buy,
        better_supply + market_sell,
    )


def _break_tie(
    candidates: _Ints, surplus: _Ints, tied: _Ints, reference: int | None
) -> int:
    """Rules 3 and 4: the index of the winning candidate among ``tied``."""
    if tied.size == 1:
        return int(tied[0])
    tied_surplus = surplus[tied]
    if (tied_surplus > 0).all():
        return int(tied[-1])
    if (tied_surplus < 0).all():
        return int(tied[0])

    prices = candidates[tied]
    if reference is None or reference <= prices[0]:
        return int(tied[0])
    if reference >= prices[-1]:
        return int(tied[-1])
    # Strictly between two tied candidates: the nearest; the higher on a tie.
    above = int(np.searchsorted(prices, reference, "left"))
    if prices[above] == reference:
        return int(tied[above])
    below = above - 1
    if reference - prices[below] < prices[above] - reference:
        return int(tied[below])
    return int(tied[above])


def _markets_only(
    bid_prices: _Ints,
    bid_lots: _Ints,
    ask_prices: _Ints,
    ask_lots: _Ints,
    market_buy: int,
    market_sell: int,
    reference: int | None,
) -> Clearing:
    """Rule 5: only market orders execute; they trade at the reference price,
    kept between the best limit bid and the best limit ask."""
    volume = min(market_buy, market_sell)
    if volume == 0 or reference is None:
        return NO_CLEARING
    price = reference
    if bid_prices.size:
        price = max(price, int(bid_prices[-1]))
    if ask_prices.size:
        price = min(price, int(ask_prices[0]))
    demand = market_buy + int(
        bid_lots[np.searchsorted(bid_prices, price, "left") :].sum()
    )
    supply = market_sell + int(
        ask_lots[: np.searchsorted(ask_prices, price, "right")].sum()
    )
    return Clearing(price, min(demand, supply), demand - supply)
