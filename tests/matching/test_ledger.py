"""The ledger: holds, fills into escrow, escrow release, conservation of money."""

import random

import pytest
from harness import GPU, Balance, Market, random_flow

from matching import InvariantViolation, Ledger, Release


def two_accounts() -> tuple[Ledger, int, int]:
    """A ledger with buyer ``u`` (10,000 µcr) and seller ``p`` (10 lots of GPU)."""
    ledger = Ledger()
    u = ledger.open("u", ("consumer",))
    p = ledger.open("p", ("provider",))
    ledger.deposit(u, 10_000)
    ledger.set_capacity(GPU, p, 10)
    return ledger, u, p


def filled(ledger: Ledger, u: int, p: int, *, seller_bps: int = 10) -> None:
    """Trade 1: ``u`` buys 2 lots at 1000 from ``p``, fee 5, out of a 2006 hold."""
    assert ledger.hold(u, 2_006)
    assert ledger.commit(GPU, p, 2)
    ledger.settle_fill(1, GPU, u, p, 1000, 2, 5, seller_bps, 2_006)


def balances(ledger: Ledger, account: int) -> Balance:
    return Balance(
        ledger.available[account], ledger.held[account], ledger.escrow[account]
    )


# -- holds ------------------------------------------------------------------------


def test_hold_moves_money_from_available_to_held() -> None:
    ledger, u, _ = two_accounts()

    ok = ledger.hold(u, 4_000)

    assert ok
    assert balances(ledger, u) == Balance(available=6_000, held=4_000, escrow=0)
    ledger.check()


def test_hold_of_more_than_available_fails_and_changes_nothing() -> None:
    ledger, u, _ = two_accounts()

    ok = ledger.hold(u, 10_001)

    assert not ok
    assert balances(ledger, u) == Balance(available=10_000, held=0, escrow=0)


def test_release_moves_held_money_back_to_available() -> None:
    ledger, u, _ = two_accounts()
    ledger.hold(u, 4_000)

    ledger.release(u, 1_500)

    assert balances(ledger, u) == Balance(available=7_500, held=2_500, escrow=0)


def test_withdraw_of_more_than_available_fails_and_changes_nothing() -> None:
    ledger, u, _ = two_accounts()
    ledger.hold(u, 4_000)

    ok = ledger.withdraw(u, 6_001)

    assert not ok
    assert balances(ledger, u) == Balance(available=6_000, held=4_000, escrow=0)
    assert ledger.withdrawals == 0


# -- fills ------------------------------------------------------------------------


def test_fill_moves_the_notional_into_escrow_and_the_fee_to_income() -> None:
    ledger, u, p = two_accounts()

    filled(ledger, u, p)

    # The hold of 2006 pays 2000 + fee 5; the 1 left goes back to available.
    assert balances(ledger, u) == Balance(available=7_995, held=0, escrow=2_000)
    assert balances(ledger, p) == Balance(available=0, held=0, escrow=0)
    assert ledger.fee_income == 5
    ledger.check()


def test_fill_without_a_hold_pays_from_available() -> None:
    ledger, u, p = two_accounts()
    ledger.commit(GPU, p, 2)

    ledger.settle_fill(1, GPU, u, p, 1000, 2, 5, 10, 0)

    assert balances(ledger, u) == Balance(available=7_995, held=0, escrow=2_000)
    ledger.check()


# -- escrow release -----------------------------------------------------------------


def test_full_release_pays_the_seller_less_its_fee_rounded_up() -> None:
    ledger, u, p = two_accounts()
    filled(ledger, u, p)

    release = ledger.release_escrow(1, 2_000)

    assert release == Release(
        payout=2_000, seller_fee=2, seller_receives=1_998, refund=0
    )
    assert balances(ledger, p) == Balance(available=1_998, held=0, escrow=0)
    assert balances(ledger, u) == Balance(available=7_995, held=0, escrow=0)
    assert ledger.fee_income == 7
    ledger.check()


def test_partial_release_refunds_the_buyer_the_rest_of_the_escrow() -> None:
    # Seller fee 10 bps of 1333 = 1.333 → 2; refund = 2000 - 1333.
    ledger, u, p = two_accounts()
    filled(ledger, u, p)

    release = ledger.release_escrow(1, 1_333)

    assert release == Release(
        payout=1_333, seller_fee=2, seller_receives=1_331, refund=667
    )
    assert balances(ledger, p) == Balance(available=1_331, held=0, escrow=0)
    assert balances(ledger, u) == Balance(available=8_662, held=0, escrow=0)
    ledger.check()


