"""The cux engine behind the peers' benchmark interface (``../shared/bench``).

Every operation goes through the engine's int-level entry points
(`Engine.place_limit`, `Engine.place_market`, `Engine.cancel`: the same code as
`Engine.apply` of a `PlaceOrder` or `CancelOrder`, without the command object),
with every field checked, the ledger kept and every fill reported as a `Trade`
event: buys come from one funded
consumer account and sells from one provider account with ample capacity, so
that no order meets its own account (the workload assumes no self-trade
prevention). Fees are on (10 bps taker, 5 bps maker) so every fill pays one.
"""

from __future__ import annotations

from matching import (
    MAX_AMOUNT,
    Command,
    Deposit,
    Engine,
    MarketConfig,
    OpenAccount,
    ResourceClass,
    SetCapacity,
)

SYMBOL = "bench-SPOT"
BUYER, SELLER = "buyer", "seller"


class CuxEngine:
    """Adapter: ``add_limit``, ``cancel``, ``market`` and ``resting``."""

    name = "cux"
    package = "cux"

    def __init__(self) -> None:
        rc = ResourceClass(
            "bench", lot_cu=100, tick=1, taker_fee_bps=10, maker_fee_bps=5
        )
        self.engine = Engine(MarketConfig(classes=[rc]))
        setup: list[Command] = [
            OpenAccount(BUYER, ("consumer",)),
            OpenAccount(SELLER, ("provider",)),
            Deposit(BUYER, MAX_AMOUNT),
            SetCapacity(SELLER, SYMBOL, 10**9),
        ]
        for command in setup:
            self._apply(command)
        buyer = self.engine.account_id(BUYER)
        seller = self.engine.account_id(SELLER)
        assert buyer is not None
        assert seller is not None
        self._accounts = (buyer, seller)

    def _apply(self, command: Command) -> None:
        engine = self.engine
        engine.apply(engine.seq + 1, 0, command)

    def add_limit(self, oid: int, side: int, price: int, qty: int) -> None:
        engine = self.engine
        engine.place_limit(
            engine.seq + 1, 0, self._accounts[side], SYMBOL, side, price, qty
        )

    def cancel(self, oid: int) -> None:
        engine = self.engine
        # The workload's order ids are its operation numbers; after the four
        # set-up commands, the engine's order id is the operation number + 4.
        order_id = oid + 4
        account = self._accounts[engine.orders[order_id].side]
        engine.cancel(engine.seq + 1, 0, account, order_id)

    def market(self, oid: int, side: int, qty: int) -> None:
        engine = self.engine
        engine.place_market(engine.seq + 1, 0, self._accounts[side], SYMBOL, side, qty)

    def resting(self) -> tuple[int, int]:
        book = self.engine.instruments[SYMBOL].book
        return book.volume(0), book.volume(1)
