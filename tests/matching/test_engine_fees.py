"""Fees at the fill: rounded up per fill, by role, paid by the buyer from its hold.

The gpu instrument charges 25 bps to the taker and 10 bps to the maker; its tick
is 10 µcr. A buy holds, per lot, its limit price plus the fee of a one-lot fill
at that price at the higher rate: 1000 + ceil(1000 x 25 / 10,000) = 1003.
"""

from harness import GPU, Balance, Market, rejected, trade

from matching import Code


def test_buy_holds_its_price_plus_the_fee_of_a_one_lot_fill_per_lot() -> None:
    m = Market()
    m.open("u1", deposit=20_000)

    m.buy("u1", 10, 1000, symbol=GPU)

    assert m.balance("u1") == Balance(available=9_970, held=10_030, escrow=0)


def test_buy_whose_price_plus_fee_exceeds_the_funds_is_rejected() -> None:
    m = Market()
    m.open("u1", deposit=10_029)

    b1 = m.buy("u1", 10, 1000, symbol=GPU)

    assert b1.events == [rejected("u1", Code.INSUFFICIENT_FUNDS)]
    assert m.balance("u1") == Balance(available=10_029, held=0, escrow=0)


def test_taker_buyer_pays_the_taker_fee_rounded_up_on_each_fill() -> None:
    # 3 lots: 3000 x 25 bps = 7.5 → 8; 7 lots: 7000 x 25 bps = 17.5 → 18.
    m = Market()
    m.open("p1", capacity=10, symbol=GPU)
    m.open("p2", capacity=10, symbol=GPU)
    m.open("u1", deposit=20_000)
    a1 = m.sell("p1", 3, 1000, symbol=GPU)
    a2 = m.sell("p2", 7, 1000, symbol=GPU)

    b1 = m.buy("u1", 10, 1000, symbol=GPU)

    assert b1.events[1:] == [
        trade(
            1,
            price=1000,
            qty=3,
            taker_side="buy",
            maker=(a1.id, "p1", 0),
            taker=(b1.id, "u1", 7),
            buyer_fee=8,
            symbol=GPU,
        ),
        trade(
            2,
            price=1000,
            qty=7,
            taker_side="buy",
            maker=(a2.id, "p2", 0),
            taker=(b1.id, "u1", 0),
            buyer_fee=18,
            symbol=GPU,
        ),
    ]
    assert m.fee_income == 26
    assert m.balance("u1") == Balance(available=9_974, held=0, escrow=10_000)


def test_maker_buyer_pays_the_maker_fee() -> None:
    m = Market()
    m.open("u1", deposit=20_000)
    m.open("p1", capacity=10, symbol=GPU)
    b1 = m.buy("u1", 10, 1000, symbol=GPU)

    s1 = m.sell("p1", 10, 1000, symbol=GPU)

    assert s1.events[1:] == [
        trade(
            1,
            price=1000,
            qty=10,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(s1.id, "p1", 0),
            buyer_fee=10,
            symbol=GPU,
        ),
    ]
    assert m.fee_income == 10
    assert m.balance("u1") == Balance(available=9_990, held=0, escrow=10_000)


def test_seller_pays_nothing_at_the_fill() -> None:
    m = Market()
    m.open("u1", deposit=20_000)
    m.open("p1", capacity=10, symbol=GPU)
    m.buy("u1", 10, 1000, symbol=GPU)

    m.sell("p1", 10, 1000, symbol=GPU)

    assert m.balance("p1") == Balance(available=0, held=0, escrow=0)


def test_a_fee_below_one_micro_credit_rounds_up_to_one() -> None:
    # 1 lot at 10 µcr: 10 x 25 / 10,000 = 0.025 → 1.
    m = Market()
    m.open("p1", capacity=10, symbol=GPU)
    m.open("u1", deposit=1_000)
    a1 = m.sell("p1", 1, 10, symbol=GPU)

    b1 = m.buy("u1", 1, 10, symbol=GPU)

    assert b1.events[1:] == [
        trade(
            1,
            price=10,
            qty=1,
            taker_side="buy",
            maker=(a1.id, "p1", 0),
            taker=(b1.id, "u1", 0),
            buyer_fee=1,
            symbol=GPU,
        ),
    ]
    assert m.balance("u1") == Balance(available=989, held=0, escrow=10)


def test_buyer_filled_at_a_better_price_gets_the_unused_hold_back() -> None:
    # Hold per lot at 1100: 1100 + ceil(2.75) = 1103; the fill costs 2000 + 5.
    m = Market()
    m.open("p1", capacity=10, symbol=GPU)
    m.open("u1", deposit=10_000)
    m.sell("p1", 2, 1000, symbol=GPU)

    m.buy("u1", 2, 1100, symbol=GPU)

    assert m.balance("u1") == Balance(available=7_995, held=0, escrow=2_000)
    assert m.fee_income == 5


def test_partly_filled_buy_keeps_exactly_the_hold_of_its_open_lots() -> None:
    m = Market()
    m.open("u1", deposit=20_000)
    m.open("p1", capacity=10, symbol=GPU)
    m.buy("u1", 10, 1000, symbol=GPU)

    m.sell("p1", 4, 1000, symbol=GPU)

    # 6 open lots x 1003 held; 4 lots cost 4000 + maker fee 4.
    assert m.balance("u1") == Balance(available=9_978, held=6_018, escrow=4_000)
