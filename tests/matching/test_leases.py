"""Leases: every spot trade is a lease, metered with RecordUsage and settled once."""

import random

import pytest
from futures_harness import START, W10, consumer, futures_market, provider
from harness import CPU, GPU, STEP, Balance, Market, command_rejected, random_flow

from matching import (
    Code,
    EndLease,
    Engine,
    EscrowReleased,
    LeaseEnded,
    RecordUsage,
    ReleaseEscrow,
    SetPhase,
    Tick,
    UsageRecorded,
)

SECOND = 10**9
GFLOP = 10**9
LEASE = 300 * SECOND
"""The default spot lease: 300 s from the trade."""


def leased(lots: int = 5, price: int = 100) -> Market:
    """p sold c ``lots`` lots of CPU (100 CU a lot, no fees) at ``price``."""
    m = Market()
    m.open("p", capacity=50, roles=("provider",))
    m.open("c", deposit=100_000, roles=("consumer",))
    m.sell("p", lots, price)
    m.buy("c", lots, price)
    return m


def test_a_spot_trade_is_a_lease_named_by_its_trade_id_until_it_expires() -> None:
    m = leased()
    traded_at = m.now

    before = m.tick(at=traded_at + LEASE - 1)
    after = m.tick(at=traded_at + LEASE)

    assert before == []
    assert after == [
        LeaseEnded(1, CPU, "expired"),
        EscrowReleased(1, CPU, "c", "p", 0, 0, 500),
    ]
    assert m.balance("c") == Balance(available=100_000, held=0, escrow=0)
    assert m.committed("p") == 0


def test_usage_pays_price_times_cu_used_over_lot_cu_rounded_down() -> None:
    m = leased(lots=5, price=100)

    recorded = m.apply(RecordUsage(CPU, 1, 123_456_789_012))
    ended = m.apply(EndLease(CPU, 1, "used_up"))

    # 123.456789012 CU of 500 CU at 100 µcr per 100-CU lot: 123.45… µcr.
    assert recorded == [
        UsageRecorded(CPU, 1, 123_456_789_012, 123_456_789_012, 500 * GFLOP)
    ]
    assert ended == [
        LeaseEnded(1, CPU, "used_up"),
        EscrowReleased(1, CPU, "c", "p", 123, 0, 377),
    ]
    assert m.balance("p").available == 123
    assert m.balance("c") == Balance(available=100_000 - 123, held=0, escrow=0)


def test_flops_become_money_once_at_the_end_with_one_rounding() -> None:
    m = leased(lots=1, price=7)

    # Three reports of 0.6 CU: paid per report they would round to 0 each.
    for _ in range(3):
        m.apply(RecordUsage(CPU, 1, 600_000_000))
    events = m.apply(EndLease(CPU, 1, "used_up"))

    # 1.8 CU of a 100-CU lot at 7 µcr: 0.126 µcr, rounded down to 0. A hundred
    # reports of 0.6 CU, 60 CU, pay 4.2, rounded down to 4 — not 100 x 0.
    assert events[-1] == EscrowReleased(1, CPU, "c", "p", 0, 0, 7)
    m2 = leased(lots=1, price=7)
    for _ in range(100):
        m2.apply(RecordUsage(CPU, 1, 600_000_000))
    assert m2.apply(EndLease(CPU, 1, "used_up"))[-1] == EscrowReleased(
        1, CPU, "c", "p", 4, 0, 3
    )


def test_usage_reaching_what_the_lots_cover_ends_the_lease_used_up() -> None:
    m = leased(lots=2, price=100)

    m.apply(RecordUsage(CPU, 1, 150 * GFLOP))
    events = m.apply(RecordUsage(CPU, 1, 50 * GFLOP))

    assert events == [
        UsageRecorded(CPU, 1, 50 * GFLOP, 200 * GFLOP, 200 * GFLOP),
        LeaseEnded(1, CPU, "used_up"),
        EscrowReleased(1, CPU, "c", "p", 200, 0, 0),
    ]


def test_usage_beyond_the_lease_is_refused_and_changes_nothing() -> None:
    m = leased(lots=2)
    m.apply(RecordUsage(CPU, 1, 150 * GFLOP))
    before = m.state_hash()

    events = m.apply(RecordUsage(CPU, 1, 50 * GFLOP + 1))

    assert events == [command_rejected("record_usage", Code.LEASE_EXHAUSTED)]
    assert m.state_hash() != before  # only seq and clock moved
    assert m.engine.usage == {(CPU, 1): 150 * GFLOP}


