"""Figures of a replayed market, drawn with matplotlib from the analysis series.

Each function takes the plain data of `exchange.analysis_market`,
`exchange.analysis_compute` or `exchange.analysis_jobs` and returns a new
`matplotlib.figure.Figure`; none uses pyplot's global state, so they work
under any backend (tests use Agg) and a notebook shows the figure a cell ends
with. Times are drawn as UTC dates; prices in µcr per lot, quantities in lots,
compute in CU. A series with nothing in it gives a figure that says so instead
of an empty frame.

matplotlib is in the ``notebooks`` extra: ``pip install -e '.[notebooks]'``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from exchange.analysis_compute import FLOPS_PER_CU, ProviderSeries, ProviderStats
from exchange.analysis_jobs import JobStats, tier_order
from exchange.analysis_market import AuctionResult, Bars, Depth, Spread, Trades

__all__ = [
    "plot_auctions",
    "plot_depth",
    "plot_jobs",
    "plot_prices",
    "plot_providers",
    "plot_spread",
]

BID = "tab:green"
ASK = "tab:red"
PRICE = "tab:blue"
AUCTION = "tab:orange"
SIZE = (10.0, 5.0)
LABELLED_AUCTIONS = 12


def _dates(ts: npt.NDArray[np.int64]) -> npt.NDArray[np.datetime64]:
    return ts.astype("datetime64[ns]")


def _empty(fig: Figure, what: str) -> Figure:
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, what, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    return fig


def _date_axis(ax: Axes) -> None:
    for label in ax.get_xticklabels():
        label.set_rotation(20)
        label.set_horizontalalignment("right")


def plot_prices(trades: Trades, bars: Bars) -> Figure:
    """Trade prices (continuous and auction) above the volume per bar."""
    fig = Figure(figsize=SIZE, layout="constrained")
    if len(trades) == 0:
        return _empty(fig, f"{trades.symbol}: no trades")
    price_ax, volume_ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    when = _dates(trades.ts)
    continuous = ~trades.auction
    price_ax.plot(
        when[continuous],
        trades.price[continuous],
        ".-",
        color=PRICE,
        markersize=3,
        linewidth=0.8,
        label="continuous",
    )
    price_ax.plot(
        when[trades.auction],
        trades.price[trades.auction],
        "D",
        color=AUCTION,
        label="auction",
    )
    price_ax.set_ylabel("price (µcr per lot)")
    price_ax.set_title(f"{trades.symbol}: prices and volume")
    price_ax.legend(loc="best")
    width = np.timedelta64(bars.seconds, "s")
    volume_ax.bar(
        _dates(bars.start), bars.volume, width=width, align="edge", color="grey"
    )
    volume_ax.set_ylabel(f"lots per {bars.seconds} s")
    _date_axis(volume_ax)
    return fig


def plot_depth(depth: Depth) -> Figure:
    """Lots on each side of the book over time: the best levels and the
    whole side."""
    fig = Figure(figsize=SIZE, layout="constrained")
    if len(depth) == 0:
        return _empty(fig, f"{depth.symbol}: the book never changed")
    ax = fig.add_subplot()
    when = _dates(depth.ts)
    ax.fill_between(when, depth.bid_depth, step="post", color=BID, alpha=0.35)
    ax.fill_between(when, -depth.ask_depth, step="post", color=ASK, alpha=0.35)
    ax.step(when, depth.bid_lots, where="post", color=BID, label="bids, whole side")
    ax.step(when, -depth.ask_lots, where="post", color=ASK, label="asks, whole side")
    ax.axhline(0, color="black", linewidth=0.5)
    ax.set_ylabel("lots (bids up, asks down; shaded: best 10 levels)")
    ax.set_title(f"{depth.symbol}: depth over time")
    ax.legend(loc="best")
    _date_axis(ax)
    return fig


def plot_spread(depth: Depth, spread: Spread) -> Figure:
    """The best bid and ask over time, and the spread between them."""
    fig = Figure(figsize=SIZE, layout="constrained")
    if len(depth) == 0:
        return _empty(fig, f"{depth.symbol}: the book never changed")
    quotes_ax, spread_ax = fig.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [2, 1]}
    )
    when = _dates(depth.ts)
    quotes_ax.step(when, depth.bid, where="post", color=BID, label="best bid")
    quotes_ax.step(when, depth.ask, where="post", color=ASK, label="best ask")
    quotes_ax.set_ylabel("µcr per lot")
    quotes_ax.set_title(f"{depth.symbol}: best prices and spread")
    quotes_ax.legend(loc="best")
    spread_ax.step(_dates(spread.ts), spread.spread, where="post", color="black")
    spread_ax.set_ylabel("spread (µcr)")
    _date_axis(spread_ax)
    return fig


def plot_auctions(trades: Trades, auctions: Sequence[AuctionResult]) -> Figure:
    """Each auction's price (sized by its volume) over the continuous trades."""
    fig = Figure(figsize=SIZE, layout="constrained")
    priced = [a for a in auctions if a.price is not None]
    if not priced:
        return _empty(fig, f"{trades.symbol}: no auction traded")
    ax = fig.add_subplot()
    continuous = ~trades.auction
    ax.plot(
        _dates(trades.ts[continuous]),
        trades.price[continuous],
        ".-",
        color=PRICE,
        markersize=3,
        linewidth=0.8,
        label="continuous trades",
    )
    when = _dates(np.array([a.ts for a in priced], dtype=np.int64))
    volume = np.array([a.volume for a in priced], dtype=np.float64)
    prices = np.array([a.price for a in priced], dtype=np.float64)
    ax.scatter(
        when,
        prices,
        s=40 + 160 * volume / volume.max(),
        color=AUCTION,
        edgecolor="black",
        zorder=3,
        label="auction price (size: volume)",
    )
    # Name the auctions when there are few (openings, closings); a batch
    # market's many would only hide each other.
    for auction, at, price in zip(priced, when, prices, strict=True):
        if len(priced) > LABELLED_AUCTIONS:
            break
        ax.annotate(
            f"{auction.kind} {auction.volume}",
            (at, price),
            textcoords="offset points",
            xytext=(6, 6),
            fontsize=8,
        )
    ax.set_ylabel("price (µcr per lot)")
    ax.set_title(f"{trades.symbol}: auctions against continuous prices")
    ax.legend(loc="best")
    _date_axis(ax)
    return fig


