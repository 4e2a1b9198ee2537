"""`providers.quotes` without a connection: how many lots each window gets,
and where the instrument listing is."""

from __future__ import annotations

from providers.quotes import Window, instruments_url, plan

HOUR = 3600 * 10**9


def window(symbol: str, start_h: int, hours: int, capacity: int | None) -> Window:
    return Window(
        symbol, start_h * HOUR, (start_h + hours) * HOUR, "continuous", capacity
    )


def test_adjacent_windows_each_get_their_capacity_less_what_sold() -> None:
    windows = [window("a", 10, 1, 60), window("b", 11, 1, 60)]

    assert plan(windows, {"a": 20}) == {"a": 40, "b": 60}


def test_a_window_inside_another_shares_its_capacity_with_it() -> None:
    # The engine: the shorts of [10,11) and [10,12) together must fit both
    # the one hour's 60 lots and the two hours' 120.
    inner, outer = window("inner", 10, 1, 60), window("outer", 10, 2, 120)

    assert plan([outer, inner], {}) == {"inner": 60, "outer": 0}
    assert plan([outer, inner], {"inner": 50}) == {"inner": 10, "outer": 0}
    assert plan([outer, inner], {"outer": 25}) == {"inner": 35, "outer": 0}


def test_the_later_of_two_overlapping_windows_gets_what_the_earlier_leaves() -> None:
    early, late = window("early", 10, 2, 120), window("late", 11, 2, 120)

    assert plan([late, early], {"early": 100}) == {"early": 20, "late": 0}
    assert plan([late, early], {"early": 120}) == {"early": 0, "late": 0}
    assert plan([late, early], {"early": 30, "late": 10}) == {
        "early": 80,
        "late": 0,
    }


def test_closed_paused_and_unregistered_windows_get_nothing_but_count() -> None:
    closed = window("closed", 10, 2, 120)
    closed.phase = "closed"
    paused = window("paused", 12, 1, 60)
    paused.paused = True
    unknown = window("unknown", 13, 1, None)
    open_ = window("open", 11, 1, 60)

    lots = plan([closed, paused, unknown, open_], {"closed": 20})

    # The closed window's 20 sold lots still count in the hour inside it.
    assert lots == {"open": 40}


def test_a_ceiling_after_a_refusal_caps_the_window() -> None:
    capped = window("capped", 10, 1, 60)
    capped.ceiling = 15

    assert plan([capped], {"capped": 10}) == {"capped": 15}
    assert plan([capped], {"capped": 50}) == {"capped": 10}


def test_the_listing_is_the_rest_route_beside_the_websocket() -> None:
    assert (
        instruments_url("ws://127.0.0.1:8700/ws")
        == "http://127.0.0.1:8700/api/v1/instruments"
    )
    assert (
        instruments_url("wss://cux.example/venue/ws")
        == "https://cux.example/venue/api/v1/instruments"
    )
