"""Jobs through the SDK and ``cux job`` on real processes: ``cux serve`` and one
provider node (``cux node``) running the real model.

The node of provider p1 registers 0.1 CU/s on ``emb-SPOT`` (10-CU lots) and
quotes it; alice submits job orders priced well above its ask.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from dispatch_harness import SYMBOL, asks, start_node, stop, wait_until
from dispatch_harness import write_config as write_dispatch_config
from server_harness import ROOT, ServerProcess

from clients import Client, RestClient
from clients.errors import AuthError, JobError
from clients.messages import JobUpdate

TEXTS = ["A fox crossed the road.", "Snow closed the mountain pass overnight."]
MAX_PRICE = 200_000  # µcr per 10-CU lot, far above the node's ask
BUDGET_CU = 5


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("jobs")
    with ServerProcess(write_dispatch_config(folder), folder / "data") as server:
        node = start_node(server, "p1", "n1", cost_per_hour=1.0, max_cu=0.1)
        try:
            wait_until(lambda: asks(server), what="the node's quote")
            yield server
        finally:
            stop(node)


async def test_a_job_order_runs_to_done_with_one_embedding_per_input(
    market: ServerProcess,
) -> None:
    updates: list[JobUpdate] = []
    async with Client(market.url, "alice", "alice-secret") as cux:
        job_id = await cux.submit_job(
            SYMBOL, TEXTS, budget_cu=BUDGET_CU, max_price=MAX_PRICE
        )
        job = await cux.wait_job(job_id, timeout=120, on_update=updates.append)
        again = await cux.get_job(job_id, results=False)
    assert job.job_id == job_id
    assert (job.status, job.inputs, job.done_inputs) == ("done", 2, 2)
    assert job.budget_flops == BUDGET_CU * 10**9
    assert 0 < job.flops <= job.budget_flops
    assert job.cost > 0
    assert len(job.results) == 2
    for result in job.results:
        assert result is not None
        assert len(result.embedding) == 384
        assert (result.layers, result.exit) == (6, "full")
    assert job.flops == sum(r.flops for r in job.results if r is not None)
    assert updates[-1].status == "done"
    assert updates[-1].done_inputs == 2
    assert again.results == []
    assert again.cost == job.cost


async def test_job_errors_are_typed_job_errors_with_their_codes(
    market: ServerProcess,
) -> None:
    async with Client(market.url, "alice", "alice-secret") as cux:
        with pytest.raises(JobError) as caught:
            await cux.get_job("987654")
        assert caught.value.code == "UNKNOWN_JOB"
        with pytest.raises(JobError) as caught:
            await cux.submit_job(SYMBOL, TEXTS, budget_cu=BUDGET_CU, max_price=1)
        assert caught.value.code == "JOB_UNFILLED"
        job_id = await cux.submit_job(
            SYMBOL, TEXTS[:1], budget_cu=BUDGET_CU, max_price=MAX_PRICE
        )
        job = await cux.wait_job(job_id, timeout=120)
        assert job.status == "done"
        with pytest.raises(JobError) as caught:
            await cux.cancel_job(job_id)
        assert caught.value.code == "JOB_ENDED"


def cux(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUX_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "cux"), *args],
        cwd=ROOT,
        env={**env, "CUX_KEY": "alice", "CUX_SECRET": "alice-secret"},
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def test_cux_job_submit_prints_the_job_and_cux_job_get_finds_it(
    market: ServerProcess, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs.txt"
    inputs.write_text("\n".join(TEXTS) + "\n\n", encoding="utf-8")
    common = ["--url", market.url, "--json"]
    submit = [
        *("--symbol", SYMBOL, "--max-price", str(MAX_PRICE)),
        *("--budget-cu", str(BUDGET_CU)),
    ]

    done = cux("job", "submit", str(inputs), *submit, *common)

    assert done.returncode == 0, done.stderr
    job = json.loads(done.stdout)
    assert (job["status"], job["inputs"], job["done_inputs"]) == ("done", 2, 2)
    assert all("embedding" not in r for r in job["results"])
    assert [r["layers"] for r in job["results"]] == [6, 6]

    got = cux("job", "get", job["job_id"], "--embeddings", *common)
    assert got.returncode == 0, got.stderr
    full = json.loads(got.stdout)
    assert [len(r["embedding"]) for r in full["results"]] == [384, 384]
    assert full["cost"] == job["cost"]

    shown = cux("job", "submit", str(inputs), *submit, "--url", market.url)
    assert shown.returncode == 0, shown.stderr
    assert "Results" in shown.stdout
    assert "2/2" in shown.stderr  # the progress bar, at its end

    table = cux("job", "get", job["job_id"], "--url", market.url)
    assert table.returncode == 0, table.stderr
    assert f"Job {job['job_id']}" in table.stdout
    assert "done" in table.stdout
    assert "embedding" in table.stdout


def test_cux_job_submit_with_a_price_below_every_ask_exits_1_with_the_code(
    market: ServerProcess, tmp_path: Path
) -> None:
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps(TEXTS), encoding="utf-8")

    done = cux(
        "job",
        "submit",
        str(inputs),
        *("--symbol", SYMBOL, "--max-price", "1", "--budget-cu", "5"),
        *("--url", market.url),
    )

    assert done.returncode == 1
    assert "cux job submit: JOB_UNFILLED:" in done.stderr


async def test_rest_client_submits_reads_lists_and_cancels_jobs(
    market: ServerProcess,
) -> None:
    async with RestClient(market.http, "alice", "alice-secret") as rest:
        job_id = await rest.submit_job(
            SYMBOL, TEXTS, budget_cu=BUDGET_CU, max_price=MAX_PRICE
        )
        async with Client(market.url, "alice", "alice-secret") as cux:
            waited = await cux.wait_job(job_id, timeout=120)
        job = await rest.job(job_id)
        assert job == waited
        newest = (await rest.jobs())[0]
        assert (newest.job_id, newest.status) == (job_id, "done")
        with pytest.raises(JobError) as caught:
            await rest.cancel_job(job_id)
        assert caught.value.code == "JOB_ENDED"
        with pytest.raises(JobError) as caught:
            await rest.submit_job(SYMBOL, TEXTS, budget_cu=BUDGET_CU, max_price=1)
        assert caught.value.code == "JOB_UNFILLED"
    async with RestClient(market.http, "alice", "wrong") as rest:
        with pytest.raises(AuthError):
            await rest.submit_job(SYMBOL, TEXTS, budget_cu=1, max_price=MAX_PRICE)
