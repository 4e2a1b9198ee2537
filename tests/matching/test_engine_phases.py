"""Trading phases: halted and closed instruments, and resuming trading."""

import msgspec
import pytest
from harness import (
    CPU,
    GPU,
    Balance,
    Market,
    accepted,
    cancelled,
    command_rejected,
    expired,
    trade,
)

from matching import (
    CancelReason,
    Code,
    Command,
    OrderAccepted,
    PhaseChanged,
    SetPhase,
)

SECOND = 1_000_000_000


def test_halt_keeps_the_book_as_it_is() -> None:
    m = Market()
    m.open("u1", deposit=10_000, capacity=10)
    m.buy("u1", 5, 100)
    m.sell("u1", 5, 101)

    events = m.set_phase("halted")

    assert events == [PhaseChanged(CPU, "continuous", "halted")]
    assert m.bids() == [(100, 5)]
    assert m.asks() == [(101, 5)]


def test_cancel_is_accepted_while_halted() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100)
    m.set_phase("halted")

    events = m.cancel("u1", b1.id)

    assert events == [
        cancelled(b1.id, "u1", "buy", 100, filled=0, reason=CancelReason.USER)
    ]
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_resumed_instrument_matches_again_against_the_kept_book() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 5, 100)
    m.set_phase("halted")

    resumed = m.set_phase("continuous")
    s1 = m.sell("u2", 5, 100)

    assert resumed == [PhaseChanged(CPU, "halted", "continuous")]
    assert s1.events == [
        accepted(s1.id, "u2", "sell", 5, 100),
        trade(
            1,
            price=100,
            qty=5,
            taker_side="sell",
            maker=(b1.id, "u1", 0),
            taker=(s1.id, "u2", 0),
        ),
    ]


def test_closing_cancels_every_open_order_best_first_and_releases_its_holds() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.open("u2", capacity=10)
    b1 = m.buy("u1", 2, 99)
    b2 = m.buy("u1", 3, 100)
    a1 = m.sell("u2", 4, 101)

    events = m.set_phase("closed")

    closed = CancelReason.CLOSED
    assert events == [
        PhaseChanged(CPU, "continuous", "closed"),
        cancelled(b2.id, "u1", "buy", 100, filled=0, reason=closed),
        cancelled(b1.id, "u1", "buy", 99, filled=0, reason=closed),
        cancelled(a1.id, "u2", "sell", 101, filled=0, reason=closed),
    ]
    assert m.bids() == []
    assert m.asks() == []
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)
    assert m.committed("u2") == 0


def test_closing_one_instrument_leaves_the_others_trading() -> None:
    m = Market()
    m.open("u1", deposit=100_000)
    m.buy("u1", 5, 1000, symbol=GPU)

    m.set_phase("closed", symbol=CPU)
    b2 = m.buy("u1", 1, 1000, symbol=GPU)

    assert b2.events == [accepted(b2.id, "u1", "buy", 1, 1000, symbol=GPU)]
    assert m.bids(GPU) == [(1000, 6)]


def test_gtd_order_expires_while_its_instrument_is_halted() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    expiry = m.now + SECOND
    g1 = m.buy("u1", 5, 100, tif="GTD", expire_at=expiry)
    m.set_phase("halted")

    events = m.tick(at=expiry)

    assert events == [expired(g1.id, "u1", "buy", 100)]
    assert m.balance("u1") == Balance(available=10_000, held=0, escrow=0)


def test_journal_decoder_refuses_a_phase_the_core_does_not_know() -> None:
    raw = b'{"op":"set_phase","symbol":"cpu-SPOT","phase":"auction"}'

    with pytest.raises(msgspec.ValidationError, match="phase"):
        msgspec.json.decode(raw, type=Command)


def test_phase_the_core_does_not_know_is_rejected_and_changes_nothing() -> None:
    m = Market()
    m.open("u1", deposit=10_000)

    events = m.apply(SetPhase(CPU, "auction"))  # type: ignore[arg-type]

    assert events == [command_rejected("set_phase", Code.INVALID_PHASE)]
    assert m.engine.instruments[CPU].phase == "continuous"
    assert isinstance(m.buy("u1", 5, 100).events[0], OrderAccepted)
