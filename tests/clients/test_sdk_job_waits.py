"""Waiting for jobs, and reading them while they run and once they end, through
the SDK and REST on real processes: ``cux serve`` and a scripted node of p1
that takes every shard and sits on it (``scripted_node.py --mode sit``), so a
job stays running until the test cancels it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import dispatch_harness
import pytest
from dispatch_harness import SYMBOL, asks, start_node, stop, wait_until
from dispatch_harness import write_config as write_dispatch_config
from server_harness import ServerProcess

from clients import Client
from clients.errors import ClientError, ProtocolError, RequestTimeout
from clients.messages import JobUpdate

SCRIPTED = str(Path(dispatch_harness.__file__).resolve().parent / "scripted_node.py")
MAX_PRICE = 200_000  # µcr per 10-CU lot, far above the node's ask
BUDGET_CU = 5


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("waits")
    # A shard's deadline is 120 s away: a job runs until it is cancelled.
    config = write_dispatch_config(folder, timeout=120)
    with ServerProcess(config, folder / "data") as server:
        node = start_node(
            server,
            "p1",
            "n1",
            max_cu=1.0,
            script=SCRIPTED,
            extra=["--mode", "sit", "--lots", "10", "--price", "1000"],
        )
        try:
            wait_until(lambda: asks(server) or node.poll() is not None, what="quote")
            assert asks(server), stop(node)
            yield server
        finally:
            stop(node)


async def _running_job(cux: Client) -> str:
    job_id = await cux.submit_job(
        SYMBOL, ["A fox crossed the road."], budget_cu=BUDGET_CU, max_price=MAX_PRICE
    )
    assert (await cux.get_job(job_id, results=False)).status == "running"
    return job_id


@pytest.mark.parametrize("on_update", [False, True])
async def test_wait_job_past_its_timeout_raises_request_timeout_and_the_job_runs_on(
    market: ServerProcess, on_update: bool
) -> None:
    updates: list[JobUpdate] = []
    callback = updates.append if on_update else None
    async with Client(market.url, "alice", "alice-secret") as cux:
        job_id = await _running_job(cux)
        started = time.monotonic()

        with pytest.raises(RequestTimeout) as caught:
            await cux.wait_job(job_id, timeout=0.5, on_update=callback)

        assert 0.5 <= time.monotonic() - started < 5
        assert isinstance(caught.value, ClientError)
        message = f"job {job_id} did not end within 0.5 s (it runs on)"
        assert str(caught.value) == message
        for timeout in (0, -1):
            with pytest.raises(RequestTimeout, match=f"within {timeout} s"):
                await cux.wait_job(job_id, timeout=timeout, on_update=callback)
        # The connection is still good, and the job still running.
        assert (await cux.get_job(job_id, results=False)).status == "running"
        await cux.cancel_job(job_id)
        job = await cux.wait_job(job_id, timeout=10, on_update=callback)
    assert job.status == "cancelled"
    if on_update:
        assert updates[0].status == "running"
        assert updates[-1].status == "cancelled"


async def test_rest_reads_a_jobs_page_up_to_offset_1024_as_the_websocket(
    market: ServerProcess,
) -> None:
    async with Client(market.url, "alice", "alice-secret") as cux:
        job_id = await _running_job(cux)
        try:
            path = f"/api/v1/jobs/{job_id}"
            last = market.get_signed("alice", f"{path}?offset=1024")
            over = market.get_signed("alice", f"{path}?offset=1025")
            far = market.get_signed("alice", f"{path}?offset=1000000000000000")
            with pytest.raises(ProtocolError) as caught:
                await cux.request("get_job", job_id=job_id, offset=1025)
        finally:
            await cux.cancel_job(job_id)
    assert (last.status, last.body["results"], last.body["offset"]) == (200, [], 1024)
    assert caught.value.code == "INVALID_FIELD"
    for reply in (over, far):
        assert reply.status == 400
        assert reply.body == {
            "code": "INVALID_FIELD",
            "message": "offset is 0 to 1024, limit 1 to 256",
        }


async def test_wait_jobs_first_update_and_every_read_carry_when_the_job_changed(
    market: ServerProcess,
) -> None:
    updates: list[JobUpdate] = []
    async with Client(market.url, "alice", "alice-secret") as cux:
        submitted = time.time_ns()
        job_id = await _running_job(cux)
        path = f"/api/v1/jobs/{job_id}"
        waiting = asyncio.create_task(
            cux.wait_job(job_id, timeout=30, on_update=updates.append)
        )
        await wait_for(lambda: bool(updates))
        running = [market.get_signed("alice", path).body["job"] for _ in range(2)]
        await asyncio.sleep(0.05)
        again = await cux.request("get_job", job_id=job_id)
        await cux.cancel_job(job_id)
        job = await waiting
        await asyncio.sleep(0.05)
        ended = [market.get_signed("alice", path).body["job"] for _ in range(2)]
        listed = market.get_signed("alice", "/api/v1/jobs").body["jobs"]
        read = await cux.request("get_job", job_id=job_id)
    first, last = updates[0], updates[-1]
    assert (first.status, last.status, job.status) == (
        "running",
        "cancelled",
        "cancelled",
    )
    # The first update is the job as the server read it: its real time.
    assert submitted <= first.ts <= time.time_ns()
    assert running[0]["ts"] == running[1]["ts"] == again["job"]["ts"] == first.ts
    # Ended: when it ended, the time of its last update, on every read.
    assert last.ts > first.ts
    assert ended[0]["ts"] == ended[1]["ts"] == read["job"]["ts"] == last.ts
    assert [j["ts"] for j in listed if j["job_id"] == job_id] == [last.ts]


async def wait_for(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)
