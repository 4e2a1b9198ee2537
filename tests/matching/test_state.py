"""Determinism, snapshot and restore, the sequencer contract and self-checks."""

import random

import msgspec
import pytest
from harness import CONFIG, STEP, Market, expired, random_flow

from matching import (
    Engine,
    EngineState,
    InvariantViolation,
    OpenAccount,
    SequenceError,
    Tick,
)


def busy(seed: int, n: int = 300) -> Market:
    m = Market()
    random_flow(m, random.Random(seed), n)
    return m


def test_replaying_a_journal_gives_the_same_events_and_state_hash() -> None:
    live = busy(7)

    replayed = live.replay()

    assert replayed.state_hash() == live.state_hash()
    twin = Engine(CONFIG)
    events = [e for seq, ts, c in live.journal for e in twin.apply(seq, ts, c)]
    assert events == live.events


def test_different_histories_give_different_state_hashes() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    twin = m.replay()

    m.buy("u1", 1, 100)
    twin.tick()

    assert m.state_hash() != twin.state_hash()


def test_snapshot_survives_encoding_and_restores_to_the_same_state_hash() -> None:
    m = busy(8)

    for codec in (msgspec.json, msgspec.msgpack):
        raw = codec.encode(m.engine.snapshot())
        restored = Engine.restore(CONFIG, codec.decode(raw, type=EngineState))
        restored.check()

        assert restored.state_hash() == m.state_hash()


def test_restored_engine_carries_on_exactly_like_the_original() -> None:
    m = busy(9)
    snapshot = msgspec.msgpack.encode(m.engine.snapshot())
    restored = Engine.restore(
        CONFIG, msgspec.msgpack.decode(snapshot, type=EngineState)
    )
    done = len(m.journal)
    seen = len(m.events)

    random_flow(m, random.Random(10), 300)
    events = [e for seq, ts, c in m.journal[done:] for e in restored.apply(seq, ts, c)]

    assert events == m.events[seen:]
    assert restored.state_hash() == m.state_hash()


def test_gtd_order_in_a_snapshot_still_expires_after_restore() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    expiry = m.now + 10 * STEP
    g1 = m.buy("u1", 5, 100, tif="GTD", expire_at=expiry)
    restored = Engine.restore(CONFIG, m.engine.snapshot())

    events = restored.apply(m.engine.seq + 1, expiry, Tick())

    assert events == [expired(g1.id, "u1", "buy", 100)]
    restored.check()


def test_command_with_a_sequence_gap_is_refused_and_changes_nothing() -> None:
    m = busy(11, 50)
    before = m.state_hash()

    with pytest.raises(SequenceError):
        m.engine.apply(m.engine.seq + 2, m.now + STEP, Tick())
    with pytest.raises(SequenceError):
        m.engine.apply(m.engine.seq, m.now + STEP, Tick())

    assert m.state_hash() == before


def test_command_stamped_earlier_than_the_last_is_refused_and_changes_nothing() -> None:
    m = busy(12, 50)
    before = m.state_hash()

    with pytest.raises(SequenceError):
        m.engine.apply(m.engine.seq + 1, m.now - 1, Tick())

    assert m.state_hash() == before


def test_commands_may_share_a_timestamp() -> None:
    m = Market()
    m.tick()

    events = m.apply(OpenAccount("u1"), at=m.now)

    assert len(events) == 1
    assert m.engine.seq == 2


def test_check_finds_a_held_balance_that_no_open_order_explains() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    m.buy("u1", 5, 100)
    ledger = m.engine.ledger
    ledger.available[0] -= 1
    ledger.held[0] += 1

    with pytest.raises(InvariantViolation, match="held"):
        m.engine.check()


def test_check_finds_an_open_order_that_is_not_on_the_book() -> None:
    m = Market()
    m.open("u1", deposit=10_000)
    b1 = m.buy("u1", 5, 100)
    ghost = m.engine.orders[b1.id].copy()
    ghost.order_id = b1.id + 100
    m.engine.orders[ghost.order_id] = ghost

    with pytest.raises(InvariantViolation):
        m.engine.check()