def plot_providers(
    series: Sequence[ProviderSeries], totals: Sequence[ProviderStats]
) -> Figure:
    """Each provider's utilisation (leased over registered lots) over time,
    its revenue over time, and its totals: revenue and metered use."""
    fig = Figure(figsize=(10.0, 7.0), layout="constrained")
    if not series and not totals:
        return _empty(fig, "no provider sold anything")
    grid = fig.subplots(2, 2)
    use_ax, revenue_ax = grid[0]
    total_ax, metered_ax = grid[1]
    for one in series:
        when = _dates(one.ts)
        use_ax.step(when, 100 * one.utilisation, where="post", label=one.account)
        revenue_ax.step(when, one.revenue, where="post", label=one.account)
    symbol = series[0].symbol if series else ""
    use_ax.set_title(f"{symbol}: leased share of registered capacity")
    use_ax.set_ylabel("%")
    revenue_ax.set_title(f"{symbol}: revenue (payouts less fees)")
    revenue_ax.set_ylabel("µcr")
    for ax in (use_ax, revenue_ax):
        if series:
            ax.legend(loc="best", fontsize=8)
        _date_axis(ax)
    names = [t.account for t in totals]
    total_ax.bar(names, [t.revenue for t in totals], color=PRICE)
    total_ax.set_title("revenue, every instrument")
    total_ax.set_ylabel("µcr")
    leased = [t.capacity_flops / FLOPS_PER_CU for t in totals]
    used = [t.used_flops / FLOPS_PER_CU for t in totals]
    metered_ax.bar(names, leased, color="lightgrey", label="leased")
    metered_ax.bar(names, used, color=BID, label="metered")
    metered_ax.set_title("compute leased and used")
    metered_ax.set_ylabel("CU")
    metered_ax.legend(loc="best", fontsize=8)
    for ax in (total_ax, metered_ax):
        ax.tick_params(axis="x", labelrotation=20)
    return fig


def plot_jobs(jobs: Sequence[JobStats]) -> Figure:
    """CU per job against its full-depth CU (the difference is what adaptive
    compute saved), and the mean saved share of the closed jobs per tier."""
    fig = Figure(figsize=SIZE, layout="constrained")
    if not jobs:
        return _empty(fig, "no jobs in this journal")
    cu_ax, saved_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 1]})
    index = np.arange(len(jobs))
    full = np.array([j.full_cu for j in jobs])
    spent = np.array([j.cu for j in jobs])
    cu_ax.bar(index, full, color="lightgrey", label="at full depth")
    cu_ax.bar(index, spent, color=PRICE, label="spent")
    cu_ax.set_xlabel("job (in the order they opened)")
    cu_ax.set_ylabel("CU")
    cu_ax.set_title("CU per job")
    cu_ax.legend(loc="best")
    by_tier: dict[str, list[float]] = {}
    for job in jobs:
        if job.full_flops and job.closed is not None:
            by_tier.setdefault(job.tier, []).append(100 * job.saved_share)
    tiers = sorted(by_tier, key=tier_order)
    saved_ax.bar(tiers, [float(np.mean(by_tier[t])) for t in tiers], color=AUCTION)
    saved_ax.set_title("saved, mean per tier")
    saved_ax.set_ylabel("% of full-depth CU")
    saved_ax.tick_params(axis="x", labelrotation=30)
    return fig
