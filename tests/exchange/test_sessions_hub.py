"""The hub's view of who listens: what market data builds messages for."""

from __future__ import annotations

from typing import Any

from exchange.sessions import Hub, _frame_header


class Listener:
    """The part of a `Session` the hub touches."""

    def __init__(self) -> None:
        self.channels: set[Any] = set()


def test_a_channel_nobody_subscribes_to_has_no_listener() -> None:
    hub = Hub()

    assert not hub.listening("book.cpu-SPOT", None)
    assert not hub.listening("orders", "alice")


def test_an_expected_subscriber_listens_from_its_snapshot_on() -> None:
    hub = Hub()
    key = ("book.cpu-SPOT", 10)

    hub.expect([key])
    expected = hub.listening(*key)
    hub.add(Listener(), key, expected=True)  # type: ignore[arg-type]
    added = hub.listening(*key)

    assert expected
    assert added
    assert not hub.listening("book.cpu-SPOT", None)


def test_an_expected_subscriber_that_never_came_stops_listening() -> None:
    hub = Hub()
    key = ("orders", "alice")

    hub.expect([key, key])
    hub.unexpect(key)
    still = hub.listening(*key)
    hub.unexpect(key)

    assert still
    assert not hub.listening(*key)


def test_a_removed_subscriber_stops_listening() -> None:
    hub = Hub()
    listener = Listener()
    key = ("trades.cpu-SPOT", None)
    hub.add(listener, key)  # type: ignore[arg-type]

    hub.remove(listener, [key])  # type: ignore[arg-type]

    assert not hub.listening(*key)


def test_a_closed_session_that_had_fallen_behind_leaves_every_channel() -> None:
    hub = Hub()
    listener = Listener()
    quiet = ("candles.cpu-SPOT", None)
    hub.add(listener, quiet)  # type: ignore[arg-type]
    hub.sessions.add(listener)  # type: ignore[arg-type]
    # Falling behind took the channel from the session; nothing spoke on it
    # since, so `publish` has not forgotten the session there.
    listener.channels.discard(quiet)

    hub.drop(listener)  # type: ignore[arg-type]

    assert not hub.listening(*quiet)


def test_frame_headers_follow_rfc_6455_for_each_length_class() -> None:
    assert _frame_header(5) == b"\x81\x05"
    assert _frame_header(126) == b"\x81\x7e\x00\x7e"
    assert _frame_header(70_000) == b"\x81\x7f" + (70_000).to_bytes(8, "big")
