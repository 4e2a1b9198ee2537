"""Memory follows the open orders: churn leaves no unbounded leftovers."""

from harness import CPU, Market


def test_cancels_behind_a_long_lived_order_do_not_pile_up_in_its_queue() -> None:
    m = Market()
    m.open("a", deposit=10**12, capacity=10**6)
    m.open("b", deposit=10**12, capacity=10**6)
    m.sell("a", 1, 100)

    for _ in range(2_000):
        m.cancel("b", m.sell("b", 1, 100).id)
    level = m.engine.instruments[CPU].book._levels[1][100]

    assert len(level.orders) - level.head <= 2 * 64 + 2
    assert m.asks() == [(100, 1)]


def test_amends_that_lose_priority_do_not_pile_up_in_the_queue() -> None:
    m = Market()
    m.open("a", deposit=10**12, capacity=10**6)
    m.open("b", deposit=10**12, capacity=10**6)
    m.sell("a", 1, 100)
    order = m.sell("b", 1, 100)

    for qty in range(2, 2_002):
        m.amend("b", order.id, qty=qty)
    level = m.engine.instruments[CPU].book._levels[1][100]

    assert len(level.orders) - level.head <= 2 * 64 + 2
    assert m.asks() == [(100, 2_002)]


def test_timers_of_cancelled_gtd_orders_do_not_pile_up() -> None:
    m = Market()
    m.open("a", deposit=10**12)
    far = m.now + 10**18

    for _ in range(2_000):
        m.cancel("a", m.buy("a", 1, 100, tif="GTD", expire_at=far).id)

    assert len(m.engine._expiries) <= 2 * len(m.engine.orders) + 64 + 1
