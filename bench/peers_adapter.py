"""The cux engine behind the peers' benchmark interface (``../shared/bench``).

Every operation goes through `Engine.apply` as a full command, with the ledger
kept and every fill reported as a `Trade` event: buys come from one funded
consumer account and sells from one provider account with ample capacity, so
that no order meets its own account (the workload assumes no self-trade
prevention). Fees are on (10 bps taker, 5 bps maker) so every fill pays one.
"""

from __future__ import annotations

from matching import (
    MAX_AMOUNT,
    CancelOrder,
    Command,
    Deposit,
    Engine,
    MarketConfig,
    OpenAccount,
    PlaceOrder,
    ResourceClass,
    SetCapacity,
)
from matching.commands import Side

SYMBOL = "bench-SPOT"
BUYER, SELLER = "buyer", "seller"
_SIDES: tuple[Side, Side] = ("buy", "sell")


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
        self._accounts = (BUYER, SELLER)

    def _apply(self, command: Command) -> None:
        engine = self.engine
        engine.apply(engine.seq + 1, 0, command)

    def add_limit(self, oid: int, side: int, price: int, qty: int) -> None:
        engine = self.engine
        engine.apply(
            engine.seq + 1,
            0,
            PlaceOrder(self._accounts[side], SYMBOL, _SIDES[side], qty, "limit", price),
        )

    def cancel(self, oid: int) -> None:
        engine = self.engine
        # The workload's order ids are its operation numbers; after the four
        # set-up commands, the engine's order id is the operation number + 4.
        order = engine.orders[oid + 4]
        engine.apply(
            engine.seq + 1, 0, CancelOrder(self._accounts[order.side], oid + 4)
        )

    def market(self, oid: int, side: int, qty: int) -> None:
        engine = self.engine
        engine.apply(
            engine.seq + 1,
            0,
            PlaceOrder(
                self._accounts[side], SYMBOL, _SIDES[side], qty, "market", None, "IOC"
            ),
        )

    def resting(self) -> tuple[int, int]:
        book = self.engine.instruments[SYMBOL].book
        return book.volume(0), book.volume(1)
