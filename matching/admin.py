"""The commands that are not orders: accounts, money, capacity and escrow.

Each handler takes the engine, a command and the list of events to append to;
like the order handlers, a bad command gives a `CommandRejected` event with a
stable code and changes nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Final, TypeGuard, get_args

from matching import leases
from matching.codes import Code
from matching.commands import (
    Deposit,
    OpenAccount,
    ReleaseEscrow,
    Role,
    SetCapacity,
    Withdraw,
)
from matching.config import MAX_AMOUNT, MAX_LABEL, MAX_QTY, MAX_TOTAL
from matching.events import (
    AccountOpened,
    CapacitySet,
    Deposited,
    Event,
    Withdrawn,
    command_rejected,
)

if TYPE_CHECKING:
    from matching.engine import Engine

__all__ = [
    "deposit",
    "is_count",
    "open_account",
    "release_escrow",
    "set_capacity",
    "withdraw",
]

_ROLES: Final = get_args(Role)


def open_account(engine: Engine, cmd: OpenAccount, events: list[Event]) -> None:
    name = cmd.account
    if not (type(name) is str and 0 < len(name) <= MAX_LABEL and name.isprintable()):
        events.append(command_rejected(cmd, Code.INVALID_ACCOUNT_NAME))
        return
    roles = cmd.roles
    if (
        type(roles) is not tuple
        or not roles
        or any(type(role) is not str or role not in _ROLES for role in roles)
        or len(set(roles)) != len(roles)
    ):
        events.append(command_rejected(cmd, Code.INVALID_ROLE))
        return
    if engine.ledger.index(name) is not None:
        events.append(command_rejected(cmd, Code.ACCOUNT_EXISTS))
        return
    engine.ledger.open(cmd.account, cmd.roles)
    events.append(AccountOpened(cmd.account, cmd.roles))


def deposit(engine: Engine, cmd: Deposit, events: list[Event]) -> None:
    account = engine.ledger.index(cmd.account)
    if account is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_ACCOUNT))
    elif (
        not is_count(cmd.amount, MAX_AMOUNT)
        or engine.ledger.deposits + cmd.amount > MAX_TOTAL
    ):
        events.append(command_rejected(cmd, Code.INVALID_AMOUNT))
    else:
        engine.ledger.deposit(account, cmd.amount)
        available = engine.ledger.available[account]
        events.append(Deposited(cmd.account, cmd.amount, available))


def withdraw(engine: Engine, cmd: Withdraw, events: list[Event]) -> None:
    account = engine.ledger.index(cmd.account)
    if account is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_ACCOUNT))
    elif not is_count(cmd.amount, MAX_AMOUNT):
        events.append(command_rejected(cmd, Code.INVALID_AMOUNT))
    elif not engine.ledger.withdraw(account, cmd.amount):
        events.append(command_rejected(cmd, Code.INSUFFICIENT_FUNDS))
    else:
        available = engine.ledger.available[account]
        events.append(Withdrawn(cmd.account, cmd.amount, available))


def set_capacity(engine: Engine, cmd: SetCapacity, events: list[Event]) -> None:
    account = engine.ledger.index(cmd.account)
    if account is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_ACCOUNT))
    elif type(cmd.symbol) is not str or cmd.symbol not in engine.instruments:
        events.append(command_rejected(cmd, Code.UNKNOWN_SYMBOL))
    elif "provider" not in engine.ledger.roles[account]:
        events.append(command_rejected(cmd, Code.ROLE_NOT_ALLOWED))
    elif type(cmd.lots) is not int or not 0 <= cmd.lots <= MAX_QTY:
        events.append(command_rejected(cmd, Code.INVALID_QUANTITY))
    else:
        engine.ledger.set_capacity(cmd.symbol, account, cmd.lots)
        events.append(CapacitySet(cmd.account, cmd.symbol, cmd.lots))


def release_escrow(engine: Engine, cmd: ReleaseEscrow, events: list[Event]) -> None:
    ledger = engine.ledger
    entry = ledger.escrows.get(cmd.trade_id) if type(cmd.trade_id) is int else None
    if entry is None:
        events.append(command_rejected(cmd, Code.UNKNOWN_ESCROW))
        return
    inst = engine.instruments.get(entry.symbol)
    if inst is not None and inst.window is not None:
        events.append(command_rejected(cmd, Code.ESCROW_LOCKED))
        return
    if type(cmd.payout) is not int or not 0 <= cmd.payout <= entry.amount:
        events.append(command_rejected(cmd, Code.INVALID_AMOUNT))
        return
    leases.release(engine, entry, cmd.payout, "used_up", events)


def is_count(value: object, most: int) -> TypeGuard[int]:
    """Whether ``value`` is an int (not a float, not a bool) from 1 to ``most``."""
    return type(value) is int and 1 <= value <= most
