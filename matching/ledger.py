"""Accounts, balances, holds, escrow, fees and delivery capacity.

Every amount is an integer number of µcr. Each account has three balances:

- ``available``: free to use or withdraw;
- ``held``: reserved by open buy orders, per order (an order's hold is its open
  lots times its unit hold, so a cancel releases exactly that order's hold and
  nothing of any other order's);
- ``escrow``: paid for traded lots and not yet released; each trade has its own
  escrow entry, released once.

The venue's fee income is kept beside them. The conservation invariant, checked
by `Ledger.check`:

    sum(available + held + escrow) + fee_income == deposits - withdrawals

Fees. A fill's notional is price × lots. The buyer pays its fee (the taker or
maker rate by its role, rounded up to the µcr) at the fill, out of its order's
hold. The seller pays its fee on what it is actually paid: when a trade's escrow
is released with a payout, the seller's fee is the payout at the seller's rate,
rounded up; the seller receives the payout less that fee, and the buyer gets the
rest of the escrow back. Every transfer is a move between balances, so nothing
is created or lost.

Capacity. A seller needs registered capacity per instrument: its open sell lots
plus its delivery obligations (traded lots whose escrow is not yet released)
never exceed it.
"""

from __future__ import annotations

import msgspec

from matching.commands import Role
from matching.errors import InvariantViolation
from matching.order import fee_for

__all__ = ["Escrow", "Ledger", "Release"]


class Escrow(msgspec.Struct, frozen=True, gc=False):
    """What the buyer of one trade paid and the seller will be paid from.

    Attributes:
        trade_id: the trade that created it.
        symbol: the instrument traded.
        buyer, seller: account indexes.
        lots: lots traded; they count against the seller's capacity until release.
        amount: µcr in escrow (price × lots).
        seller_fee_bps: the seller's fee rate for this trade (maker or taker).
        ends_at: when the spot lease of this trade expires, in ns since the
            epoch; 0 for a future's trade, settled by its delivery.
    """

    trade_id: int
    symbol: str
    buyer: int
    seller: int
    lots: int
    amount: int
    seller_fee_bps: int
    ends_at: int = 0


class Release(msgspec.Struct, frozen=True):
    """The outcome of releasing an escrow.

    ``payout + refund`` is the escrow; ``seller_fee + seller_receives`` is the
    payout.
    """

    payout: int
    seller_fee: int
    seller_receives: int
    refund: int