def test_release_of_nothing_refunds_the_whole_escrow_and_charges_no_fee() -> None:
    ledger, u, p = two_accounts()
    filled(ledger, u, p)

    release = ledger.release_escrow(1, 0)

    assert release == Release(payout=0, seller_fee=0, seller_receives=0, refund=2_000)
    assert balances(ledger, u) == Balance(available=9_995, held=0, escrow=0)
    assert ledger.fee_income == 5


def test_release_charges_the_seller_its_own_fee_rate() -> None:
    # A selling taker at 25 bps: 1333 x 25 / 10,000 = 3.3325 → 4.
    ledger, u, p = two_accounts()
    filled(ledger, u, p, seller_bps=25)

    release = ledger.release_escrow(1, 1_333)

    assert release == Release(
        payout=1_333, seller_fee=4, seller_receives=1_329, refund=667
    )


def test_release_frees_the_sellers_capacity() -> None:
    ledger, u, p = two_accounts()
    filled(ledger, u, p)
    assert not ledger.commit(GPU, p, 9)

    ledger.release_escrow(1, 2_000)

    assert ledger.commit(GPU, p, 10)


def test_second_release_returns_none_and_changes_nothing() -> None:
    ledger, u, p = two_accounts()
    filled(ledger, u, p)
    ledger.release_escrow(1, 1_000)
    before = (balances(ledger, u), balances(ledger, p), ledger.fee_income)

    again = ledger.release_escrow(1, 1_000)

    assert again is None
    assert (balances(ledger, u), balances(ledger, p), ledger.fee_income) == before
    ledger.check()


@pytest.mark.parametrize(("trade_id", "payout"), [(1, 2_001), (1, -1), (2, 0)])
def test_release_with_a_bad_payout_or_trade_returns_none_and_changes_nothing(
    trade_id: int, payout: int
) -> None:
    ledger, u, p = two_accounts()
    filled(ledger, u, p)

    release = ledger.release_escrow(trade_id, payout)

    assert release is None
    assert balances(ledger, u) == Balance(available=7_995, held=0, escrow=2_000)
    assert balances(ledger, p) == Balance(available=0, held=0, escrow=0)
    assert 1 in ledger.escrows


def test_release_after_an_engine_trade_pays_the_maker_seller_at_the_maker_rate() -> (
    None
):
    m = Market()
    m.open("p1", capacity=10, symbol=GPU)
    m.open("u1", deposit=20_000)
    m.sell("p1", 10, 1000, symbol=GPU)
    m.buy("u1", 10, 1000, symbol=GPU)

    release = m.engine.ledger.release_escrow(1, 3_333)
    m.check()

    assert release == Release(
        payout=3_333, seller_fee=4, seller_receives=3_329, refund=6_667
    )
    assert m.balance("p1") == Balance(available=3_329, held=0, escrow=0)
    assert m.balance("u1") == Balance(available=16_642, held=0, escrow=0)
    assert m.fee_income == 25 + 4
    assert m.committed("p1", GPU) == 0


# -- conservation ---------------------------------------------------------------------


def test_check_finds_money_that_was_created() -> None:
    ledger, u, _ = two_accounts()
    ledger.available[u] += 1

    with pytest.raises(InvariantViolation, match="deposits - withdrawals"):
        ledger.check()


def test_check_finds_a_negative_balance_even_when_the_total_is_right() -> None:
    ledger, u, p = two_accounts()
    ledger.available[u] += 1
    ledger.available[p] -= 1

    with pytest.raises(InvariantViolation, match="p: available is negative"):
        ledger.check()


def test_check_finds_an_escrow_balance_without_its_entry() -> None:
    ledger, u, _ = two_accounts()
    ledger.available[u] -= 100
    ledger.escrow[u] += 100

    with pytest.raises(InvariantViolation, match="escrow"):
        ledger.check()


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_money_is_conserved_after_every_command_and_release_of_a_random_flow(
    seed: int,
) -> None:
    m = Market()

    # The harness checks the engine, and so the ledger, after every step.
    random_flow(m, random.Random(seed), 400, releases=True)

    ledger = m.engine.ledger
    assert ledger.total() == ledger.deposits - ledger.withdrawals
    assert m.engine.trade_seq > 0
