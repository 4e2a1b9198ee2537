"""Accounts: opening, deposits, withdrawals and delivery capacity."""

from harness import (
    CPU,
    GPU,
    Balance,
    Market,
    accepted,
    command_rejected,
    rejected,
)

from matching import (
    AccountOpened,
    CapacitySet,
    Code,
    Deposit,
    Deposited,
    OpenAccount,
    SetCapacity,
    Withdraw,
    Withdrawn,
)


def test_open_account_starts_empty_with_its_roles() -> None:
    m = Market()

    events = m.apply(OpenAccount("p1", ("provider",)))

    assert events == [AccountOpened("p1", ("provider",))]
    assert m.balance("p1") == Balance(available=0, held=0, escrow=0)


def test_deposit_credits_available_and_reports_the_new_balance() -> None:
    m = Market()
    m.open("u1", deposit=1_000)

    events = m.apply(Deposit("u1", 250))

    assert events == [Deposited("u1", 250, 1_250)]
    assert m.balance("u1") == Balance(available=1_250, held=0, escrow=0)


def test_withdraw_debits_available_and_reports_the_new_balance() -> None:
    m = Market()
    m.open("u1", deposit=1_000)

    events = m.apply(Withdraw("u1", 1_000))

    assert events == [Withdrawn("u1", 1_000, 0)]
    assert m.balance("u1") == Balance(available=0, held=0, escrow=0)


def test_withdraw_cannot_take_money_held_by_an_open_order() -> None:
    m = Market()
    m.open("u1", deposit=1_000)
    m.buy("u1", 5, 100)

    too_much = m.apply(Withdraw("u1", 501))
    all_free = m.apply(Withdraw("u1", 500))

    assert too_much == [command_rejected("withdraw", Code.INSUFFICIENT_FUNDS)]
    assert all_free == [Withdrawn("u1", 500, 0)]
    assert m.balance("u1") == Balance(available=0, held=500, escrow=0)


def test_provider_registers_capacity_per_instrument() -> None:
    m = Market()
    m.open("p1", roles=("provider",))

    events = m.apply(SetCapacity("p1", CPU, 10))
    refused = m.sell("p1", 1, 1000, symbol=GPU)

    assert events == [CapacitySet("p1", CPU, 10)]
    assert refused.events == [rejected("p1", Code.INSUFFICIENT_CAPACITY)]


def test_open_sells_never_exceed_the_registered_capacity() -> None:
    m = Market()
    m.open("p1", capacity=10)
    m.sell("p1", 6, 100)

    over = m.sell("p1", 5, 101)
    exact = m.sell("p1", 4, 101)

    assert over.events == [rejected("p1", Code.INSUFFICIENT_CAPACITY)]
    assert exact.events == [accepted(exact.id, "p1", "sell", 4, 101)]
    assert m.committed("p1") == 10


def test_sold_lots_count_against_capacity_until_their_escrow_is_released() -> None:
    m = Market()
    m.open("p1", capacity=10)
    m.open("u1", deposit=10_000)
    m.sell("p1", 10, 100)
    m.buy("u1", 4, 100)

    blocked = m.sell("p1", 1, 100)
    m.engine.ledger.release_escrow(1, 400)
    m.check()
    freed = m.sell("p1", 4, 100)

    assert blocked.events == [rejected("p1", Code.INSUFFICIENT_CAPACITY)]
    assert freed.events == [accepted(freed.id, "p1", "sell", 4, 100)]
    assert m.committed("p1") == 10


def test_capacity_lowered_below_commitments_stops_only_new_sells() -> None:
    m = Market()
    m.open("p1", capacity=10)
    a1 = m.sell("p1", 8, 100)

    lowered = m.apply(SetCapacity("p1", CPU, 5))
    blocked = m.sell("p1", 1, 100)
    m.cancel("p1", a1.id)
    allowed = m.sell("p1", 5, 100)

    assert lowered == [CapacitySet("p1", CPU, 5)]
    assert blocked.events == [rejected("p1", Code.INSUFFICIENT_CAPACITY)]
    assert allowed.events == [accepted(allowed.id, "p1", "sell", 5, 100)]
    assert m.asks() == [(100, 5)]


def test_consumer_cannot_register_capacity() -> None:
    m = Market()
    m.open("c1", roles=("consumer",))

    events = m.apply(SetCapacity("c1", CPU, 10))

    assert events == [command_rejected("set_capacity", Code.ROLE_NOT_ALLOWED)]
    assert m.sell("c1", 1, 100).events == [rejected("c1", Code.INSUFFICIENT_CAPACITY)]
