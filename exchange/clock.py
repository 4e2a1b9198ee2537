"""The exchange's clock: real time, or simulated time for demos and tests.

The engine reads time only from the commands the sequencer stamps, and the
sequencer takes it from this clock. By default it is the machine's clock. A
simulation runs it from another start (``clock_start``, ns since the epoch)
and faster (``clock_speed``): at speed 60, a one-hour futures window opens,
delivers and settles in one real minute. Every time the exchange deals in —
leases, gates, windows, expiries, candles — is then simulated time; only
network timeouts and heartbeats stay real.
"""

from __future__ import annotations

import time

__all__ = ["Clock"]


class Clock:
    """ns since the epoch: ``start + (now − started) × speed``.

    Args:
        start: the simulated time at creation, ns; None: the real time.
        speed: simulated seconds per real second, above 0.
    """

    def __init__(self, start: int | None = None, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"the clock's speed must be above 0, got {speed!r}")
        self._real0 = time.time_ns()
        self._start = self._real0 if start is None else start
        self.speed = speed

    def __call__(self) -> int:
        elapsed = time.time_ns() - self._real0
        if self.speed == 1.0:
            return self._start + elapsed
        return self._start + int(elapsed * self.speed)

    def real_seconds(self, simulated_ns: int) -> float:
        """How long ``simulated_ns`` of simulated time takes, in real seconds."""
        return simulated_ns / 1e9 / self.speed
