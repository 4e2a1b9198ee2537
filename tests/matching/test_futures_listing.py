"""Listing futures: hourly windows as the clock advances, and any window by command.

The test day is 2 March 2026; a window's gate is 5 minutes before its start and
its closing call 1 minute before the gate (see `futures_harness`).
"""

import pytest
from futures_harness import (
    AUTO_CONFIG,
    CALL,
    CONFIG,
    GATE,
    HOUR,
    OPEN_AT,
    START,
    W10,
    at,
    futures_market,
    listed,
)
from harness import Market, accepted, command_rejected

from matching import (
    Code,
    DeliveryStarted,
    FutureListed,
    IndicativePrice,
    ListFuture,
    PhaseChanged,
)


def hourly(day: int, hours: range) -> list[FutureListed]:
    """The auto-listed gpu windows of ``day`` March 2026 starting at ``hours``."""
    return [
        listed(f"gpu-202603{day:02d}T{h:02d}", "gpu", at(h, day=day)) for h in hours
    ]


def futures_of(m: Market) -> list[str]:
    return [s for s, inst in m.engine.instruments.items() if inst.window is not None]


# -- listing as the clock advances --------------------------------------------------


def test_first_command_lists_every_hourly_window_starting_in_the_next_24_hours() -> (
    None
):
    m = Market(AUTO_CONFIG)

    events = m.tick(at=at(8))

    assert events == hourly(2, range(9, 24)) + hourly(3, range(9))
    assert len(events) == 24
    assert events[-1] == FutureListed(
        symbol="gpu-20260303T08",
        resource_class="gpu",
        start=at(8, day=3),
        end=at(9, day=3),
        closing_call_at=at(7, 54, day=3),
        gate_at=at(7, 55, day=3),
    )
    assert {m.engine.instruments[s].phase for s in futures_of(m)} == {"continuous"}


def test_window_whose_gate_has_passed_is_not_listed() -> None:
    m = Market(AUTO_CONFIG)

    # 08:55 is the gate of the 09:00 window: trading in it could not start.
    events = m.tick(at=at(8, 55))

    assert events == hourly(2, range(10, 24)) + hourly(3, range(9))
    assert "gpu-20260302T09" not in m.engine.instruments


def test_window_whose_gate_is_still_ahead_is_listed() -> None:
    m = Market(AUTO_CONFIG)

    events = m.tick(at=at(8, 54, 59))

    assert events[0] == listed("gpu-20260302T09", "gpu", at(9))
    assert m.engine.instruments["gpu-20260302T09"].phase == "closing"


def test_nothing_new_is_listed_until_the_clock_passes_the_hour() -> None:
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))

    events = m.tick(at=at(8, 30))

    assert events == []
    assert len(futures_of(m)) == 24


def test_clock_passing_the_hour_lists_the_window_24_hours_ahead() -> None:
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))
    m.tick(at=at(8, 56))  # the 09:00 window's closing call and gate

    events = m.tick(at=at(9))

    # The 09:00 window's delivery (nothing to deliver) comes first, then the
    # listing timer of the same time.
    assert events == [
        DeliveryStarted("gpu-20260302T09", 0),
        listed("gpu-20260303T09", "gpu", at(9, day=3)),
    ]
    assert futures_of(m)[-1] == "gpu-20260303T09"


def test_clock_jumping_several_hours_lists_every_window_now_due() -> None:
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))

    events = m.tick(at=at(11, 30))

    new = [e for e in events if isinstance(e, FutureListed)]
    assert new == hourly(3, range(9, 12))


def test_class_with_list_ahead_zero_lists_no_window_by_itself() -> None:
    m = Market(CONFIG)

    events = m.tick(at=OPEN_AT)
    later = m.tick(at=OPEN_AT + 30 * HOUR)

    assert events == []
    assert later == []
    assert futures_of(m) == []


def test_listed_window_is_not_listed_again_when_its_hour_comes_due() -> None:
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))
    m.apply(ListFuture("gpu", at(9, day=3)))
    m.tick(at=at(8, 56))

    events = m.tick(at=at(9))

    assert events == [DeliveryStarted("gpu-20260302T09", 0)]
    assert futures_of(m).count("gpu-20260303T09") == 1


# -- listing by command -------------------------------------------------------------


def test_list_future_lists_a_one_hour_window_under_the_plain_symbol() -> None:
    m = futures_market()

    events = m.apply(ListFuture("cpu", START))

    assert events == [listed(W10, "cpu", START)]
    inst = m.engine.instruments[W10]
    assert inst.phase == "continuous"
    assert (inst.spec.kind, inst.spec.start, inst.spec.end) == (
        "future",
        START,
        at(11),
    )


def test_list_future_lists_a_block_of_hours_with_an_hours_suffix() -> None:
    m = futures_market()

    events = m.apply(ListFuture("cpu", START, 4))

    assert events == [listed("cpu-20260302T10-4H", "cpu", START, 4)]
    assert m.engine.instruments["cpu-20260302T10-4H"].spec.end == at(14)