@pytest.mark.parametrize("state", ["failed", "cancelled"])
def test_a_failed_or_cancelled_lease_pays_only_the_usage_recorded(state: str) -> None:
    m = leased(lots=5, price=100)
    m.apply(RecordUsage(CPU, 1, 100 * GFLOP))

    events = m.apply(EndLease(CPU, 1, state))  # type: ignore[arg-type]

    assert events == [
        LeaseEnded(1, CPU, state),
        EscrowReleased(1, CPU, "c", "p", 100, 0, 400),
    ]


def test_an_ended_lease_can_never_be_settled_again() -> None:
    m = leased()
    m.apply(EndLease(CPU, 1, "cancelled"))

    assert m.apply(EndLease(CPU, 1, "used_up")) == [
        command_rejected("end_lease", Code.UNKNOWN_LEASE)
    ]
    assert m.apply(RecordUsage(CPU, 1, GFLOP)) == [
        command_rejected("record_usage", Code.UNKNOWN_LEASE)
    ]
    assert m.apply(ReleaseEscrow(1, 10)) == [
        command_rejected("release_escrow", Code.UNKNOWN_ESCROW)
    ]
    # Nor does its expiry settle it a second time.
    assert m.tick(at=m.now + LEASE) == []


def test_release_escrow_ends_the_lease_used_up_with_the_payout_given() -> None:
    m = leased()
    m.apply(RecordUsage(CPU, 1, GFLOP))

    events = m.apply(ReleaseEscrow(1, 250))

    assert events == [
        LeaseEnded(1, CPU, "used_up"),
        EscrowReleased(1, CPU, "c", "p", 250, 0, 250),
    ]
    assert m.engine.usage == {}


@pytest.mark.parametrize(
    ("command", "code"),
    [
        pytest.param(
            RecordUsage(CPU, 2, GFLOP), Code.UNKNOWN_LEASE, id="no such lease"
        ),
        pytest.param(RecordUsage(GPU, 1, GFLOP), Code.UNKNOWN_LEASE, id="other symbol"),
        pytest.param(RecordUsage("x", 1, GFLOP), Code.UNKNOWN_LEASE, id="no symbol"),
        pytest.param(RecordUsage(CPU, 1, 0), Code.INVALID_AMOUNT, id="no flops"),
        pytest.param(RecordUsage(CPU, 1, -5), Code.INVALID_AMOUNT, id="negative"),
        pytest.param(RecordUsage(CPU, 1, 1.5), Code.INVALID_AMOUNT, id="float"),  # type: ignore[arg-type]
        pytest.param(RecordUsage(CPU, 1, True), Code.INVALID_AMOUNT, id="bool"),
        pytest.param(RecordUsage(CPU, "1", GFLOP), Code.UNKNOWN_LEASE, id="str id"),  # type: ignore[arg-type]
        pytest.param(EndLease(CPU, 1, "done"), Code.INVALID_LEASE_END, id="bad end"),  # type: ignore[arg-type]
        pytest.param(EndLease(CPU, 1, "expired"), Code.INVALID_LEASE_END, id="expired"),  # type: ignore[arg-type]
        pytest.param(EndLease(CPU, 9, "failed"), Code.UNKNOWN_LEASE, id="end unknown"),
    ],
)
def test_bad_lease_commands_are_rejected_and_change_nothing(
    command: RecordUsage | EndLease, code: Code
) -> None:
    m = leased()
    twin = leased()
    twin.tick()

    events = m.apply(command)

    assert events == [command_rejected(str(type(command).__struct_config__.tag), code)]
    assert m.state_hash() == twin.state_hash()


def test_ending_a_lease_frees_the_providers_capacity_at_once() -> None:
    m = leased(lots=5)
    assert m.committed("p") == 5

    m.apply(EndLease(CPU, 1, "cancelled"))

    assert m.committed("p") == 0


def test_leases_expire_in_order_each_at_its_own_time() -> None:
    m = Market()
    m.open("p", capacity=50, roles=("provider",))
    m.open("c", deposit=100_000, roles=("consumer",))
    times = []
    for _ in range(3):
        m.sell("p", 1, 100)
        m.buy("c", 1, 100)
        times.append(m.now)
    m.apply(EndLease(CPU, 2, "cancelled"))

    first = m.tick(at=times[0] + LEASE)
    rest = m.tick(at=times[2] + LEASE)

    assert first == [
        LeaseEnded(1, CPU, "expired"),
        EscrowReleased(1, CPU, "c", "p", 0, 0, 100),
    ]
    assert rest == [
        LeaseEnded(3, CPU, "expired"),
        EscrowReleased(3, CPU, "c", "p", 0, 0, 100),
    ]


