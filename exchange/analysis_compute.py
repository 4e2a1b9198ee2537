"""The compute side of a replay: leases, and providers' utilisation and revenue.

Every spot trade is a lease (its id is the trade's id); a future's delivery
creates leases of its own (`LeaseCreated`). The metered work on a lease is its
`UsageRecorded` events, and what its provider earned is in `EscrowReleased`:
the payout less the seller's fee. From these, `leases` lists every lease,
`providers` adds them up per selling account and `provider_series` follows
one instrument's providers over time: the capacity they registered, the lots
they had leased out, the CU metered and their revenue.

The consumers' jobs are in `exchange.analysis_jobs`.

Amounts are integers (µcr, lots, FLOPs); 1 CU is 10^9 FLOPs. Known limitation:
the journal knows accounts, not nodes, so "provider" means a selling account.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec
import numpy as np
import numpy.typing as npt

from exchange.analysis import MarketReplay
from matching import (
    AuctionTrade,
    CapacitySet,
    EscrowReleased,
    LeaseCreated,
    LeaseEnded,
    Trade,
    UsageRecorded,
)

__all__ = [
    "FLOPS_PER_CU",
    "LeaseStats",
    "ProviderSeries",
    "ProviderStats",
    "leases",
    "provider_series",
    "providers",
]

FLOPS_PER_CU: Final = 10**9

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class LeaseStats(msgspec.Struct):
    """One lease from its start to its end (or the journal's end).

    Attributes:
        symbol, lease_id: the lease's name.
        provider, consumer: who owes the compute, and to whom.
        lots, price: what was bought, µcr per lot.
        start: the trade's time (spot) or the window's start (futures), ns.
        end: when it ended, ns; None while it is live.
        state: ``used_up``, ``failed``, ``cancelled`` or ``expired``; None
            while it is live.
        capacity_flops: what its lots cover.
        used_flops: the metered work recorded on it.
        payout, seller_fee, refund: its settlement (spot leases; a future's
            sellers are paid per trade at the window's end), µcr; None until
            then.
    """

    symbol: str
    lease_id: int
    provider: str
    consumer: str
    lots: int
    price: int
    start: int
    capacity_flops: int
    end: int | None = None
    state: str | None = None
    used_flops: int = 0
    payout: int | None = None
    seller_fee: int | None = None
    refund: int | None = None

    @property
    def utilisation(self) -> float:
        """The share of the lease's compute that was used."""
        return self.used_flops / self.capacity_flops


class ProviderStats(msgspec.Struct, frozen=True):
    """A selling account's totals over the whole journal.

    Attributes:
        account: the seller.
        leases: leases it provided.
        lots: lots sold in those leases.
        capacity_flops: the compute those leases cover.
        used_flops: the metered work run on them.
        notional: µcr of everything it sold (price × lots, every instrument).
        payout: µcr released to it from escrows, its fees included.
        fees: its seller fees, µcr.
    """

    account: str
    leases: int
    lots: int
    capacity_flops: int
    used_flops: int
    notional: int
    payout: int
    fees: int

    @property
    def revenue(self) -> int:
        """What it earned: its payouts less its fees, µcr."""
        return self.payout - self.fees

    @property
    def utilisation(self) -> float:
        """The share of the compute it leased out that was used; NaN if none."""
        if not self.capacity_flops:
            return float("nan")
        return self.used_flops / self.capacity_flops


@dataclass(frozen=True)
class ProviderSeries:
    """One provider on one instrument, after every event that changed it.

    Attributes:
        seq, ts: the stamp of each command that changed it.
        capacity: the lots it had registered.
        leased: the lots it had in live leases.
        used_flops: the metered work on its leases so far.
        revenue: its payouts less its fees so far, µcr.
    """

    account: str
    symbol: str
    seq: Ints
    ts: Ints
    capacity: Ints
    leased: Ints
    used_flops: Ints
    revenue: Ints

    @property
    def utilisation(self) -> Floats:
        """Leased over registered lots; NaN where nothing was registered."""
        capacity = self.capacity.astype(np.float64)
        capacity[capacity == 0] = np.nan
        return self.leased / capacity


def leases(replay: MarketReplay) -> list[LeaseStats]:
    """Every lease in the journal, in the order they started."""
    found: dict[tuple[str, int], LeaseStats] = {}
    for timed in replay.events:
        event, ts = timed.event, timed.ts
        if isinstance(event, Trade | AuctionTrade):
            spec = replay.specs[event.symbol]
            if spec.kind == "spot":
                seller, buyer = _parties(event)
                capacity = event.qty * spec.lot_cu * FLOPS_PER_CU
                found[event.symbol, event.trade_id] = LeaseStats(
                    event.symbol,
                    event.trade_id,
                    seller,
                    buyer,
                    event.qty,
                    event.price,
                    ts,
                    capacity,
                )
        elif isinstance(event, LeaseCreated):
            capacity = event.lots * replay.specs[event.symbol].lot_cu * FLOPS_PER_CU
            found[event.symbol, event.lease_id] = LeaseStats(
                event.symbol,
                event.lease_id,
                event.provider,
                event.consumer,
                event.lots,
                event.price,
                event.start,
                capacity,
            )
        elif isinstance(event, UsageRecorded):
            found[event.symbol, event.lease_id].used_flops = event.used
        elif isinstance(event, LeaseEnded):
            lease = found[event.symbol, event.lease_id]
            lease.end, lease.state = ts, event.state
        elif isinstance(event, EscrowReleased):
            spot = found.get((event.symbol, event.trade_id))
            if spot is not None and replay.specs[event.symbol].kind == "spot":
                spot.payout, spot.seller_fee = event.payout, event.seller_fee
                spot.refund = event.refund
    return list(found.values())


def providers(replay: MarketReplay) -> list[ProviderStats]:
    """Every selling account's totals, by account name."""
    totals: dict[str, list[int]] = {}

    def row(account: str) -> list[int]:
        return totals.setdefault(account, [0] * 7)

    for lease in leases(replay):
        t = row(lease.provider)
        t[0] += 1
        t[1] += lease.lots
        t[2] += lease.capacity_flops
        t[3] += lease.used_flops
    for timed in replay.events:
        event = timed.event
        if isinstance(event, Trade | AuctionTrade):
            row(_parties(event)[0])[4] += event.price * event.qty
        elif isinstance(event, EscrowReleased):
            t = row(event.seller)
            t[5] += event.payout
            t[6] += event.seller_fee
    return [ProviderStats(account, *totals[account]) for account in sorted(totals)]


def provider_series(replay: MarketReplay, symbol: str) -> list[ProviderSeries]:
    """Each provider of ``symbol`` over time (see `ProviderSeries`)."""
    state: dict[str, list[int]] = {}  # capacity, leased, used, revenue
    rows: dict[str, list[tuple[int, ...]]] = {}
    lots: dict[int, tuple[str, int]] = {}  # lease id: provider, lots
    used: dict[int, int] = {}
    spot = replay.specs[symbol].kind == "spot" if symbol in replay.specs else True
    for timed in replay.events:
        event = timed.event
        if getattr(event, "symbol", None) != symbol:
            continue
        change = _change(event, spot, lots, used)
        if change is None:
            continue
        account, column, delta, absolute = change
        values = state.setdefault(account, [0, 0, 0, 0])
        values[column] = delta if absolute else values[column] + delta
        kept = rows.setdefault(account, [])
        if kept and kept[-1][0] == timed.seq:
            kept.pop()  # one row per command: its last values
        kept.append((timed.seq, timed.ts, *values))
    series = []
    for account in sorted(rows):
        columns = np.array(rows[account], dtype=np.int64).T
        series.append(ProviderSeries(account, symbol, *columns))
    return series


def _change(
    event: Any, spot: bool, lots: dict[int, tuple[str, int]], used: dict[int, int]
) -> tuple[str, int, int, bool] | None:
    """How ``event`` changes a provider: (account, column, value, absolute)."""
    if isinstance(event, CapacitySet):
        return event.account, 0, event.lots, True
    if isinstance(event, Trade | AuctionTrade) and spot:
        seller = _parties(event)[0]
        lots[event.trade_id] = (seller, event.qty)
        return seller, 1, event.qty, False
    if isinstance(event, LeaseCreated):
        lots[event.lease_id] = (event.provider, event.lots)
        return event.provider, 1, event.lots, False
    if isinstance(event, LeaseEnded) and event.lease_id in lots:
        account, count = lots.pop(event.lease_id)
        return account, 1, -count, False
    if isinstance(event, UsageRecorded) and event.lease_id in lots:
        before = used.get(event.lease_id, 0)
        used[event.lease_id] = event.used
        return lots[event.lease_id][0], 2, event.used - before, False
    if isinstance(event, EscrowReleased):
        return event.seller, 3, event.payout - event.seller_fee, False
    return None


def _parties(trade: Trade | AuctionTrade) -> tuple[str, str]:
    """The seller and the buyer of a trade."""
    if isinstance(trade, AuctionTrade):
        return trade.seller, trade.buyer
    if trade.taker_side == "buy":
        return trade.maker_account, trade.taker_account
    return trade.taker_account, trade.maker_account
