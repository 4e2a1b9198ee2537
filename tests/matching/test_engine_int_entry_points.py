"""The int-level entry points against `Engine.apply` of the commands they name.

`Engine.place_limit`, `Engine.place_market` and `Engine.cancel` take account
numbers and ints instead of a command. Over the random flows of the reference
book's tests, one engine applies every command and another sends each order and
cancel it can through the entry points: every command must give the same
events, and the engines must end in the same state. Beside that, ill-typed and
out-of-range arguments give the command's rejection, and a misused entry point
raises before anything changes.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from test_book_matches_reference import FEES, SYMBOL, TICKED, Market, Stamped, flows

from matching import (
    CancelOrder,
    Command,
    Deposit,
    Engine,
    Event,
    MarketConfig,
    OpenAccount,
    OrderRejected,
    PlaceOrder,
    ResourceClass,
    SequenceError,
    SetCapacity,
)
from matching.order import BUY, FOK, GTC, GTD, IOC, SELL, TIFS

_SIDES = {"buy": BUY, "sell": SELL}


def _through_entry_points(
    engine: Engine, seq: int, ts: int, cmd: Command
) -> list[Event]:
    """Apply ``cmd`` by the entry point that names it, if there is one."""
    if isinstance(cmd, CancelOrder):
        account = engine.account_id(cmd.account)
        if account is not None:
            return engine.cancel(seq, ts, account, cmd.order_id)
    elif (
        isinstance(cmd, PlaceOrder)
        and not cmd.post_only
        and cmd.stp == "cancel_taker"
        and not cmd.counterparties
    ):
        account = engine.account_id(cmd.account)
        side = _SIDES[cmd.side]
        if account is not None and cmd.type == "limit" and cmd.price is not None:
            tif = TIFS[cmd.tif or "GTC"]
            return engine.place_limit(
                seq, ts, account, cmd.symbol, side, cmd.price, cmd.qty, tif,
                cmd.expire_at, cmd.client_order_id,
            )  # fmt: skip
        if account is not None and cmd.type == "market" and cmd.expire_at is None:
            tif = TIFS[cmd.tif or "IOC"]
            return engine.place_market(
                seq, ts, account, cmd.symbol, side, cmd.qty, tif, cmd.client_order_id
            )
    return engine.apply(seq, ts, cmd)


def _assert_entry_points_match_apply(market: Market, flow: list[Stamped]) -> None:
    by_command = Engine(market.config)
    by_entry = Engine(market.config)
    for seq, (ts, command) in enumerate(flow, 1):
        expected = by_command.apply(seq, ts, command)
        assert _through_entry_points(by_entry, seq, ts, command) == expected, command
        by_entry.check()
    assert by_entry.state_hash() == by_command.state_hash()


@settings(max_examples=300, deadline=None)
@given(flows(FEES, max_steps=60))
def test_entry_points_give_the_events_and_state_of_apply(flow: list[Stamped]) -> None:
    _assert_entry_points_match_apply(FEES, flow)


@settings(max_examples=150, deadline=None)
@given(flows(TICKED, max_steps=60))
def test_entry_points_match_apply_on_a_ticked_instrument(flow: list[Stamped]) -> None:
    _assert_entry_points_match_apply(TICKED, flow)


# -- arguments the command would not hold -------------------------------------


def _market() -> tuple[Engine, int, int]:
    """An engine with a funded buyer and a seller with capacity on cpu-SPOT."""
    config = MarketConfig(classes=[ResourceClass("cpu", lot_cu=100, tick=5)])
    engine = Engine(config)
    setup: list[Command] = [
        OpenAccount("ann"),
        OpenAccount("bob", ("provider",)),
        Deposit("ann", 10**9),
        SetCapacity("bob", "cpu-SPOT", 1_000),
    ]
    for command in setup:
        engine.apply(engine.seq + 1, 0, command)
    ann, bob = engine.account_id("ann"), engine.account_id("bob")
    assert ann is not None
    assert bob is not None
    return engine, ann, bob


def _code(events: list[Event]) -> str:
    (event,) = events
    assert isinstance(event, OrderRejected)
    return event.code


@pytest.mark.parametrize(
    ("side", "price", "qty", "tif", "code"),
    [
        (2, 100, 1, GTC, "INVALID_SIDE"),
        (True, 100, 1, GTC, "INVALID_SIDE"),
        (BUY, 100.0, 1, GTC, "INVALID_PRICE"),
        (BUY, 0, 1, GTC, "INVALID_PRICE"),
        (BUY, 101, 1, GTC, "PRICE_NOT_ON_TICK"),
        (BUY, 100, True, GTC, "INVALID_QUANTITY"),
        (BUY, 100, 0, GTC, "INVALID_QUANTITY"),
        (BUY, 100, 1, 9, "INVALID_ORDER_TYPE"),
        (BUY, 100, 1, 1.0, "INVALID_ORDER_TYPE"),
        (BUY, 100, 1, GTD, "INVALID_EXPIRY"),
    ],
)
def test_place_limit_rejects_bad_arguments_with_the_commands_code(
    side: object, price: object, qty: object, tif: object, code: str
) -> None:
    engine, ann, _ = _market()
    before = engine.state_hash()

    events = engine.place_limit(5, 0, ann, SYMBOL, side, price, qty, tif)  # type: ignore[arg-type]

    assert _code(events) == code
    assert engine.seq == 5
    engine.seq = 4  # the hash includes the sequence number
    assert engine.state_hash() == before


def test_place_limit_on_an_unknown_symbol_is_rejected() -> None:
    engine, ann, _ = _market()

    assert _code(engine.place_limit(5, 0, ann, "gpu-SPOT", BUY, 100, 1)) == (
        "UNKNOWN_SYMBOL"
    )
    assert _code(engine.place_market(6, 0, ann, "gpu-SPOT", BUY, 1)) == (
        "UNKNOWN_SYMBOL"
    )


def test_place_market_rejects_a_gtc_market_order() -> None:
    engine, ann, _ = _market()

    assert _code(engine.place_market(5, 0, ann, SYMBOL, BUY, 1, GTC)) == (
        "INVALID_ORDER_TYPE"
    )


def test_place_market_fok_that_cannot_fill_has_no_effect() -> None:
    engine, ann, bob = _market()
    engine.place_limit(5, 0, bob, SYMBOL, SELL, 100, 3)

    events = engine.place_market(6, 0, ann, SYMBOL, BUY, 4, FOK)

    assert [type(e).__name__ for e in events] == ["OrderAccepted", "OrderCancelled"]
    assert engine.instruments[SYMBOL].book.volume(SELL) == 3


def test_cancel_of_another_accounts_order_is_rejected() -> None:
    engine, ann, bob = _market()
    engine.place_limit(5, 0, ann, SYMBOL, BUY, 100, 1, IOC)
    engine.place_limit(6, 0, ann, SYMBOL, BUY, 100, 1)

    assert _code(engine.cancel(7, 0, bob, 6)) == "ORDER_NOT_OWNED"
    assert _code(engine.cancel(8, 0, ann, 5)) == "ORDER_CLOSED"
    assert _code(engine.cancel(9, 0, ann, 6.0)) == "UNKNOWN_ORDER"  # type: ignore[arg-type]
    assert _code(engine.cancel(10, 0, ann, 99)) == "UNKNOWN_ORDER"


@pytest.mark.parametrize("account", [-1, 2, True, "ann", None])
def test_an_entry_point_with_no_account_number_raises_and_changes_nothing(
    account: object,
) -> None:
    engine, _, _ = _market()
    before = engine.state_hash()

    with pytest.raises(ValueError, match="not an account number"):
        engine.place_limit(5, 0, account, SYMBOL, BUY, 100, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an account number"):
        engine.place_market(5, 0, account, SYMBOL, BUY, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not an account number"):
        engine.cancel(5, 0, account, 1)  # type: ignore[arg-type]

    assert engine.state_hash() == before


def test_an_entry_point_out_of_sequence_raises_and_changes_nothing() -> None:
    engine, ann, _ = _market()
    before = engine.state_hash()

    with pytest.raises(SequenceError):
        engine.place_limit(6, 0, ann, SYMBOL, BUY, 100, 1)
    with pytest.raises(SequenceError):
        engine.cancel(4, 0, ann, 1)

    assert engine.state_hash() == before
