"""No float ever holds a price, a quantity, a balance or a fee.

The engine's events and its snapshot are walked value by value after a busy
random flow: a float anywhere fails the test with the path to it. At the edge,
the decoders of commands refuse a float for any integer field, even one with
no fractional part.
"""

import random

import msgspec
import pytest
from harness import Market, command_rejected, random_flow, rejected

from matching import (
    AmendOrder,
    Code,
    Command,
    Deposit,
    PlaceOrder,
    SetCapacity,
    Withdraw,
)


def floats_in(value: object, path: str = "$") -> list[str]:
    """The paths of every float inside ``value`` (plain builtins)."""
    if isinstance(value, float):
        return [f"{path} = {value!r}"]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in floats_in(v, f"{path}.{k}")]
    if isinstance(value, list | tuple):
        return [p for i, v in enumerate(value) for p in floats_in(v, f"{path}[{i}]")]
    return []


def test_floats_in_finds_a_float_however_deep() -> None:
    assert floats_in({"a": [1, {"b": (2, 3.0)}]}) == ["$.a[1].b[1] = 3.0"]
    assert floats_in({"a": [1, {"b": (2, 3)}], "c": "4.5"}) == []


@pytest.mark.parametrize("seed", [21, 22, 23])
def test_no_float_reaches_an_event_or_the_state_in_a_busy_flow(seed: int) -> None:
    m = Market()
    rng = random.Random(seed)
    releases = []

    random_flow(m, rng, 500, releases=True)
    for trade_id in sorted(m.engine.ledger.escrows)[:20]:
        amount = m.engine.ledger.escrows[trade_id].amount
        releases.append(m.engine.ledger.release_escrow(trade_id, amount * 2 // 3))
    m.check()

    assert m.engine.trade_seq > 0
    assert floats_in(msgspec.to_builtins(m.events)) == []
    assert floats_in(msgspec.to_builtins(m.engine.snapshot())) == []
    assert floats_in(msgspec.to_builtins(releases)) == []
    ledger = m.engine.ledger
    totals = [ledger.fee_income, ledger.deposits, ledger.withdrawals, ledger.total()]
    assert all(type(x) is int for x in totals)


PLACE = '{"op":"place","account":"u1","symbol":"cpu-SPOT","side":"buy"'


@pytest.mark.parametrize("number", ["1.5", "2.0", "2e0"])
@pytest.mark.parametrize("field", ["qty", "price", "expire_at"])
def test_place_with_a_float_number_is_refused_by_decoding(
    field: str, number: str
) -> None:
    fields = {"qty": "2", "price": "100", "expire_at": "null"}
    fields[field] = number
    raw = PLACE + "".join(f',"{k}":{v}' for k, v in fields.items()) + "}"

    with pytest.raises(
        msgspec.ValidationError, match=f"got `float` - at `\\$.{field}`"
    ):
        msgspec.json.decode(raw.encode(), type=PlaceOrder)


@pytest.mark.parametrize(
    "raw",
    [
        b'{"op":"place","account":"u1","symbol":"s","side":"buy","qty":2.0}',
        b'{"op":"amend","account":"u1","order_id":5,"qty":2.0}',
        b'{"op":"amend","account":"u1","order_id":5,"price":99.5}',
        b'{"op":"amend","account":"u1","order_id":5.0,"qty":2}',
        b'{"op":"cancel","account":"u1","order_id":5.0}',
        b'{"op":"deposit","account":"u1","amount":1000000.0}',
        b'{"op":"withdraw","account":"u1","amount":0.5}',
        b'{"op":"set_capacity","account":"p1","symbol":"s","lots":10.0}',
    ],
)
def test_journal_decoder_refuses_a_float_in_any_integer_field(raw: bytes) -> None:
    with pytest.raises(msgspec.ValidationError, match="got `float`"):
        msgspec.json.decode(raw, type=Command)


def test_decoded_commands_carry_plain_ints() -> None:
    raw = (
        b'[{"op":"place","account":"u1","symbol":"s","side":"buy","qty":2,'
        b'"price":100},{"op":"amend","account":"u1","order_id":5,"qty":1},'
        b'{"op":"deposit","account":"u1","amount":7},'
        b'{"op":"withdraw","account":"u1","amount":7},'
        b'{"op":"set_capacity","account":"u1","symbol":"s","lots":3}]'
    )

    commands = msgspec.json.decode(raw, type=list[Command])

    assert commands == [
        PlaceOrder("u1", "s", "buy", 2, price=100),
        AmendOrder("u1", 5, qty=1),
        Deposit("u1", 7),
        Withdraw("u1", 7),
        SetCapacity("u1", "s", 3),
    ]


# -- commands built in Python skip the decoder: the engine refuses floats itself --


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (PlaceOrder("u1", "cpu-SPOT", "buy", 5, price=100.0), Code.INVALID_PRICE),  # type: ignore[arg-type]
        (PlaceOrder("u1", "cpu-SPOT", "buy", 5.0, price=100), Code.INVALID_QUANTITY),  # type: ignore[arg-type]
        (PlaceOrder("u1", "cpu-SPOT", "buy", True, price=100), Code.INVALID_QUANTITY),
        (
            PlaceOrder(
                "u1",
                "cpu-SPOT",
                "buy",
                5,
                tif="GTD",
                price=100,
                expire_at=1e30,  # type: ignore[arg-type]
            ),
            Code.INVALID_EXPIRY,
        ),
    ],
)
def test_engine_rejects_an_order_built_with_a_float(
    command: Command, code: Code
) -> None:
    m = Market()
    m.open("u1", deposit=10**9)
    before = m.engine.ledger.available[:]

    events = m.apply(command)

    assert events == [rejected("u1", code)]
    assert m.engine.ledger.available == before
    assert m.engine.orders == {}


@pytest.mark.parametrize("amount", [1.5, 2.0, True])
def test_engine_rejects_a_deposit_or_withdrawal_of_a_non_integer(
    amount: object,
) -> None:
    m = Market()
    m.open("u1", deposit=10)

    deposit = m.apply(Deposit("u1", amount))  # type: ignore[arg-type]
    withdraw = m.apply(Withdraw("u1", amount))  # type: ignore[arg-type]

    assert deposit == [command_rejected("deposit", Code.INVALID_AMOUNT)]
    assert withdraw == [command_rejected("withdraw", Code.INVALID_AMOUNT)]
    assert m.engine.ledger.available == [10]
    assert type(m.engine.ledger.deposits) is int


def test_amend_to_a_float_price_or_quantity_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10**9)
    order_id = m.apply(PlaceOrder("u1", "cpu-SPOT", "buy", 5, price=100))[0].order_id  # type: ignore[union-attr]

    by_price = m.apply(AmendOrder("u1", order_id, price=99.0))  # type: ignore[arg-type]
    by_qty = m.apply(AmendOrder("u1", order_id, qty=4.0))  # type: ignore[arg-type]

    assert by_price == [rejected("u1", Code.INVALID_PRICE, order_id)]
    assert by_qty == [rejected("u1", Code.INVALID_QUANTITY, order_id)]
    assert m.bids("cpu-SPOT") == [(100, 5)]
