"""Releasing a trade's escrow: a journaled command that pays the seller exactly."""

import random

import pytest
from harness import GPU, Balance, Market, command_rejected, random_flow

from matching import Code, EscrowReleased, LeaseEnded, ReleaseEscrow


def traded() -> Market:
    """p sold c 2 lots at 1,000 µcr on GPU (fees: 25 bps taker, 10 bps maker)."""
    m = Market()
    m.open("p", capacity=5, symbol=GPU, roles=("provider",))
    m.open("c", deposit=10_000, roles=("consumer",))
    m.sell("p", 2, 1_000, symbol=GPU)
    m.buy("c", 2, 1_000, symbol=GPU)
    return m


def test_release_pays_the_seller_less_its_fee_and_refunds_the_buyer() -> None:
    m = traded()
    escrow = m.engine.ledger.escrows[1]
    assert escrow.amount == 2_000
    fee_before = m.engine.ledger.fee_income

    events = m.apply(ReleaseEscrow(1, 1_501))

    # The seller was the maker: 10 bps of 1,501 is 1.501, rounded up to 2.
    assert events == [
        LeaseEnded(1, GPU, "used_up"),
        EscrowReleased(1, GPU, "c", "p", 1_501, 2, 499),
    ]
    assert m.balance("p") == Balance(available=1_499, held=0, escrow=0)
    # c paid 2,000 and its taker fee (25 bps: 5) and got 499 back.
    assert m.balance("c") == Balance(available=10_000 - 2_005 + 499, held=0, escrow=0)
    assert m.engine.ledger.fee_income == fee_before + 2


def test_release_gives_the_sellers_capacity_back() -> None:
    m = traded()
    refused = m.sell("p", 4, 1_000, symbol=GPU).events
    assert refused[-1].code == Code.INSUFFICIENT_CAPACITY  # type: ignore[union-attr]

    m.apply(ReleaseEscrow(1, 0))

    m.sell("p", 5, 1_000, symbol=GPU)
    assert m.asks(GPU) == [(1_000, 5)]


def test_escrow_is_released_once() -> None:
    m = traded()
    m.apply(ReleaseEscrow(1, 2_000))
    balances = (m.balance("p"), m.balance("c"))

    events = m.apply(ReleaseEscrow(1, 2_000))

    assert events == [command_rejected("release_escrow", Code.UNKNOWN_ESCROW)]
    assert (m.balance("p"), m.balance("c")) == balances


@pytest.mark.parametrize("payout", [-1, 2_001, 1.5, None])
def test_payout_outside_the_escrow_is_rejected_and_changes_nothing(
    payout: object,
) -> None:
    m = traded()
    twin = traded()

    events = m.apply(ReleaseEscrow(1, payout))  # type: ignore[arg-type]
    twin.tick()

    assert events == [command_rejected("release_escrow", Code.INVALID_AMOUNT)]
    assert m.state_hash() == twin.state_hash()


def test_unknown_trade_has_no_escrow() -> None:
    m = traded()

    events = m.apply(ReleaseEscrow(99, 0))

    assert events == [command_rejected("release_escrow", Code.UNKNOWN_ESCROW)]


def test_flow_with_releases_replays_to_the_same_state() -> None:
    m = Market()
    random_flow(m, random.Random(5), 400, releases=True)

    assert any(isinstance(e, EscrowReleased) for e in m.events)
    assert m.replay().state_hash() == m.state_hash()