def test_a_futures_lease_records_usage_but_is_firm() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    consumer(m, "c", 10_000)
    m.sell("p", 2, 100, symbol=W10)
    m.buy("c", 2, 100, symbol=W10)
    m.tick(at=START)
    lease_id = next(iter(m.engine.leases))

    recorded = m.apply(RecordUsage(W10, lease_id, 10 * GFLOP))
    ended = m.apply(EndLease(W10, lease_id, "failed"))

    assert recorded == [
        UsageRecorded(W10, lease_id, 10 * GFLOP, 10 * GFLOP, 200 * GFLOP)
    ]
    assert ended == [command_rejected("end_lease", Code.LEASE_FIRM)]
    assert m.apply(RecordUsage(W10, lease_id, 191 * GFLOP)) == [
        command_rejected("record_usage", Code.LEASE_EXHAUSTED)
    ]


@pytest.mark.parametrize("seed", range(6))
def test_random_flows_with_usage_and_lease_ends_replay_and_restore_exactly(
    seed: int,
) -> None:
    rng = random.Random(seed)
    m = Market()
    random_flow(m, rng, 150)
    for _ in range(120):
        live = sorted(m.engine.ledger.escrows.values(), key=lambda e: e.trade_id)
        roll = rng.random()
        if live and roll < 0.5:
            entry = rng.choice(live)
            top = entry.lots * m.engine.instruments[entry.symbol].spec.lot_cu * GFLOP
            m.apply(RecordUsage(entry.symbol, entry.trade_id, rng.randint(1, top)))
        elif live and roll < 0.65:
            entry = rng.choice(live)
            end = rng.choice(("used_up", "failed", "cancelled"))
            m.apply(EndLease(entry.symbol, entry.trade_id, end))  # type: ignore[arg-type]
        else:
            random_flow(m, rng, 3)
        if rng.random() < 0.05:
            m.tick(at=m.now + rng.randint(1, 400) * SECOND)
    middle = m.engine.snapshot()
    middle_seq = m.engine.seq
    m.tick(at=m.now + LEASE + STEP)

    assert not m.engine.usage or all(
        (s, i) in {(e.symbol, e.trade_id) for e in m.engine.ledger.escrows.values()}
        for s, i in m.engine.usage
    )
    assert m.replay().state_hash() == m.state_hash()
    restored = Engine.restore(m.config, middle)
    for seq, ts, command in m.journal[middle_seq:]:
        restored.apply(seq, ts, command)
    assert restored.state_hash() == m.state_hash()
    assert m.apply(Tick()) is not None


def test_usage_on_a_futures_lease_goes_with_the_lease_at_the_window_end() -> None:
    m = futures_market(("cpu", START, 1))
    provider(m, "p", {W10: 5})
    consumer(m, "c", 10_000)
    m.sell("p", 2, 100, symbol=W10)
    m.buy("c", 2, 100, symbol=W10)
    m.tick(at=START)
    lease_id = next(iter(m.engine.leases))
    m.apply(RecordUsage(W10, lease_id, GFLOP))

    m.tick(at=START + 3600 * SECOND)  # the harness runs the self-check too

    assert m.engine.usage == {}
    assert m.engine.leases == {}


def test_a_batch_auctions_leases_run_from_its_slot_even_when_a_late_tick_fires_it() -> (
    None
):
    m = Market()
    m.open("p", capacity=50, roles=("provider",))
    m.open("c", deposit=100_000, roles=("consumer",))
    m.apply(SetPhase(CPU, "batch", 1_000))
    slot = m.now + SECOND
    m.sell("p", 1, 100)
    m.buy("c", 1, 100)

    m.tick(at=slot + 30 * SECOND)  # the auction of `slot` runs only now

    assert m.engine.ledger.escrows[1].ends_at == slot + LEASE
    assert m.tick(at=slot + LEASE) == [
        LeaseEnded(1, CPU, "expired"),
        EscrowReleased(1, CPU, "c", "p", 0, 0, 100),
    ]
