"""Commands built in Python skip the decoder: ill-typed fields are still refused.

Each bad command gets its coded rejection and changes nothing (the same state
hash as a twin market that got a `Tick` instead); a misused sequencer or a value
that is not a command raises before the engine changes at all.
"""

import pytest
from harness import CPU, Market, command_rejected, rejected
from test_engine_rejections import busy_market, place

from matching import (
    MAX_TIME,
    AmendOrder,
    CancelOrder,
    Code,
    Command,
    Deposit,
    OpenAccount,
    SequenceError,
    SetCapacity,
    SetPhase,
    Tick,
)
from matching.config import MAX_AMOUNT, MAX_TOTAL

ILL_TYPED_PLACES = [
    pytest.param(place(stp="none"), Code.INVALID_ORDER_TYPE, id="unknown stp"),
    pytest.param(place(side="sell", stp="x"), Code.INVALID_ORDER_TYPE, id="sell stp"),
    pytest.param(place(tif="DAY"), Code.INVALID_ORDER_TYPE, id="unknown tif"),
    pytest.param(place(tif=["GTC"]), Code.INVALID_ORDER_TYPE, id="tif list"),
    pytest.param(place(tif="gtc"), Code.INVALID_ORDER_TYPE, id="lower-case tif"),
    pytest.param(place(side="BUY"), Code.INVALID_SIDE, id="upper-case side"),
    pytest.param(place(side=None), Code.INVALID_SIDE, id="no side"),
    pytest.param(place(type="stop"), Code.INVALID_ORDER_TYPE, id="unknown type"),
    pytest.param(place(type=None), Code.INVALID_ORDER_TYPE, id="no type"),
    pytest.param(place(post_only="no"), Code.INVALID_ORDER_TYPE, id="post_only str"),
    pytest.param(place(post_only=1), Code.INVALID_ORDER_TYPE, id="post_only int"),
    pytest.param(place(client_order_id=7), Code.INVALID_CLIENT_ORDER_ID, id="coid int"),
    pytest.param(
        place(client_order_id="x" * 65), Code.INVALID_CLIENT_ORDER_ID, id="coid long"
    ),
    pytest.param(place(symbol=["cpu-SPOT"]), Code.UNKNOWN_SYMBOL, id="symbol list"),
    pytest.param(
        place(None),  # type: ignore[arg-type]
        Code.UNKNOWN_ACCOUNT,
        id="account None",
    ),
    pytest.param(
        place(["u1"]),  # type: ignore[arg-type]
        Code.UNKNOWN_ACCOUNT,
        id="account list",
    ),
    pytest.param(
        place(tif="GTD", expire_at=2**64), Code.INVALID_EXPIRY, id="expiry past int64"
    ),
]


@pytest.mark.parametrize(("command", "code"), ILL_TYPED_PLACES)
def test_ill_typed_place_is_rejected_and_changes_nothing(
    command: Command, code: Code
) -> None:
    m, _ = busy_market()
    twin, _ = busy_market()

    events = m.apply(command)
    twin.tick()

    assert len(events) == 1
    assert events[0] == rejected(
        events[0].account,  # type: ignore[union-attr]
        code,
        coid=events[0].client_order_id,  # type: ignore[union-attr]
    )
    assert m.state_hash() == twin.state_hash()


def test_rejection_of_an_ill_typed_account_echoes_no_account() -> None:
    m, _ = busy_market()

    events = m.apply(place(None))  # type: ignore[arg-type]

    assert events == [rejected("", Code.UNKNOWN_ACCOUNT)]


def test_cancel_or_amend_with_a_float_order_id_finds_no_order() -> None:
    m, ids = busy_market()
    twin, _ = busy_market()

    cancel = m.apply(CancelOrder("u1", float(ids.bid)))  # type: ignore[arg-type]
    amend = m.apply(AmendOrder("u1", float(ids.bid), qty=3))  # type: ignore[arg-type]
    twin.tick()
    twin.tick()

    assert cancel == [rejected("u1", Code.UNKNOWN_ORDER)]
    assert amend == [rejected("u1", Code.UNKNOWN_ORDER)]
    assert m.state_hash() == twin.state_hash()


