"""Jobs end to end: jobs per second, latency, and the time spent outside the model.

Run it by hand, never as a timed test:

    .venv/bin/python -m bench.dispatch_bench          # 40 jobs, 1 then 4 at a time
    .venv/bin/python -m bench.dispatch_bench --jobs 10 --inputs 4

It starts ``cux serve`` and two ``cux node`` processes (one torch thread each)
on loopback, then a consumer submits small job orders (``--inputs`` short
sentences, full depth) one at a time, then ``--concurrency`` at a time, and
measures for each job the time from sending ``submit_job`` to reading the
``done`` message on the ``jobs`` channel, and to reading all its results (a
``get_job`` with ``wait`` sent after the ack, as `clients.Client.wait_job`
does). The share outside the model
is ``1 − (the nodes' reported run time) / (the job's end-to-end time)``: the
exchange, dispatch, the websocket round trips, serialisation and settlement.
Messages are decoded with msgspec, as the SDK decodes them.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[server]
heartbeat_seconds = 2
fsync = "{fsync}"

[[classes]]
name = "emb"
lot_cu = 10
tick = 1
taker_fee_bps = 10

[[accounts]]
key = "alice"
secret = "alice-secret"
deposit = 1_000_000_000_000
roles = ["consumer"]

[[accounts]]
key = "p1"
secret = "p1-secret"
roles = ["provider"]

[[accounts]]
key = "p2"
secret = "p2-secret"
roles = ["provider"]
"""


def sentence(i: int) -> str:
    return f"Job input {i}: a short sentence about renting compute by the lot."


async def one_job(
    ws: aiohttp.ClientWebSocketResponse,
    rid: int,
    inputs: int,
    done: dict[str, asyncio.Future[dict[str, Any]]],
    acks: dict[int, asyncio.Future[dict[str, Any]]],
) -> tuple[float, float, int]:
    """Submit one job order; the seconds to its ``done`` and to its results,
    and the nodes' time (ns)."""
    loop = asyncio.get_running_loop()
    acks[rid] = loop.create_future()
    start = time.perf_counter()
    await ws.send_str(
        json.dumps(
            {
                "op": "submit_job",
                "id": rid,
                "symbol": "emb-SPOT",
                "inputs": [sentence(rid * 100 + k) for k in range(inputs)],
                "budget_cu": 100,
                "max_price": 10**9,
            }
        )
    )
    ack = await acks[rid]
    del acks[rid]
    assert ack["type"] == "ack", ack
    job_id = ack["job_id"]
    # The results: a get_job that the server answers when the job has ended.
    read = rid + 1_000_000
    acks[read] = loop.create_future()
    await ws.send_str(
        json.dumps(
            {
                "op": "get_job",
                "id": read,
                "job_id": job_id,
                "limit": inputs,
                "wait": True,
            }
        )
    )
    message = await done.setdefault(job_id, loop.create_future())
    assert message["status"] == "done", message
    page = await acks[read]
    del acks[read]
    assert page["type"] == "result", page
    assert page["job"]["status"] == "done", page["job"]
    assert len(page["results"]) == inputs, page["job"]
    assert all(page["results"]), page["job"]
    node_ns = int(message.get("node_wall_ns", 0))
    return message["_at"] - start, page["_at"] - start, node_ns


async def consumer(url: str, jobs: int, inputs: int, concurrency: int) -> list[Any]:
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        hello = json.loads((await ws.receive()).data)
        signature = hmac.new(
            b"alice-secret", hello["nonce"].encode(), hashlib.sha256
        ).hexdigest()
        await ws.send_str(
            json.dumps({"op": "login", "id": 1, "key": "alice", "signature": signature})
        )
        await ws.send_str(
            json.dumps({"op": "subscribe", "id": 2, "channels": ["jobs"]})
        )
        done: dict[str, asyncio.Future[dict[str, Any]]] = {}
        acks: dict[int, asyncio.Future[dict[str, Any]]] = {}

        async def read() -> None:
            async for frame in ws:
                message = decode(frame.data)
                message["_at"] = time.perf_counter()
                if message.get("type") == "job" and message["status"] != "running":
                    future = done.setdefault(
                        message["job_id"], asyncio.get_running_loop().create_future()
                    )
                    if not future.done():
                        future.set_result(message)
                elif message.get("id") in acks:
                    acks[message["id"]].set_result(message)

        reader = asyncio.create_task(read())
        await asyncio.sleep(0.2)
        ids = iter(range(10, 10 + jobs))
        results: list[Any] = []

        async def worker() -> None:
            for rid in ids:
                results.append(await one_job(ws, rid, inputs, done, acks))

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
        reader.cancel()
        return [elapsed, results]


