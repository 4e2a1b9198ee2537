"""Consumer agents' embedding jobs on real processes: ``cux serve`` and a
provider node (``cux node``) running the real model."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from dispatch_harness import LOT_CU, SYMBOL, asks, start_node, stop, wait_until
from dispatch_harness import write_config as write_dispatch_config
from server_harness import ServerProcess, connected

from clients.agents import (
    Consumer,
    ConsumerConfig,
    LotPricer,
    PlannedJob,
    connect_venue,
    load_gpu_prices,
    load_passages,
)

# The node registers 0.1 CU/s: the series prices a 10-CU lot at that rate
# (H100 at $1.99 an hour: 55,278 µcr), above the node's ask at $1.00 an hour
# (27,778 µcr plus its markup).
PRICER = LotPricer(load_gpu_prices(), lot_cu=LOT_CU, cu_per_second_milli=100)


@pytest.fixture
def market(tmp_path: Path) -> Any:
    """A server and one node of provider p1, quoting."""
    with ServerProcess(write_dispatch_config(tmp_path), tmp_path / "data") as server:
        node = start_node(server, "p1", "n1", cost_per_hour=1.0, max_cu=0.1)
        try:
            wait_until(lambda: asks(server), what="the node's quote")
            yield server
        finally:
            stop(node)


def consumer_config(**fields: Any) -> ConsumerConfig:
    defaults: dict[str, Any] = {
        "name": "alice-bot",
        "symbol": SYMBOL,
        "lot_cu": LOT_CU,
        "rate_per_second": 5.0,
        "inputs_min": 1,
        "inputs_max": 3,
        "seed": 2,
        "max_jobs": 2,
    }
    return ConsumerConfig(**{**defaults, **fields})


async def job_with_results(url: str, job_id: str) -> tuple[dict[str, Any], list[Any]]:
    """What ``get_job`` says of a job, with every page of its results."""
    async with connected(url, "alice") as alice:
        results: list[Any] = []
        offset: int | None = 0
        while offset is not None:
            page = await alice.request("get_job", job_id=job_id, offset=offset)
            assert page["type"] == "result", page
            results += page["results"]
            offset = page["next_offset"]
        return page["job"], results


async def run_consumer(server: ServerProcess, config: ConsumerConfig) -> Consumer:
    passages = load_passages()
    async with connect_venue(server.url, "alice", "alice-secret") as venue:
        consumer = Consumer(venue, config, PRICER.price, passages)
        await asyncio.wait_for(consumer.run(), 180)
    return consumer


@pytest.mark.usefixtures("model")
async def test_a_consumers_jobs_embed_its_passages_on_a_real_node_within_its_price(
    market: ServerProcess,
) -> None:
    config = consumer_config()

    consumer = await run_consumer(market, config)

    assert consumer.stats.refused == {}
    assert consumer.stats.accepted == 2
    assert sorted(consumer.stats.jobs.values()) == ["done", "done"]
    jobs = [await job_with_results(market.url, j) for j in consumer.stats.jobs]
    for planned, (job, results) in zip(consumer.sent, jobs, strict=True):
        check_job(planned, job, results)
    trades = market.get(f"/api/v1/trades/{SYMBOL}").body["trades"]
    assert len(trades) >= 2
    assert all(t["price"] <= min(p.max_price for p in consumer.sent) for t in trades)
    assert consumer.stats.cost == sum(job["cost"] for job, _ in jobs)
    assert consumer.stats.flops == sum(job["flops"] for job, _ in jobs)


def check_job(planned: PlannedJob, job: dict[str, Any], results: list[Any]) -> None:
    assert job["status"] == "done", job
    assert job["inputs"] == len(planned.inputs)
    assert job["budget_flops"] == planned.budget_cu * 10**9
    assert 0 < job["flops"] <= job["budget_flops"]
    assert len(results) == len(planned.inputs)
    for result in results:
        assert len(result["embedding"]) == 384
        assert result["layers"] == 6  # exact tier, within budget: full depth
        assert result["exit"] == "full"


@pytest.mark.usefixtures("model")
async def test_a_consumer_willing_to_pay_half_the_series_price_buys_nothing(
    market: ServerProcess,
) -> None:
    # Half of 55,278 µcr is below the node's ask: the job orders find no lot.
    config = consumer_config(willingness_bps=5_000)
    assert all(p.max_price < asks(market)[0][0] for p in plan_of(config))

    consumer = await run_consumer(market, config)

    assert consumer.stats.refused == {"JOB_UNFILLED": 2}
    assert consumer.stats.jobs == {}
    assert market.get(f"/api/v1/trades/{SYMBOL}").body["trades"] == []


def plan_of(config: ConsumerConfig) -> list[PlannedJob]:
    from clients.agents import plan_jobs

    return list(plan_jobs(config, PRICER.price, load_passages()))


# -- stopping, on a double of the exchange --------------------------------------------


class SilentVenue:
    """Accepts every job and never reports one ending."""

    def __init__(self) -> None:
        self.submitted: list[dict[str, Any]] = []
        self.cancelled: list[str] = []

    async def place(self, **fields: Any) -> str:
        raise AssertionError("a job-mode consumer places no order")

    async def amend(self, order_id: str, **fields: Any) -> None:
        raise AssertionError("a consumer amends nothing")

    async def cancel_all(self, symbol: str | None = None) -> int:
        return 0

    async def submit_job(self, **fields: Any) -> str:
        self.submitted.append(fields)
        return str(len(self.submitted))

    async def cancel_job(self, job_id: str) -> None:
        self.cancelled.append(job_id)

    async def private(self) -> AsyncIterator[dict[str, Any]]:
        return self._nothing()

    async def _nothing(self) -> AsyncIterator[dict[str, Any]]:
        await asyncio.Event().wait()
        yield {}


async def test_a_consumer_stopped_with_jobs_running_cancels_each_of_them() -> None:
    venue = SilentVenue()
    consumer = Consumer(venue, consumer_config(max_jobs=3), PRICER.price, ["Hi."] * 3)
    task = asyncio.create_task(consumer.run())

    while len(venue.submitted) < 3:
        await asyncio.sleep(0.01)
    assert not task.done()  # it waits for its jobs to end
    consumer.stop()
    await task

    assert venue.cancelled == ["1", "2", "3"]
    assert [f["max_price"] for f in venue.submitted] == [
        p.max_price for p in consumer.sent
    ]
