"""`exchange.login_limit`: failed logins per address, in windows, in bounded memory."""

from __future__ import annotations

from exchange.login_limit import FailedLogins, address_key


class Clock:
    """A clock the test moves by hand, in seconds."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_an_address_is_refused_after_its_limit_until_the_window_ends() -> None:
    clock = Clock()
    logins = FailedLogins(3, 60, clock=clock)

    for _ in range(2):
        logins.failed("10.0.0.1")
    before_limit = logins.refused_for("10.0.0.1")
    logins.failed("10.0.0.1")
    at_limit = logins.refused_for("10.0.0.1")
    clock.now += 59.5
    near_end = logins.refused_for("10.0.0.1")
    clock.now += 0.5
    after = logins.refused_for("10.0.0.1")

    assert (before_limit, at_limit, near_end, after) == (0, 60, 1, 0)
    assert logins.refused_for("10.0.0.2") == 0


def test_a_failure_after_the_window_starts_a_new_count() -> None:
    clock = Clock()
    logins = FailedLogins(2, 10, clock=clock)
    logins.failed("10.0.0.1")
    clock.now += 10

    logins.failed("10.0.0.1")

    assert logins.refused_for("10.0.0.1") == 0


def test_memory_stays_bounded_forgetting_the_oldest_then_the_ended_windows() -> None:
    clock = Clock()
    logins = FailedLogins(1, 60, max_addresses=4, clock=clock)
    for host in "abcd":
        logins.failed(f"10.0.0.{ord(host)}")
    clock.now += 30

    # Full of running windows: a new address pushes out the oldest.
    logins.failed("10.0.1.1")
    full = len(logins)
    forgotten = logins.refused_for(f"10.0.0.{ord('a')}")
    kept = logins.refused_for(f"10.0.0.{ord('b')}")
    clock.now += 30
    # The windows of b, c and d have ended: they make room.
    logins.failed("10.0.1.2")

    assert (full, forgotten, kept) == (4, 0, 30)
    assert len(logins) == 2
    assert logins.refused_for("10.0.1.1") == 30


def test_an_ipv6_host_is_counted_by_its_64_network() -> None:
    clock = Clock()
    logins = FailedLogins(2, 60, clock=clock)

    logins.failed("2001:db8:1:2::1")
    logins.failed("2001:db8:1:2:ffff::9")

    assert logins.refused_for("2001:db8:1:2::77") == 60
    assert logins.refused_for("2001:db8:1:3::1") == 0
    assert address_key("::ffff:10.0.0.1") == "10.0.0.1"
    assert address_key(None) == "?"
