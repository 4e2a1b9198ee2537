"""``cux node`` as a real process: measures, registers, quotes, and on SIGTERM
cancels its quotes and exits cleanly."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator

import pytest
from fake_exchange import FakeExchange

from providers.capacity import measure_capacity
from providers.model import EncoderModel


@pytest.fixture
async def fake() -> AsyncIterator[FakeExchange]:
    exchange = FakeExchange()
    await exchange.start()
    yield exchange
    await exchange.stop()


def test_the_capacity_probe_measures_a_positive_cu_rate(model: EncoderModel) -> None:
    assert measure_capacity(model, seconds=0.2) > 0


async def test_a_node_process_registers_quotes_and_cancels_its_quotes_on_sigterm(
    fake: FakeExchange,
) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "exchange",
        "node",
        "--exchange",
        fake.url,
        "--key",
        "bob",
        "--secret",
        "bob-secret",
        "--probe-seconds",
        "0.3",
        "--node-id",
        "n7",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    try:
        await fake.wait_for("place", timeout=60)
        process.send_signal(signal.SIGTERM)
        output, _ = await asyncio.wait_for(process.communicate(), 15)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()

    log = output.decode()
    assert process.returncode == 0, log
    register = fake.ops("register_node")[0]
    assert register["node_id"] == "n7"
    assert register["cu_per_second_milli"] > 0
    assert "exact" in register["tiers"]
    place = fake.ops("place")[0]
    assert place["qty"] == register["cu_per_second_milli"] * 60 // 1000 // 100
    assert place["client_order_id"].startswith("n7.")
    assert fake.received[-1]["op"] == "cancel_all"
    assert "INFO cux.node: quotes cancelled" in log
