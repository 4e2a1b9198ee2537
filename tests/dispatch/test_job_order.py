"""A spot job order on real processes: a server, two provider nodes, a consumer."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from dispatch_harness import (
    LOT_CU,
    MAKER_BPS,
    SYMBOL,
    TEXTS,
    asks,
    ceil_fee,
    check_settlement,
    conserved,
    spot_leases,
    start_node,
    stop,
    wait_until,
    write_config,
)
from server_harness import ServerProcess, connected

from providers.jobs import JobBudget, full_depth_flops, plan_inputs
from providers.runtime import run_job
from providers.tokens import TokenCounter


async def run_job_order(url: str, **fields: Any) -> tuple[dict[str, Any], list[Any]]:
    """Submit a job order as alice, wait for it to end; its last ``job``
    message and all its results. A ``get_job`` with ``wait`` sent at once is
    answered only with the ended job, with the same results."""
    async with connected(url, "alice") as alice:
        await alice.request("subscribe", channels=["jobs"])
        ack = await alice.request("submit_job", symbol=SYMBOL, inputs=TEXTS, **fields)
        assert ack["type"] == "ack", ack
        job_id = ack["job_id"]
        waiting = alice.next_id
        alice.next_id += 1
        await alice.ws.send(
            json.dumps({"op": "get_job", "id": waiting, "job_id": job_id, "wait": True})
        )
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            reply = await alice.request("get_job", job_id=job_id)
            if reply["job"]["status"] != "running":
                break
            assert asyncio.get_running_loop().time() < deadline, reply["job"]
            await asyncio.sleep(0.2)
        results: list[Any] = []
        offset: int | None = 0
        while offset is not None:
            page = await alice.request("get_job", job_id=job_id, offset=offset)
            results += page["results"]
            offset = page["next_offset"]
        waited = await alice.response(waiting)
        assert waited["job"]["status"] == reply["job"]["status"], waited["job"]
        assert waited["results"] == results[: len(waited["results"])]
        assert len(waited["results"]) == min(64, len(TEXTS))
        # On a job that has ended, ``wait`` answers at once.
        again = await alice.request("get_job", job_id=job_id, wait=True, limit=1)
        assert again["job"] == waited["job"] | {"ts": again["job"]["ts"]}
        return reply["job"], results


def test_a_job_order_filled_by_two_providers_runs_on_both_and_pays_each(
    tmp_path: Path, model: Any
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        cheap = start_node(server, "p1", "n1", cost_per_hour=0.5)
        dear = start_node(server, "p2", "n2", cost_per_hour=2.0)
        try:
            wait_until(lambda: len(asks(server)) == 2, what="two quotes")
            before = {k: account(server, k) for k in ("alice", "p1", "p2")}

            job, results = asyncio.run(
                run_job_order(server.url, budget_cu=1000, max_price=10**6)
            )

            after = {k: account(server, k) for k in ("alice", "p1", "p2")}
            nodes = server.get("/api/v1/nodes").body["nodes"]
        finally:
            logs = stop(cheap, dear)
    assert job["status"] == "done", (job, logs)

    # Results in input order, equal to one node running the whole job.
    tokens = TokenCounter().count(TEXTS)
    plans = plan_inputs(tokens, "exact", JobBudget(1000 * 10**9, sum_full(tokens)))
    reference = run_job(model, TEXTS).embeddings.numpy()
    got = np.array([r["embedding"] for r in results], dtype=np.float64)
    assert np.abs(got - reference).max() < 1e-4
    assert [r["tokens"] for r in results] == tokens
    assert job["flops"] == sum(p.flops for p in plans)

    # Both providers ran shards; each node's record says what it delivered.
    assert {n["node_id"]: n["reputation"]["shards_done"] > 0 for n in nodes} == {
        "n1": True,
        "n2": True,
    }
    delivered = [n["reputation"] for n in nodes]
    assert sum(r["flops_delivered"] for r in delivered) == job["flops"]
    assert all(r["delivered_cu_per_second"] > 0 for r in delivered)

    # Each provider paid exactly, per lease: price × CU used / lot_cu rounded
    # down, less its maker fee (5 bps, rounded up); the consumer paid that plus
    # its taker fees (10 bps of each trade, rounded up), got the rest of every
    # escrow back, and nothing else moved.
    leases = spot_leases(server.data)
    assert {lease.provider for lease in leases.values()} == {"p1", "p2"}
    assert {lease.state for lease in leases.values()} == {"used_up"}
    assert sum(lease.used for lease in leases.values()) == job["flops"]
    for lease in leases.values():
        assert 0 < lease.used <= lease.lots * LOT_CU * 10**9, lease
        assert lease.metered == lease.price * lease.used // (LOT_CU * 10**9)
    check_settlement(leases, job, before, after)
    earned = {p: after[p]["available"] - before[p]["available"] for p in ("p1", "p2")}
    assert earned == {
        p: sum(
            lease.metered - ceil_fee(lease.metered, MAKER_BPS)
            for lease in leases.values()
            if lease.provider == p
        )
        for p in ("p1", "p2")
    }
    assert all(e > 0 for e in earned.values())
    escrows = sum(lease.escrow for lease in leases.values())
    assert job["refund"] == escrows - sum(lease.metered for lease in leases.values())
    engine = conserved(server, config)
    assert not engine.ledger.escrows


def sum_full(tokens: list[int]) -> int:
    from providers.jobs import full_depth_flops

    return full_depth_flops(tokens)


def account(server: ServerProcess, key: str) -> dict[str, int]:
    body: dict[str, int] = server.get_signed(key, "/api/v1/account").body
    return body


def rest(
    server: ServerProcess, method: str, path: str, body: Any = None, key: str = "alice"
) -> tuple[int, Any]:
    """A signed REST request; its status and JSON body."""
    data = b"" if body is None else json.dumps(body).encode()
    stamp = str(time.time_ns())
    message = f"{stamp}\n{method}\n{path}" + (f"\n{data.decode()}" if data else "")
    signature = hmac.new(
        f"{key}-secret".encode(), message.encode(), hashlib.sha256
    ).hexdigest()
    request = urllib.request.Request(
        server.http + path,
        data=data or None,
        method=method,
        headers={
            "X-Cux-Key": key,
            "X-Cux-Timestamp": stamp,
            "X-Cux-Signature": signature,
            "Content-Type": "application/json",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_jobs_over_rest_submit_read_list_and_refuse_bad_requests(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path)
    with ServerProcess(config, tmp_path / "data") as server:
        only = start_node(server, "p1", "n1", max_cu=1.0)
        try:
            wait_until(lambda: asks(server), what="a quote")
            job = {
                "symbol": SYMBOL,
                "inputs": TEXTS[:5],
                "tier": "balanced",
                "budget_cu": 100,
                "max_price": 10**6,
            }

            status, created = rest(server, "POST", "/api/v1/jobs", job)
            assert status == 201, created
            path = f"/api/v1/jobs/{created['job_id']}"
            done = wait_until(
                lambda: rest(server, "GET", path)[1]["job"]["status"] != "running",
                what="the job",
            )
            _, page = rest(server, "GET", path + "?offset=3&limit=2")
            _, mine = rest(server, "GET", "/api/v1/jobs")
            _, recent = rest(server, "GET", "/api/v1/jobs/recent")
            refused: dict[str, Any] = {
                "another's job": rest(server, "GET", path, key="p1")[0],
                "unknown key": rest(server, "GET", path, key="mallory")[0],
                "unknown job": rest(server, "GET", "/api/v1/jobs/999")[0],
                "leading zero": rest(
                    server, "GET", f"/api/v1/jobs/0{created['job_id']}"
                )[0],
                "bad tier": rest(
                    server, "POST", "/api/v1/jobs", {**job, "tier": "best"}
                ),
                "float budget": rest(
                    server, "POST", "/api/v1/jobs", {**job, "budget_cu": 1.5}
                ),
                "not an object": rest(server, "POST", "/api/v1/jobs", [1])[0],
                "ended": rest(server, "DELETE", path)[0],
            }
        finally:
            stop(only)
    assert done
    assert page["job"]["status"] == "done"
    assert page["offset"] == 3
    assert page["next_offset"] is None
    assert [r["layers"] for r in page["results"]] == [3, 3]  # balanced: 3 of 6
    assert len(page["results"][0]["embedding"]) == 384
    assert [j["job_id"] for j in mine["jobs"]] == [created["job_id"]]
    assert "alice" not in json.dumps(recent)
    assert recent["jobs"][0]["job_id"] == created["job_id"]
    assert refused["another's job"] == 404  # p1 sees only its own jobs
    assert refused["unknown key"] == 401
    assert refused["unknown job"] == 404
    # Ids are spelt one way only: another spelling is malformed, as on the
    # websocket (INVALID_FIELD), not an unknown job.
    assert refused["leading zero"] == 400
    assert refused["bad tier"] == (400, refused["bad tier"][1])
    assert refused["bad tier"][1]["code"] == "UNKNOWN_TIER"
    assert refused["float budget"][0] == 400
    assert refused["float budget"][1]["code"] == "INVALID_FIELD"
    assert refused["not an object"] == 400
    assert refused["ended"] == 409


def test_a_job_whose_budget_affords_no_layer_is_refused_before_anything_is_bought(
    tmp_path: Path,
) -> None:
    """1,000 lines of about 60 characters cost far more than 5 CU for one layer
    each: without the check the job ran every input to 0 layers and the
    consumer paid the fee for nothing."""
    line = "the quick brown fox jumps over the lazy dog, twice"
    texts = [f"line {i}: {line}" for i in range(1000)]
    full = full_depth_flops(TokenCounter().count(texts))
    need, every_layer = -(-full // (6 * 10**9)), -(-full // 10**9)

    async def submit(url: str) -> dict[str, Any]:
        async with connected(url, "alice") as alice:
            return await alice.request(
                "submit_job", symbol=SYMBOL, inputs=texts, max_price=40, budget_cu=5
            )

    with ServerProcess(write_config(tmp_path), tmp_path / "data") as server:
        before = server.get("/health").body["seq"]
        reply = asyncio.run(submit(server.url))
        after = server.get("/health").body["seq"]

    assert reply["type"] == "error"
    assert reply["code"] == "BUDGET_TOO_SMALL"
    assert reply["message"] == (
        "budget_cu 5 affords no layer for 1000 of the 1000 inputs: one layer of "
        f"every input needs budget_cu {need} or more (all 6 layers of every "
        f"input: budget_cu {every_layer})"
    )
    assert after == before  # no job opened, no order placed
