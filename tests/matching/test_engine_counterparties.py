"""Orders that name their counterparties: they trade only with those accounts'
resting orders, in price and time priority, and leave the others untouched."""

from typing import Any

import pytest
from harness import CPU, Market
from reference_book import ReferenceBook

from matching import Book, Code, OrderCancelled, OrderRejected, PlaceOrder, Trade


def market(book_factory: Any = Book) -> Market:
    m = Market(book_factory=book_factory)
    for name in ("good", "bad", "other"):
        m.open(name, capacity=100, roles=("provider",))
    m.open("c", deposit=10**9, roles=("consumer",))
    return m


@pytest.mark.parametrize("reference", [False, True])
def test_it_skips_other_sellers_and_fills_the_named_one_at_its_own_price(
    reference: bool,
) -> None:
    m = market(ReferenceBook if reference else Book)
    m.sell("bad", 5, 100)
    m.sell("good", 3, 101)
    m.sell("other", 5, 101)
    m.sell("good", 4, 102)

    events = m.apply(
        PlaceOrder("c", CPU, "buy", 10, price=102, tif="IOC", counterparties=("good",))
    )

    trades = [e for e in events if type(e) is Trade]
    assert [(t.maker_account, t.price, t.qty) for t in trades] == [
        ("good", 101, 3),
        ("good", 102, 4),
    ]
    [cancelled] = [e for e in events if type(e) is OrderCancelled]
    assert cancelled.reason == "unfilled"
    # The others keep their orders and their places.
    assert m.asks() == [(100, 5), (101, 5)]


def test_a_named_counterparty_that_does_not_cross_is_not_traded() -> None:
    m = market()
    m.sell("bad", 5, 100)
    m.sell("good", 5, 110)

    events = m.apply(
        PlaceOrder("c", CPU, "buy", 5, price=105, tif="IOC", counterparties=("good",))
    )

    assert not [e for e in events if type(e) is Trade]
    assert m.asks() == [(100, 5), (110, 5)]
    assert m.balance("c").held == 0


@pytest.mark.parametrize(
    "order",
    [
        PlaceOrder("c", CPU, "buy", 5, price=105, counterparties=("good",)),
        PlaceOrder("c", CPU, "buy", 5, price=105, tif="FOK", counterparties=("good",)),
        PlaceOrder("c", CPU, "buy", 5, type="market", tif="IOC", counterparties=("g",)),
        PlaceOrder(
            "c", CPU, "buy", 5, price=105, tif="IOC", counterparties=("x",) * 65
        ),
        PlaceOrder(
            "c", CPU, "buy", 5, price=105, tif="IOC", counterparties=("x" * 65,)
        ),
    ],
)
def test_counterparties_only_on_an_ioc_limit_order_of_sound_names(
    order: PlaceOrder,
) -> None:
    m = market()
    m.sell("good", 5, 100)

    [rejected] = m.apply(order)

    assert type(rejected) is OrderRejected
    assert rejected.code == Code.INVALID_COUNTERPARTIES.value
    assert m.asks() == [(100, 5)]


def test_counterparties_are_refused_in_a_call_phase() -> None:
    m = market()
    m.set_phase("pre_open")

    [rejected] = m.apply(
        PlaceOrder("c", CPU, "buy", 5, price=105, tif="IOC", counterparties=("good",))
    )

    assert type(rejected) is OrderRejected
    assert rejected.code == Code.INVALID_COUNTERPARTIES.value
