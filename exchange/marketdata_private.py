"""The private channels: each account's orders, fills, balances and leases.

`AccountFeed` follows the engine's events and publishes, for the account they
concern:

- ``orders``: an `OrderMessage` per change of an order's state, in event
  order: ``new`` (accepted), ``partially_filled`` / ``filled`` (per fill),
  ``amended``, ``cancelled`` (with the engine's reason) or ``expired``. An order
  that fills on arrival is ``new`` first. Rejections are not order messages:
  the server answers them as errors.
- ``fills``: a `FillMessage` for each side of each trade. ``liquidity`` is
  ``maker`` or ``taker`` in continuous trading and ``auction`` in a call
  auction. ``fee`` is what the order paid at the fill: the buyer's fee; a
  seller pays its fee when the trade's escrow is released, so its fill shows 0.
- ``balance``: one `BalanceMessage` per account whose balances the command
  changed, read from the ledger after the command.
- ``leases``: a `LeaseMessage` to the consumer and to the provider when a
  lease is created (``active``) and when it ends.

It keeps the open orders' state (filled and leaves totals) and the live leases
itself, seeded from the engine when it starts; an order is forgotten when it
becomes terminal and a lease when it ends, so its memory follows what is open.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import msgspec

from exchange.marketdata_book import Publication
from exchange.protocol import (
    BalanceMessage,
    FillMessage,
    LeaseMessage,
    OrderMessage,
    encode,
)
from matching.engine import Engine
from matching.events import (
    AuctionTrade,
    Deposited,
    EscrowReleased,
    LeaseCreated,
    LeaseEnded,
    OrderAccepted,
    OrderAmended,
    OrderCancelled,
    OrderExpired,
    Trade,
    Withdrawn,
)
from matching.order import SIDE_NAMES

__all__ = ["AccountFeed", "OpenOrder"]

_EMPTY: Final = (0, 0, 0)
"""The balances of an account just opened."""


class OpenOrder(msgspec.Struct, gc=False):
    """What the order messages of one open order need to say."""

    account: str
    symbol: str
    side: str
    price: int | None
    filled: int
    leaves: int
    client_order_id: str | None


class AccountFeed:
    """The private channels of every account.

    Every method that takes an event appends its publications to ``out``.

    Attributes:
        ts: the timestamp (ns) of the command whose events are being applied.
        orders: the open orders, by id.
        leases: the live leases, by id.
    """

    __slots__ = (
        "_balances",
        "_changed",
        "_instruments",
        "_ledger",
        "leases",
        "listening",
        "orders",
        "ts",
    )

    def __init__(self, engine: Engine) -> None:
        ledger = engine.ledger
        self._ledger = ledger
        # Whether anyone listens to (channel, account): a message nobody will
        # receive is not built. The server sets it; everything by default.
        self.listening: Callable[[str, str], bool] = _everyone
        names = ledger.names
        self.orders: dict[int, OpenOrder] = {
            order_id: OpenOrder(
                names[o.account],
                o.symbol,
                SIDE_NAMES[o.side],
                None if o.is_market else o.price,
                o.filled,
                o.leaves,
                o.client_order_id,
            )
            for order_id, o in engine.orders.items()
        }
        self._instruments = engine.instruments
        # Live leases by (symbol, id): a spot lease's id is its trade's, so
        # ids alone are unique only within one instrument.
        self.leases: dict[tuple[str, int], LeaseCreated] = {
            (lease.symbol, lease_id): LeaseCreated(
                lease_id,
                lease.symbol,
                names[lease.consumer],
                names[lease.provider],
                lease.lots,
                lease.price,
                lease.start,
                lease.end,
            )
            for lease_id, lease in engine.leases.items()
        }
        for entry in ledger.escrows.values():
            if entry.ends_at:  # a spot lease (see matching.leases)
                lease_ns = engine.instruments[entry.symbol].lease_ns
                self.leases[entry.symbol, entry.trade_id] = LeaseCreated(
                    entry.trade_id,
                    entry.symbol,
                    names[entry.buyer],
                    names[entry.seller],
                    entry.lots,
                    entry.amount // entry.lots,
                    entry.ends_at - lease_ns,
                    entry.ends_at,
                )
        # The balances last published, and the accounts a command may have
        # changed (a dict, so that they are published in a stable order).
        self._balances: dict[str, tuple[int, int, int]] = {
            name: (ledger.available[i], ledger.held[i], ledger.escrow[i])
            for i, name in enumerate(names)
        }
        self._changed: dict[str, None] = {}
        self.ts = 0

    # -- orders and fills -------------------------------------------------------

    def accepted(self, e: OrderAccepted, out: list[Publication]) -> None:
        order = OpenOrder(
            e.account, e.symbol, e.side, e.price, 0, e.qty, e.client_order_id
        )
        self.orders[e.order_id] = order
        self._order(e.order_id, order, "new", None, out)
        if e.side == "buy":
            self._changed[e.account] = None

    def traded(self, e: Trade, out: list[Publication]) -> None:
        maker_side = "sell" if e.taker_side == "buy" else "buy"
        self._fill(
            e.maker_order_id,
            e.maker_account,
            maker_side,
            e.maker_leaves,
            "maker",
            e,
            out,
        )
        self._fill(
            e.taker_order_id,
            e.taker_account,
            e.taker_side,
            e.taker_leaves,
            "taker",
            e,
            out,
        )

        if e.taker_side == "buy":
            self._spot_lease(e, e.taker_account, e.maker_account, out)
        else:
            self._spot_lease(e, e.maker_account, e.taker_account, out)

    def auction_traded(self, e: AuctionTrade, out: list[Publication]) -> None:
        self._fill(e.buy_order_id, e.buyer, "buy", e.buy_leaves, "auction", e, out)
        self._fill(e.sell_order_id, e.seller, "sell", e.sell_leaves, "auction", e, out)
        self._spot_lease(e, e.buyer, e.seller, out)

    def _spot_lease(
        self,
        e: Trade | AuctionTrade,
        buyer: str,
        seller: str,
        out: list[Publication],
    ) -> None:
        """A spot trade is a lease until the engine's lease time runs out."""
        inst = self._instruments.get(e.symbol)
        if inst is None or inst.window is not None:
            return
        lease = LeaseCreated(
            e.trade_id,
            e.symbol,
            buyer,
            seller,
            e.qty,
            e.price,
            self.ts,
            self.ts + inst.lease_ns,
        )
        self.leases[e.symbol, e.trade_id] = lease
        self._lease(lease, "active", out)

    def _fill(
        self,
        order_id: int,
        account: str,
        side: str,
        leaves: int,
        liquidity: str,
        e: Trade | AuctionTrade,
        out: list[Publication],
    ) -> None:
        ts = self.ts
        order = self.orders.get(order_id)
        if order is None:
            # Only for an order opened before this feed started mid-command.
            order = OpenOrder(account, e.symbol, side, e.price, 0, leaves, None)
        order.filled += e.qty
        order.leaves = leaves
        if leaves:
            self.orders[order_id] = order
            self._order(order_id, order, "partially_filled", None, out)
        else:
            self.orders.pop(order_id, None)
            self._order(order_id, order, "filled", None, out)
        self._changed[account] = None
        if not self.listening("fills", account):
            return
        fill = FillMessage(
            str(order_id),
            order.client_order_id,
            e.trade_id,
            e.symbol,
            side,
            e.price,
            e.qty,
            e.buyer_fee if side == "buy" else 0,
            liquidity,
            ts,
        )
        out.append(Publication("fills", None, account, encode(fill)))

    def cancelled(self, e: OrderCancelled, out: list[Publication]) -> None:
        order = self._closed(e.order_id, e.account, e.symbol, e.side, e.price)
        order.filled = e.filled
        self._order(e.order_id, order, "cancelled", e.reason, out)
        if e.side == "buy":
            self._changed[e.account] = None

    def expired(self, e: OrderExpired, out: list[Publication]) -> None:
        order = self._closed(e.order_id, e.account, e.symbol, e.side, e.price)
        order.filled = e.filled
        self._order(e.order_id, order, "expired", None, out)
        if e.side == "buy":
            self._changed[e.account] = None

    def _closed(
        self, order_id: int, account: str, symbol: str, side: str, price: int | None
    ) -> OpenOrder:
        """Forget an order that became terminal; return its last state, leaves 0."""
        order = self.orders.pop(order_id, None)
        if order is None:
            order = OpenOrder(account, symbol, side, price, 0, 0, None)
        order.leaves = 0
        return order

    def amended(self, e: OrderAmended, out: list[Publication]) -> None:
        order = self.orders.get(e.order_id)
        if order is None:
            order = OpenOrder(e.account, e.symbol, e.side, e.price, 0, 0, None)
            self.orders[e.order_id] = order
        order.price = e.price
        order.leaves = e.leaves
        order.filled = e.filled
        self._order(e.order_id, order, "amended", None, out)
        if e.side == "buy":
            self._changed[e.account] = None

    # -- leases -----------------------------------------------------------------

    def lease_created(self, e: LeaseCreated, out: list[Publication]) -> None:
        self.leases[e.symbol, e.lease_id] = e
        self._lease(e, "active", out)

    def lease_ended(self, e: LeaseEnded, out: list[Publication]) -> None:
        lease = self.leases.pop((e.symbol, e.lease_id), None)
        if lease is not None:
            self._lease(lease, e.state, out)

    def _lease(self, lease: LeaseCreated, status: str, out: list[Publication]) -> None:
        """A lease message to its consumer and its provider, if they listen."""
        wanted = [
            account
            for account in dict.fromkeys((lease.consumer, lease.provider))
            if self.listening("leases", account)
        ]
        if not wanted:
            return
        message = LeaseMessage(
            lease.lease_id,
            lease.symbol,
            status,
            lease.consumer,
            lease.provider,
            lease.lots,
            lease.price,
            lease.start,
            lease.end,
            self.ts,
        )
        data = encode(message)
        for account in wanted:
            out.append(Publication("leases", None, account, data))

    # -- balances ---------------------------------------------------------------

    def money_moved(self, e: Deposited | Withdrawn, out: list[Publication]) -> None:
        self._changed[e.account] = None

    def escrow_released(self, e: EscrowReleased, out: list[Publication]) -> None:
        self._changed[e.buyer] = None
        self._changed[e.seller] = None

    def _order(
        self,
        order_id: int,
        order: OpenOrder,
        status: str,
        reason: str | None,
        out: list[Publication],
    ) -> None:
        if not self.listening("orders", order.account):
            return
        message = OrderMessage(
            str(order_id),
            order.client_order_id,
            order.symbol,
            order.side,
            status,
            order.price,
            order.filled,
            order.leaves,
            reason,
            self.ts,
        )
        out.append(Publication("orders", None, order.account, encode(message)))

    def publish_balances(self, out: list[Publication]) -> None:
        """A `BalanceMessage` for each account whose balances the command
        changed (compared with what was last published)."""
        if not self._changed:
            return
        ledger = self._ledger
        for account in self._changed:
            i = ledger.accounts.get(account)
            if i is None:
                continue
            now = (ledger.available[i], ledger.held[i], ledger.escrow[i])
            if self._balances.get(account, _EMPTY) != now:
                self._balances[account] = now
                if not self.listening("balance", account):
                    continue
                message = BalanceMessage(*now, self.ts)
                out.append(Publication("balance", None, account, encode(message)))
        self._changed.clear()


def _everyone(channel: str, account: str) -> bool:
    return True
