"""The stable codes of every rejection the core can give, and their meaning.

A rejected command changes nothing. The code is part of the wire protocol: clients
branch on it, so a code is never renamed or reused for another meaning. The
message beside it is for people and may change.
"""

from enum import StrEnum
from typing import Final

__all__ = ["CODES", "CancelReason", "Code"]


class Code(StrEnum):
    """Why a command was rejected."""

    UNKNOWN_SYMBOL = "UNKNOWN_SYMBOL"
    UNKNOWN_ACCOUNT = "UNKNOWN_ACCOUNT"
    INVALID_ACCOUNT_NAME = "INVALID_ACCOUNT_NAME"
    INVALID_ROLE = "INVALID_ROLE"
    ACCOUNT_EXISTS = "ACCOUNT_EXISTS"
    UNKNOWN_ORDER = "UNKNOWN_ORDER"
    ORDER_NOT_OWNED = "ORDER_NOT_OWNED"
    ORDER_CLOSED = "ORDER_CLOSED"
    NOT_TRADING = "NOT_TRADING"
    INVALID_SIDE = "INVALID_SIDE"
    INVALID_QUANTITY = "INVALID_QUANTITY"
    INVALID_PRICE = "INVALID_PRICE"
    PRICE_NOT_ON_TICK = "PRICE_NOT_ON_TICK"
    INVALID_ORDER_TYPE = "INVALID_ORDER_TYPE"
    INVALID_EXPIRY = "INVALID_EXPIRY"
    INVALID_CLIENT_ORDER_ID = "INVALID_CLIENT_ORDER_ID"
    NOTHING_TO_AMEND = "NOTHING_TO_AMEND"
    WOULD_TRADE = "WOULD_TRADE"
    INSUFFICIENT_FUNDS = "INSUFFICIENT_FUNDS"
    INSUFFICIENT_CAPACITY = "INSUFFICIENT_CAPACITY"
    INVALID_AMOUNT = "INVALID_AMOUNT"
    UNKNOWN_ESCROW = "UNKNOWN_ESCROW"
    ROLE_NOT_ALLOWED = "ROLE_NOT_ALLOWED"
    INVALID_PHASE = "INVALID_PHASE"
    INVALID_SCHEDULE = "INVALID_SCHEDULE"
    UNKNOWN_CLASS = "UNKNOWN_CLASS"
    INVALID_WINDOW = "INVALID_WINDOW"
    INSTRUMENT_EXISTS = "INSTRUMENT_EXISTS"
    ESCROW_LOCKED = "ESCROW_LOCKED"
    UNKNOWN_LEASE = "UNKNOWN_LEASE"
    LEASE_EXHAUSTED = "LEASE_EXHAUSTED"
    LEASE_FIRM = "LEASE_FIRM"
    INVALID_LEASE_END = "INVALID_LEASE_END"
    UNKNOWN_JOB = "UNKNOWN_JOB"
    INVALID_JOB = "INVALID_JOB"
    INVALID_COUNTERPARTIES = "INVALID_COUNTERPARTIES"


class CancelReason(StrEnum):
    """Why an accepted order left the book without filling completely."""

    USER = "user"
    """The owner cancelled it."""
    UNFILLED = "unfilled"
    """The rest of an IOC or market order, which never rests."""
    FILL_OR_KILL = "fill_or_kill"
    """A FOK order that could not fill completely; it had no effect."""
    SELF_TRADE = "self_trade"
    """Self-trade prevention: the order would have traded with its own account."""
    INSUFFICIENT_FUNDS = "insufficient_funds"
    """A market buy ran out of money before it filled completely."""
    CLOSED = "closed"
    """The instrument closed while the order was open."""
    AUCTION_ENDED = "auction_ended"
    """The rest of an IOC order entered in a call phase, after the auction it
    was entered for."""


CODES: Final[dict[Code, str]] = {
    Code.UNKNOWN_SYMBOL: "no instrument has this symbol",
    Code.UNKNOWN_ACCOUNT: "no account has this name",
    Code.INVALID_ACCOUNT_NAME: "an account name is 1 to 64 printable characters",
    Code.INVALID_ROLE: "roles are one or more of consumer, provider, operator, "
    "each once",
    Code.ACCOUNT_EXISTS: "an account with this name is already open",
    Code.UNKNOWN_ORDER: "no order has this id",
    Code.ORDER_NOT_OWNED: "the order belongs to another account",
    Code.ORDER_CLOSED: "the order is already filled, cancelled or expired",
    Code.NOT_TRADING: "the instrument does not accept this command in its phase",
    Code.INVALID_SIDE: "side must be buy or sell",
    Code.INVALID_QUANTITY: "quantity must be a whole number of lots, from 1 to 10^9",
    Code.INVALID_PRICE: "price must be a whole number of µcr per lot, from 1 to 10^12",
    Code.PRICE_NOT_ON_TICK: "price must be a multiple of the instrument's tick",
    Code.INVALID_ORDER_TYPE: "this combination of type, time in force and flags "
    "is not allowed",
    Code.INVALID_EXPIRY: "a GTD order needs an expiry after the current time and "
    "before 2^63 ns; other orders take none",
    Code.INVALID_CLIENT_ORDER_ID: "a client order id is text of at most 64 characters",
    Code.NOTHING_TO_AMEND: "an amend needs a new quantity or a new price",
    Code.WOULD_TRADE: "a post-only order would have traded on arrival",
    Code.INSUFFICIENT_FUNDS: "the available balance does not cover the order or "
    "withdrawal",
    Code.INSUFFICIENT_CAPACITY: "the account's registered capacity does not cover "
    "the sell",
    Code.INVALID_AMOUNT: "amount must be a whole number of µcr, from 1 to the "
    "venue's limits",
    Code.UNKNOWN_ESCROW: "no open escrow has this trade id (it may be released "
    "already)",
    Code.ROLE_NOT_ALLOWED: "the account's roles do not allow this command",
    Code.INVALID_PHASE: "the phase is unknown, the instrument is already in it, "
    "or a future's trading has ended",
    Code.INVALID_SCHEDULE: "a scheduled change needs a time after the current one, "
    "and a batch interval from 1 to 3,600,000 ms only for the batch phase",
    Code.UNKNOWN_CLASS: "no resource class with futures has this name",
    Code.INVALID_WINDOW: "a window starts on a whole hour, lasts 1 to 24 hours and "
    "its gate is still ahead",
    Code.INSTRUMENT_EXISTS: "this window is already listed",
    Code.ESCROW_LOCKED: "a future's escrow is settled by its delivery, not released "
    "by command",
    Code.UNKNOWN_LEASE: "no live lease of this instrument has this id",
    Code.LEASE_EXHAUSTED: "the usage would pass what the lease's lots cover",
    Code.LEASE_FIRM: "a future's lease lasts its window and cannot be ended early",
    Code.INVALID_LEASE_END: "a lease ends used_up, failed or cancelled",
    Code.UNKNOWN_JOB: "no open job has this id",
    Code.INVALID_JOB: "a job has 1 to 100,000 inputs, a tier, a budget of 1 FLOP "
    "or more, and ends done, failed or cancelled",
    Code.INVALID_COUNTERPARTIES: "counterparties are 1 to 64 account names, on an "
    "IOC limit order in continuous trading",
}
