"""A bad command is rejected with its stable code and changes nothing.

"Changes nothing" is checked against a twin: the same market that got a `Tick`
with the same stamp instead of the bad command must have the same state hash
(the hash covers the books, orders, balances, capacity and the clock).
"""

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from harness import (
    CPU,
    GPU,
    Market,
    command_rejected,
    rejected,
)

from matching import (
    MAX_PRICE,
    MAX_QTY,
    AmendOrder,
    CancelOrder,
    Code,
    Command,
    Deposit,
    OpenAccount,
    PlaceOrder,
    SetCapacity,
    SetPhase,
    Withdraw,
)
from matching.commands import Phase


@dataclass(frozen=True)
class Ids:
    """The open orders of `busy_market`: u1's bid and u2's ask."""

    bid: int
    ask: int


def busy_market() -> tuple[Market, Ids]:
    """u1 bids 5@100 (500 of its 1,000 held); u2 asks 5@101; c1 is a consumer."""
    m = Market()
    m.open("u1", deposit=1_000, capacity=10)
    m.open("u2", deposit=1_000, capacity=10)
    m.open("c1", deposit=1_000, roles=("consumer",))
    bid = m.buy("u1", 5, 100)
    ask = m.sell("u2", 5, 101)
    return m, Ids(bid.id, ask.id)


def place(account: str = "u1", **kw: object) -> PlaceOrder:
    fields: dict[str, object] = {"symbol": CPU, "side": "buy", "qty": 1, "price": 90}
    fields.update(kw)
    return PlaceOrder(account, **fields)  # type: ignore[arg-type]


BAD_PLACES = [
    pytest.param(place(symbol="nope-SPOT"), Code.UNKNOWN_SYMBOL, id="unknown symbol"),
    pytest.param(place("ghost"), Code.UNKNOWN_ACCOUNT, id="unknown account"),
    pytest.param(
        place(symbol=GPU, price=1005), Code.PRICE_NOT_ON_TICK, id="price off tick"
    ),
    pytest.param(place(qty=0), Code.INVALID_QUANTITY, id="zero qty"),
    pytest.param(place(qty=-3), Code.INVALID_QUANTITY, id="negative qty"),
    pytest.param(place(qty=MAX_QTY + 1), Code.INVALID_QUANTITY, id="qty too large"),
    pytest.param(place(price=0), Code.INVALID_PRICE, id="zero price"),
    pytest.param(place(price=-100), Code.INVALID_PRICE, id="negative price"),
    pytest.param(place(price=MAX_PRICE + 1), Code.INVALID_PRICE, id="price too large"),
    pytest.param(place(price=None), Code.INVALID_PRICE, id="limit without price"),
    pytest.param(
        place(type="market", price=100, tif="IOC"),
        Code.INVALID_ORDER_TYPE,
        id="market with price",
    ),
    pytest.param(
        place(type="market", price=None, tif="GTC"),
        Code.INVALID_ORDER_TYPE,
        id="market GTC",
    ),
    pytest.param(
        place(type="market", price=None, tif="IOC", post_only=True),
        Code.INVALID_ORDER_TYPE,
        id="market post-only",
    ),
    pytest.param(
        place(tif="IOC", post_only=True),
        Code.INVALID_ORDER_TYPE,
        id="post-only IOC",
    ),
    pytest.param(
        place(tif="FOK", post_only=True),
        Code.INVALID_ORDER_TYPE,
        id="post-only FOK",
    ),
    pytest.param(place(qty=6, price=100), Code.INSUFFICIENT_FUNDS, id="no funds"),
    pytest.param(
        place(side="sell", qty=11, price=200),
        Code.INSUFFICIENT_CAPACITY,
        id="no capacity",
    ),
    pytest.param(
        place("c1", side="sell", price=200),
        Code.INSUFFICIENT_CAPACITY,
        id="consumer sells what it has not got",
    ),
]


@pytest.mark.parametrize(("command", "code"), BAD_PLACES)
def test_bad_place_is_rejected_with_its_code_and_changes_nothing(
    command: PlaceOrder, code: Code
) -> None:
    m, _ = busy_market()
    twin, _ = busy_market()

    events = m.apply(command)
    twin.tick()

    assert events == [rejected(command.account, code)]
    assert m.state_hash() == twin.state_hash()


BAD_ORDER_COMMANDS: list[object] = [
    pytest.param(
        lambda ids: CancelOrder("u1", 999), Code.UNKNOWN_ORDER, id="cancel unknown"
    ),
    pytest.param(
        lambda ids: CancelOrder("u1", ids.ask),
        Code.ORDER_NOT_OWNED,
        id="cancel someone else's",
    ),
    pytest.param(
        lambda ids: CancelOrder("ghost", ids.bid),
        Code.UNKNOWN_ACCOUNT,
        id="cancel by unknown account",
    ),
    pytest.param(
        lambda ids: AmendOrder("u1", 999, qty=1),
        Code.UNKNOWN_ORDER,
        id="amend unknown",
    ),
    pytest.param(
        lambda ids: AmendOrder("u1", ids.ask, qty=1),
        Code.ORDER_NOT_OWNED,
        id="amend someone else's",
    ),
    pytest.param(
        lambda ids: AmendOrder("u1", ids.bid, qty=0),
        Code.INVALID_QUANTITY,
        id="amend to zero leaves",
    ),
    pytest.param(
        lambda ids: AmendOrder("u1", ids.bid, price=0),
        Code.INVALID_PRICE,
        id="amend to zero price",
    ),
    pytest.param(
        lambda ids: AmendOrder("u1", ids.bid),
        Code.NOTHING_TO_AMEND,
        id="amend nothing",
    ),
    pytest.param(
        lambda ids: AmendOrder("u1", ids.bid, qty=11),
        Code.INSUFFICIENT_FUNDS,
        id="amend larger without funds",
    ),
    pytest.param(
        lambda ids: AmendOrder("u2", ids.ask, qty=11),
        Code.INSUFFICIENT_CAPACITY,
        id="amend larger without capacity",
    ),
]