class Ledger:
    """Balances of every account, indexed by account number."""

    __slots__ = (
        "accounts",
        "available",
        "capacity",
        "committed",
        "deposits",
        "escrow",
        "escrows",
        "fee_income",
        "held",
        "names",
        "roles",
        "withdrawals",
    )

    def __init__(self) -> None:
        self.accounts: dict[str, int] = {}
        self.names: list[str] = []
        self.roles: list[tuple[Role, ...]] = []
        self.available: list[int] = []
        self.held: list[int] = []
        self.escrow: list[int] = []
        self.fee_income = 0
        self.deposits = 0
        self.withdrawals = 0
        self.escrows: dict[int, Escrow] = {}
        self.capacity: dict[str, dict[int, int]] = {}
        self.committed: dict[str, dict[int, int]] = {}

    # -- accounts ---------------------------------------------------------------

    def index(self, name: str) -> int | None:
        """The account number of ``name``, or None if there is no such account."""
        return self.accounts.get(name) if type(name) is str else None

    def open(self, name: str, roles: tuple[Role, ...]) -> int:
        """Open an empty account and return its number."""
        number = len(self.names)
        self.accounts[name] = number
        self.names.append(name)
        self.roles.append(roles)
        self.available.append(0)
        self.held.append(0)
        self.escrow.append(0)
        return number

    def deposit(self, account: int, amount: int) -> None:
        self.available[account] += amount
        self.deposits += amount

    def withdraw(self, account: int, amount: int) -> bool:
        """Debit ``amount`` if it is available; return whether it was."""
        if self.available[account] < amount:
            return False
        self.available[account] -= amount
        self.withdrawals += amount
        return True

    # -- holds ------------------------------------------------------------------

    def hold(self, account: int, amount: int) -> bool:
        """Move ``amount`` from available to held if it is available."""
        available = self.available
        if available[account] < amount:
            return False
        available[account] -= amount
        self.held[account] += amount
        return True

    def release(self, account: int, amount: int) -> None:
        """Move ``amount`` from held back to available."""
        self.held[account] -= amount
        self.available[account] += amount

    # -- trades and escrow ------------------------------------------------------

    def settle_fill(
        self,
        trade_id: int,
        symbol: str,
        buyer: int,
        seller: int,
        price: int,
        lots: int,
        buyer_fee: int,
        seller_fee_bps: int,
        from_hold: int,
        ends_at: int = 0,
    ) -> None:
        """Move a fill's money: notional to a new escrow, the buyer's fee to income.

        ``from_hold`` is how much of the buyer's held balance its order releases
        for these lots; what the fill does not cost goes back to available. A
        market buy holds nothing (``from_hold`` 0) and pays from available.
        """
        notional = price * lots
        cost = notional + buyer_fee
        if from_hold:
            self.held[buyer] -= from_hold
            self.available[buyer] += from_hold - cost
        else:
            self.available[buyer] -= cost
        self.escrow[buyer] += notional
        self.fee_income += buyer_fee
        self.escrows[trade_id] = Escrow(
            trade_id, symbol, buyer, seller, lots, notional, seller_fee_bps, ends_at
        )

    def release_escrow(self, trade_id: int, payout: int) -> Release | None:
        """Pay ``payout`` µcr of a trade's escrow to its seller; refund the rest.

        Returns None, changing nothing, if the escrow was already released or
        never existed, or if ``payout`` is negative or more than the escrow. The
        seller's delivery obligation for the lots ends with the release.
        """
        entry = self.escrows.get(trade_id)
        if entry is None or not 0 <= payout <= entry.amount:
            return None
        del self.escrows[trade_id]

        seller_fee = fee_for(payout, entry.seller_fee_bps)
        refund = entry.amount - payout
        self.escrow[entry.buyer] -= entry.amount
        self.available[entry.buyer] += refund
        self.available[entry.seller] += payout - seller_fee
        self.fee_income += seller_fee
        self.uncommit(entry.symbol, entry.seller, entry.lots)
        return Release(payout, seller_fee, payout - seller_fee, refund)

    # -- delivery capacity ------------------------------------------------------

    def capacity_of(self, symbol: str) -> tuple[dict[int, int], dict[int, int]]:
        """The registered and the committed lots of ``symbol``, by account.

        The engine keeps these two dicts at hand for its hot path; an account
        with nothing committed has no entry in the second.
        """
        return (
            self.capacity.setdefault(symbol, {}),
            self.committed.setdefault(symbol, {}),
        )

    def set_capacity(self, symbol: str, account: int, lots: int) -> None:
        self.capacity_of(symbol)[0][account] = lots

    def commit(self, symbol: str, account: int, lots: int) -> bool:
        """Reserve ``lots`` of capacity for a sell, if the capacity allows it."""
        capacity, committed = self.capacity_of(symbol)
        used = committed.get(account, 0) + lots
        if used > capacity.get(account, 0):
            return False
        committed[account] = used
        return True

    def uncommit(self, symbol: str, account: int, lots: int) -> None:
        """Give back ``lots`` of reserved capacity (a cancel or a release)."""
        committed = self.committed[symbol]
        left = committed[account] - lots
        if left:
            committed[account] = left
        else:
            del committed[account]

    # -- checking ---------------------------------------------------------------

    def total(self) -> int:
        """Every µcr the ledger holds, fee income included."""
        return sum(self.available) + sum(self.held) + sum(self.escrow) + self.fee_income

    def check(self) -> None:
        """Raise `InvariantViolation` if money was created or lost."""
        if self.total() != self.deposits - self.withdrawals:
            raise InvariantViolation(
                f"ledger holds {self.total()} µcr but deposits - withdrawals is "
                f"{self.deposits - self.withdrawals}"
            )
        for name, balances in zip(
            ("available", "held", "escrow"),
            (self.available, self.held, self.escrow),
            strict=True,
        ):
            for account, value in enumerate(balances):
                if type(value) is not int:
                    raise InvariantViolation(
                        f"{self.names[account]}: {name} is not an integer ({value!r})"
                    )
                if value < 0:
                    raise InvariantViolation(
                        f"{self.names[account]}: {name} is negative ({value})"
                    )
        in_escrow = [0] * len(self.names)
        for entry in self.escrows.values():
            in_escrow[entry.buyer] += entry.amount
        if in_escrow != self.escrow:
            raise InvariantViolation("escrow balances differ from escrow entries")
        for symbol, by_account in self.committed.items():
            for account, used in by_account.items():
                if used <= 0:
                    raise InvariantViolation(
                        f"{self.names[account]}: committed {symbol} is {used}"
                    )