def test_list_future_lists_a_whole_day_block() -> None:
    m = futures_market()

    events = m.apply(ListFuture("cpu", at(0, day=3), 24))

    assert events == [listed("cpu-20260303T00-24H", "cpu", at(0, day=3), 24)]


def test_block_and_hourly_window_of_the_same_start_are_two_instruments() -> None:
    m = futures_market(("cpu", START, 4))

    events = m.apply(ListFuture("cpu", START))

    assert events == [listed(W10, "cpu", START)]
    assert futures_of(m) == ["cpu-20260302T10-4H", W10]


def test_list_future_adds_a_block_beside_auto_listed_hours() -> None:
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))

    events = m.apply(ListFuture("gpu", at(12), 2))

    assert events == [listed("gpu-20260302T12-2H", "gpu", at(12), 2)]


def test_listed_future_accepts_orders_at_once() -> None:
    m = futures_market(("cpu", START, 1))
    m.open("c", deposit=1_000)

    placed = m.buy("c", 2, 100, symbol=W10)

    assert placed.events == [accepted(placed.id, "c", "buy", 2, 100, symbol=W10)]
    assert m.bids(W10) == [(100, 2)]


def test_window_listed_inside_its_closing_call_starts_in_the_call_phase() -> None:
    m = futures_market()
    m.tick(at=CALL + 30 * 1_000_000_000)

    events = m.apply(ListFuture("cpu", START))

    assert events == [
        listed(W10, "cpu", START),
        IndicativePrice(W10, None, 0, 0, None, None),
    ]
    assert m.engine.instruments[W10].phase == "closing"


def test_window_listed_before_its_closing_call_enters_it_on_time() -> None:
    m = futures_market(("cpu", START, 1))

    before = m.tick(at=CALL - 1)
    events = m.tick(at=CALL)

    assert before == []
    assert events == [
        PhaseChanged(W10, "continuous", "closing"),
        IndicativePrice(W10, None, 0, 0, None, None),
    ]


# -- rejections ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "resource_class",
    ["fpga", "tpu", "", 7, None],
    ids=["class-without-futures", "unknown", "empty", "int", "none"],
)
def test_list_future_of_a_class_without_futures_is_rejected_and_changes_nothing(
    resource_class: object,
) -> None:
    m = futures_market()
    twin = futures_market()

    events = m.apply(ListFuture(resource_class, START))  # type: ignore[arg-type]
    twin.tick()

    assert events == [command_rejected("list_future", Code.UNKNOWN_CLASS)]
    assert m.state_hash() == twin.state_hash()


@pytest.mark.parametrize(
    ("start", "hours"),
    [
        (START + 1, 1),
        (START + 30 * 60 * 1_000_000_000, 1),
        (START, 0),
        (START, 25),
        (START, -1),
        (START, 1.0),
        (START, True),
        (float(START), 1),
        (None, 1),
        (at(7), 1),
        (at(8), 1),
        (2**63 - HOUR - (2**63 - HOUR) % HOUR, 2),
    ],
    ids=[
        "not-on-the-hour",
        "half-past",
        "zero-hours",
        "25-hours",
        "negative-hours",
        "float-hours",
        "bool-hours",
        "float-start",
        "no-start",
        "in-the-past",
        "starting-now",
        "ending-past-the-last-time",
    ],
)
def test_list_future_of_an_invalid_window_is_rejected_and_changes_nothing(
    start: object, hours: object
) -> None:
    m = futures_market()
    twin = futures_market()

    events = m.apply(ListFuture("cpu", start, hours))  # type: ignore[arg-type]
    twin.tick()

    assert events == [command_rejected("list_future", Code.INVALID_WINDOW)]
    assert m.state_hash() == twin.state_hash()


def test_list_future_at_its_gate_is_rejected() -> None:
    m = futures_market()
    m.tick(at=GATE)

    events = m.apply(ListFuture("cpu", START), at=GATE)

    assert events == [command_rejected("list_future", Code.INVALID_WINDOW)]
    assert W10 not in m.engine.instruments


def test_list_future_one_nanosecond_before_its_gate_is_accepted() -> None:
    m = futures_market()

    events = m.apply(ListFuture("cpu", START), at=GATE - 1)

    assert events[0] == listed(W10, "cpu", START)
    assert m.engine.instruments[W10].phase == "closing"


def test_listing_a_listed_window_again_is_rejected_and_changes_nothing() -> None:
    m = futures_market(("cpu", START, 4))
    twin = futures_market(("cpu", START, 4))

    events = m.apply(ListFuture("cpu", START, 4))
    twin.tick()

    assert events == [command_rejected("list_future", Code.INSTRUMENT_EXISTS)]
    assert m.state_hash() == twin.state_hash()


def test_listing_an_auto_listed_window_by_command_is_rejected() -> None:
    m = Market(AUTO_CONFIG)
    m.tick(at=at(8))

    events = m.apply(ListFuture("gpu", at(12)))

    assert events == [command_rejected("list_future", Code.INSTRUMENT_EXISTS)]