@pytest.mark.parametrize(("make", "code"), BAD_ORDER_COMMANDS)
def test_bad_cancel_or_amend_is_rejected_with_its_code_and_changes_nothing(
    make: Callable[[Ids], CancelOrder | AmendOrder], code: Code
) -> None:
    m, ids = busy_market()
    twin, _ = busy_market()
    command = make(ids)

    events = m.apply(command)
    twin.tick()

    assert events == [rejected(command.account, code, order_id=command.order_id)]
    assert m.state_hash() == twin.state_hash()


BAD_OTHER_COMMANDS = [
    pytest.param(Deposit("u1", 0), Code.INVALID_AMOUNT, id="deposit zero"),
    pytest.param(Deposit("u1", -5), Code.INVALID_AMOUNT, id="deposit negative"),
    pytest.param(Deposit("ghost", 5), Code.UNKNOWN_ACCOUNT, id="deposit to nobody"),
    pytest.param(
        Withdraw("u1", 501), Code.INSUFFICIENT_FUNDS, id="withdraw more than free"
    ),
    pytest.param(Withdraw("u1", 0), Code.INVALID_AMOUNT, id="withdraw zero"),
    pytest.param(Withdraw("u1", -1), Code.INVALID_AMOUNT, id="withdraw negative"),
    pytest.param(Withdraw("ghost", 1), Code.UNKNOWN_ACCOUNT, id="withdraw from nobody"),
    pytest.param(
        SetCapacity("c1", CPU, 10), Code.ROLE_NOT_ALLOWED, id="consumer capacity"
    ),
    pytest.param(
        SetCapacity("u1", "nope-SPOT", 10),
        Code.UNKNOWN_SYMBOL,
        id="capacity of unknown symbol",
    ),
    pytest.param(
        SetCapacity("ghost", CPU, 10),
        Code.UNKNOWN_ACCOUNT,
        id="capacity of nobody",
    ),
    pytest.param(
        SetCapacity("u1", CPU, -1), Code.INVALID_QUANTITY, id="negative capacity"
    ),
    pytest.param(OpenAccount("u1"), Code.ACCOUNT_EXISTS, id="open twice"),
    pytest.param(
        SetPhase("nope-SPOT", "halted"), Code.UNKNOWN_SYMBOL, id="phase of nothing"
    ),
    pytest.param(SetPhase(CPU, "continuous"), Code.INVALID_PHASE, id="phase unchanged"),
]


@pytest.mark.parametrize(("command", "code"), BAD_OTHER_COMMANDS)
def test_bad_account_or_market_command_is_rejected_and_changes_nothing(
    command: Command, code: Code
) -> None:
    m, _ = busy_market()
    twin, _ = busy_market()

    events = m.apply(command)
    twin.tick()

    op = type(command).__struct_config__.tag
    assert events == [command_rejected(str(op), code)]
    assert m.state_hash() == twin.state_hash()


@pytest.mark.parametrize("phase", ["halted", "closed"])
def test_place_outside_continuous_trading_is_rejected_as_not_trading(
    phase: Phase,
) -> None:
    m, _ = busy_market()
    m.apply(SetPhase(CPU, phase))
    twin = m.replay()

    events = m.apply(place())
    twin.tick()

    assert events == [rejected("u1", Code.NOT_TRADING)]
    assert m.state_hash() == twin.state_hash()


def test_amend_while_halted_is_rejected_as_not_trading() -> None:
    m, ids = busy_market()
    m.apply(SetPhase(CPU, "halted"))
    twin = m.replay()

    events = m.apply(AmendOrder("u2", ids.ask, qty=1))
    twin.tick()

    assert events == [rejected("u2", Code.NOT_TRADING, order_id=ids.ask)]
    assert m.state_hash() == twin.state_hash()


def test_rejection_echoes_the_client_order_id() -> None:
    m, _ = busy_market()

    events = m.apply(place(qty=0, client_order_id="x-1"))

    assert events == [rejected("u1", Code.INVALID_QUANTITY, coid="x-1")]


def test_rejected_place_creates_no_order_under_its_sequence_number() -> None:
    m, _ = busy_market()
    m.apply(place(qty=0))
    bad_seq = m.journal[-1][0]

    events = m.cancel("u1", bad_seq)

    assert events == [rejected("u1", Code.UNKNOWN_ORDER, order_id=bad_seq)]