decode = msgspec.json.Decoder(dict[str, Any]).decode


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[str]:
    """Start ``cux`` with ``args``, its output going to ``log``."""
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "exchange", *args],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )


def wait_for_port(log: Path, timeout: float = 30) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = re.search(r"listening on http://[\d.]+:(\d+)", log.read_text())
        if found:
            return int(found.group(1))
        time.sleep(0.1)
    raise RuntimeError("cux serve did not start:\n" + log.read_text())


def report(label: str, elapsed: float, results: list[tuple[float, float, int]]) -> None:
    print(f"{label}: {len(results) / elapsed:.2f} jobs/s")
    for name, k in (("to done", 0), ("to results", 1)):
        latencies = sorted(r[k] for r in results)
        outside = [1 - (r[2] / 1e9) / r[k] for r in results]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"  {name:<11} latency p50 {statistics.median(latencies) * 1000:7.1f} ms"
            f"  p99 {p99 * 1000:7.1f} ms   outside the model "
            f"{statistics.median(outside) * 100:5.1f}% (median)"
        )


def wait_for_quotes(url: str, levels: int, timeout: float = 120) -> None:
    """Wait until the spot book shows ``levels`` ask levels (one per node)."""
    book = url.replace("ws://", "http://").removesuffix("/ws") + "/api/v1/book/emb-SPOT"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(book, timeout=5) as answer:
            if len(json.loads(answer.read())["asks"]) >= levels:
                return
        time.sleep(0.2)
    raise RuntimeError("the nodes did not quote in time")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=40)
    parser.add_argument("--inputs", type=int, default=8)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument(
        "--fsync",
        choices=("batch", "interval", "none"),
        default="batch",
        help="the journal's fsync policy (default: batch, the server's default)",
    )
    args = parser.parse_args(argv)

    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    with tempfile.TemporaryDirectory(prefix="cux-bench-") as tmp:
        config = Path(tmp) / "cux.toml"
        config.write_text(CONFIG.format(fsync=args.fsync), encoding="utf-8")
        logs = Path(tmp)
        server = start(
            ["serve", "--config", str(config), "--data", f"{tmp}/data", "--port", "0"],
            env,
            logs / "serve.log",
        )
        procs = [server]
        try:
            url = f"ws://127.0.0.1:{wait_for_port(logs / 'serve.log')}/ws"
            # Different costs, so that the two quotes are two price levels.
            for key, cost in (("p1", "0.10"), ("p2", "0.20")):
                procs.append(
                    start(
                        [
                            "node",
                            "--exchange",
                            url,
                            "--key",
                            key,
                            "--secret",
                            f"{key}-secret",
                            "--class",
                            "emb",
                            "--lot-cu",
                            "10",
                            "--node-id",
                            key,
                            "--probe-seconds",
                            "1",
                            "--cost-per-hour",
                            cost,
                        ],
                        env,
                        logs / f"{key}.log",
                    )
                )
            wait_for_quotes(url, 2)  # the nodes load the model, probe and quote
            print(
                f"{args.jobs} job orders of {args.inputs} short inputs each, "
                "two nodes, one torch thread each"
            )
            for concurrency in (1, args.concurrency):
                elapsed, results = asyncio.run(
                    consumer(url, args.jobs, args.inputs, concurrency)
                )
                report(f"{concurrency} at a time", elapsed, results)
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