ILL_TYPED_OTHERS = [
    pytest.param(OpenAccount(None), Code.INVALID_ACCOUNT_NAME, id="name None"),  # type: ignore[arg-type]
    pytest.param(OpenAccount(""), Code.INVALID_ACCOUNT_NAME, id="empty name"),
    pytest.param(OpenAccount("a\x00b"), Code.INVALID_ACCOUNT_NAME, id="control char"),
    pytest.param(OpenAccount("x" * 65), Code.INVALID_ACCOUNT_NAME, id="name too long"),
    pytest.param(OpenAccount("p", "provider"), Code.INVALID_ROLE, id="roles str"),  # type: ignore[arg-type]
    pytest.param(OpenAccount("p", None), Code.INVALID_ROLE, id="roles None"),  # type: ignore[arg-type]
    pytest.param(OpenAccount("p", ()), Code.INVALID_ROLE, id="no role"),
    pytest.param(
        OpenAccount("p", (["consumer"],)),  # type: ignore[arg-type]
        Code.INVALID_ROLE,
        id="unhashable role",
    ),
    pytest.param(OpenAccount("p", ("admin",)), Code.INVALID_ROLE, id="unknown role"),  # type: ignore[arg-type]
    pytest.param(
        OpenAccount("p", ("consumer", "consumer")), Code.INVALID_ROLE, id="role twice"
    ),
    pytest.param(
        Deposit("u1", MAX_AMOUNT + 1), Code.INVALID_AMOUNT, id="deposit over limit"
    ),
    pytest.param(SetCapacity("u1", ["x"], 1), Code.UNKNOWN_SYMBOL, id="symbol list"),  # type: ignore[arg-type]
    pytest.param(SetCapacity("u1", CPU, 1.5), Code.INVALID_QUANTITY, id="lots float"),  # type: ignore[arg-type]
    pytest.param(SetPhase(["x"], "halted"), Code.UNKNOWN_SYMBOL, id="phase symbol"),  # type: ignore[arg-type]
]


@pytest.mark.parametrize(("command", "code"), ILL_TYPED_OTHERS)
def test_ill_typed_account_or_market_command_is_rejected(
    command: Command, code: Code
) -> None:
    m, _ = busy_market()
    twin, _ = busy_market()

    events = m.apply(command)
    twin.tick()

    op = type(command).__struct_config__.tag
    assert events == [command_rejected(str(op), code)]
    assert m.state_hash() == twin.state_hash()


def test_deposits_stop_before_totals_outgrow_64_bits() -> None:
    m = Market()
    m.open("a")
    for _ in range(MAX_TOTAL // MAX_AMOUNT):
        m.apply(Deposit("a", MAX_AMOUNT))

    events = m.apply(Deposit("a", MAX_AMOUNT))

    assert events == [command_rejected("deposit", Code.INVALID_AMOUNT)]
    assert m.engine.ledger.deposits <= MAX_TOTAL
    m.state_hash()  # still encodes


@pytest.mark.parametrize(
    ("seq_shift", "ts"),
    [
        pytest.param(1.0, None, id="float seq"),
        pytest.param(True, None, id="bool seq"),
        pytest.param(1, 1.5, id="float ts"),
        pytest.param(1, MAX_TIME + 1, id="ts past int64"),
    ],
)
def test_ill_typed_stamps_raise_and_change_nothing(
    seq_shift: object, ts: object
) -> None:
    m, _ = busy_market()
    before = m.state_hash()
    seq = m.engine.seq + seq_shift if seq_shift is not True else True  # type: ignore[operator]
    stamp = m.engine.now + 1 if ts is None else ts

    with pytest.raises(SequenceError):
        m.engine.apply(seq, stamp, Tick())  # type: ignore[arg-type]

    assert m.state_hash() == before


@pytest.mark.parametrize("thing", ["x", None, 3, place])
def test_a_value_that_is_not_a_command_raises_and_changes_nothing(
    thing: object,
) -> None:
    m, _ = busy_market()
    before = m.state_hash()

    with pytest.raises(TypeError, match="not a command"):
        m.engine.apply(m.engine.seq + 1, m.engine.now + 1, thing)  # type: ignore[arg-type]

    assert m.state_hash() == before
