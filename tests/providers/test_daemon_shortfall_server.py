"""``cux node`` against a real ``cux serve`` when it delivers less than it
registered.

The node measures its capacity at start with the machine to itself. Then the
test throttles it as a container's CPU quota does (cgroup ``cpu.max``: the
process runs a slice of every period and waits out the rest), so the jobs it
runs afterwards deliver a fraction of the CU/s it registered. Once its shards
have run for the shortfall window it registers the rate it delivered: the
exchange lists that rate, which agrees with the rate the exchange measured
from the node's reports, and the node's quote is re-sized and re-priced.

The market is the dispatch tests' (`dispatch_harness`): class ``emb`` of
10-CU lots, provider ``p1``, consumer ``alice``.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dispatch_harness import (
    LOT_CU,
    SYMBOL,
    TEXTS,
    asks,
    finish,
    node,
    start_node,
    stop,
    wait_until,
    write_config,
)
from server_harness import ServerProcess, connected

from providers.daemon import SHORTFALL_WINDOW_NS
from providers.pricing import Pricing, micro_usd, reservation_price

INPUTS = TEXTS * 2
"""128 inputs of some thirty tokens: a job of them runs for seconds throttled."""

LEASE_SECONDS = 300
"""The spot lease of class ``emb`` (the default ``lease_seconds``)."""


@contextlib.contextmanager
def throttled(pid: int, share: float = 0.2, period: float = 0.1) -> Iterator[None]:
    """Let process ``pid`` run ``share`` of every ``period`` seconds and stop
    it (SIGSTOP) for the rest, until the block ends."""
    done = threading.Event()

    def duty_cycle() -> None:
        while not done.is_set():
            os.kill(pid, signal.SIGCONT)
            time.sleep(share * period)
            os.kill(pid, signal.SIGSTOP)
            done.wait((1 - share) * period)

    thread = threading.Thread(target=duty_cycle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)


def seconds_run(listed: dict[str, Any]) -> float:
    """The shard run time the exchange counts for a node, from its record."""
    reputation = listed["reputation"]
    rate = reputation["delivered_cu_per_second"]
    return 0.0 if not rate else reputation["flops_delivered"] / 1e9 / rate


async def jobs_until_re_registered(
    server: ServerProcess, node_id: str, registered: float
) -> dict[str, Any]:
    """Alice's job orders of `INPUTS`, one after another, until node
    ``node_id`` is listed at a CU/s other than ``registered``; that listing."""
    window = SHORTFALL_WINDOW_NS / 1e9
    async with connected(server.url, "alice") as alice:
        for _ in range(12):
            ack = await alice.request(
                "submit_job",
                symbol=SYMBOL,
                inputs=INPUTS,
                budget_cu=200,
                max_price=10**6,
            )
            assert ack["type"] == "ack", ack
            job = await finish(alice, ack["job_id"])
            assert job["status"] == "done", job

            # The node checks its delivery as each result is taken; once its
            # shards have run for the window, the registration follows at once.
            if seconds_run(node(server, node_id)) < 0.95 * window:
                continue
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                listed = node(server, node_id)
                if listed["cu_per_second"] != registered:
                    return listed
                await asyncio.sleep(0.05)
    raise AssertionError(f"{node_id} never re-registered: {node(server, node_id)}")


def test_a_node_delivering_short_of_its_registration_re_registers_lower_and_requotes(
    tmp_path: Path,
) -> None:
    # Shards run slowly here: a deadline of 2 minutes, not 30 s.
    config = write_config(tmp_path, timeout=120)
    with ServerProcess(config, tmp_path / "data") as server:
        # No cap: it registers what its probe measures.
        n1 = start_node(server, "p1", "n1", max_cu=10**9)
        try:
            [[_, lots]] = wait_until(lambda: asks(server), what="a quote")
            before = node(server, "n1")
            with throttled(n1.pid):
                after = asyncio.run(
                    jobs_until_re_registered(server, "n1", before["cu_per_second"])
                )

            # Nothing sold once the last job's lease ended: the whole of the
            # lower capacity, at its higher reservation plus the least markup.
            milli = round(after["cu_per_second"] * 1000)
            new_lots = milli * LEASE_SECONDS // (1000 * LOT_CU)
            reservation = reservation_price(micro_usd("1.0"), milli, LOT_CU)
            price = Pricing(reservation, 1, 1_000, 4_000).ask(0, new_lots)
            wait_until(lambda: asks(server) == [[price, new_lots]], 30, "a re-quote")
        finally:
            log = stop(n1)

    assert after["cu_per_second"] < 0.9 * before["cu_per_second"], (before, after)
    # The rate the exchange measured from the same reports: the node's
    # thousandths are rounded down, the exchange's to the nearest.
    measured = round(after["reputation"]["delivered_cu_per_second"] * 1000)
    assert measured - milli in (0, 1), (after, log)
    assert new_lots < lots
    assert after["tiers"] == before["tiers"]
    shortfall = f"short of the {before['cu_per_second']:.3f} registered: re-registering"
    assert shortfall in log, log
    assert log.count("registered node n1") == 2, log
