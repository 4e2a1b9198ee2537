"""Failed logins counted per remote address, so that guessing secrets is slow.

A connection's own rate limit (`exchange.sessions`) does not stop a peer that
opens many connections, so failed logins, on the websocket and on signed REST
routes alike, are also counted per remote address: an IPv4 address, or the /64
network of an IPv6 one (what a single host can usually choose from). Once an
address has failed ``limit`` times within one window of ``seconds``, every
login from it, a correct one too, is refused with ``RATE_LIMITED`` until that
window ends; the first failure after it opens a new window.

Memory is bounded: at most `MAX_ADDRESSES` addresses are remembered. When a new
one comes and there is no room, the windows that have ended are dropped, then,
if need be, the oldest window still running: a flood from more addresses than
that makes the limit forget the oldest of them first.
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

__all__ = ["MAX_ADDRESSES", "FailedLogins", "address_key", "refusal"]

MAX_ADDRESSES: Final = 10_000
"""The most remote addresses whose failed logins are remembered at once."""


class FailedLogins:
    """Failed logins per remote address, in fixed windows.

    Args:
        limit: failures within one window after which the address is refused.
        seconds: the window's length.
        max_addresses: how many addresses are remembered at most.
        clock: seconds, monotonic.
    """

    def __init__(
        self,
        limit: int,
        seconds: float,
        max_addresses: int = MAX_ADDRESSES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.limit = limit
        self.seconds = seconds
        self.max_addresses = max_addresses
        self.clock = clock
        # address -> [window start, failures]; ordered by window start.
        self._windows: OrderedDict[str, list[float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._windows)

    def refused_for(self, remote: str | None) -> int:
        """Whole seconds until ``remote`` may log in again; 0 if it may now."""
        window = self._windows.get(address_key(remote))
        if window is None or window[1] < self.limit:
            return 0
        left = window[0] + self.seconds - self.clock()
        return math.ceil(left) if left > 0 else 0

    def failed(self, remote: str | None) -> None:
        """Count one failed login from ``remote``."""
        key = address_key(remote)
        now = self.clock()
        window = self._windows.get(key)
        if window is not None and now - window[0] < self.seconds:
            window[1] += 1
            return
        if window is not None:
            del self._windows[key]
        elif len(self._windows) >= self.max_addresses:
            self._make_room(now)
        self._windows[key] = [now, 1]

    def _make_room(self, now: float) -> None:
        windows = self._windows
        while windows:
            start, _ = next(iter(windows.values()))
            if now - start < self.seconds:
                break
            windows.popitem(last=False)
        if len(windows) >= self.max_addresses:
            windows.popitem(last=False)


def address_key(remote: str | None) -> str:
    """What failed logins are counted under: the IPv4 address, the /64 of an
    IPv6 one, the text itself if it is neither (``"?"`` for none)."""
    if not remote:
        return "?"
    try:
        address = ipaddress.ip_address(remote)
    except ValueError:
        return remote
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def refusal(wait: int) -> str:
    """The message of a login refused for ``wait`` more seconds."""
    return f"too many failed logins from this address; try again in {wait} s"
