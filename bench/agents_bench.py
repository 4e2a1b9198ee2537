"""The agents as load: market makers and consumers against a real ``cux serve``.

Run it by hand, never as a timed test:

    .venv/bin/python -m bench.agents_bench       # 2 makers, 8 consumers, 20 s
    .venv/bin/python -m bench.agents_bench --makers 4 --consumers 32 --rate 4

It starts ``cux serve`` on a loopback port with a market of one class (``cpu``,
100-CU lots), then runs `clients.agents.run_agents` in this process: market
makers (providers) quoting ``cpu-SPOT`` around the real GPU price series (an
H100's hourly price, per lot at ``--cu-per-second``), and
consumers in their trading-only mode (``mode="order"``: each planned job becomes
the IOC buy a job order would make, so no node and no model are needed), for
``--duration`` seconds. It prints what they did: requests per second (orders,
amends and cancels of the makers, the consumers' buys), trades per second (read
on the public ``trades.cpu-SPOT`` channel), jobs done (none in this mode: a job
needs a node) and the acknowledged latency of every agent request (from sending
it to reading its answer, through the SDK).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from clients import Client
from clients.agents import (
    ConsumerConfig,
    LotPricer,
    MakerConfig,
    SdkVenue,
    connect_venue,
    load_gpu_prices,
)
from clients.agents.run import Credentials, run_agents, willingness
from clients.messages import TradeMessage

ROOT = Path(__file__).resolve().parents[1]
SYMBOL = "cpu-SPOT"

CONFIG = """
[server]
fsync = "batch"
rate_limit = 100000

[[classes]]
name = "cpu"
lot_cu = 100
tick = 1
taker_fee_bps = 10
maker_fee_bps = 0
"""

ACCOUNT = """
[[accounts]]
key = "{key}"
secret = "{key}-secret"
deposit = 1_000_000_000_000
roles = {roles}
{capacity}
"""


def write_config(folder: Path, makers: int, consumers: int) -> Path:
    parts = [CONFIG]
    for i in range(makers):
        parts.append(
            ACCOUNT.format(
                key=f"mm{i}",
                roles='["consumer", "provider"]',
                capacity="capacity = { cpu-SPOT = 1000000000 }",
            )
        )
    for i in range(consumers):
        parts.append(ACCOUNT.format(key=f"c{i}", roles='["consumer"]', capacity=""))
    path = folder / "cux.toml"
    path.write_text("".join(parts), encoding="utf-8")
    return path


class Server:
    """``cux serve`` as a child process on a free loopback port."""

    def __init__(self, config: Path, data: Path) -> None:
        self.proc = subprocess.Popen(
            [
                *(sys.executable, "-m", "exchange", "serve"),
                *("--config", str(config), "--data", str(data), "--port", "0"),
            ],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            found = re.search(r"listening on http://[\d.]+:(\d+)", line)
            if found:
                self.url = f"ws://127.0.0.1:{found.group(1)}/ws"
                break
        else:
            raise RuntimeError("cux serve did not start")
        # Keep reading its output, so that it never blocks on a full pipe.
        self._drain = asyncio.get_running_loop().run_in_executor(
            None, self.proc.stdout.read
        )

    async def stop(self) -> None:
        self.proc.terminate()
        await asyncio.to_thread(self.proc.wait, 30)
        await self._drain


class TimedVenue(SdkVenue):
    """An `SdkVenue` that records how long each request took to be answered."""

    def __init__(self, client: Client, latencies: list[int]) -> None:
        super().__init__(client)
        self.latencies = latencies

    async def _timed(self, call: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return await call
        finally:
            self.latencies.append(time.perf_counter_ns() - start)

    async def place(self, **order: Any) -> str:
        result: str = await self._timed(super().place(**order))
        return result

    async def amend(
        self, order_id: str, *, qty: int | None = None, price: int | None = None
    ) -> None:
        await self._timed(super().amend(order_id, qty=qty, price=price))

    async def cancel_all(self, symbol: str | None = None) -> int:
        result: int = await self._timed(super().cancel_all(symbol))
        return result


async def count_trades(url: str, counted: list[int], ready: asyncio.Event) -> None:
    async with Client(url) as watcher:
        trades = await watcher.subscribe(f"trades.{SYMBOL}")
        ready.set()
        async for message in trades:
            if isinstance(message, TradeMessage):
                counted[0] += 1


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    """Run the agents for ``args.duration`` seconds; the figures."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config = write_config(folder, args.makers, args.consumers)
        server = Server(config, folder / "data")
        try:
            return await _run(args, server.url)
        finally:
            await server.stop()


async def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    # Lots priced at a CPU node's throughput: at an H100's, 100 CU cost under
    # one tick (1 µcr) and every price would be the same.
    milli = round(args.cu_per_second * 1000)
    pricer = LotPricer(load_gpu_prices(), lot_cu=100, cu_per_second_milli=milli)
    makers = [
        (
            Credentials(f"mm{i}", f"mm{i}-secret"),
            MakerConfig(
                name=f"mm{i}",
                symbol=SYMBOL,
                size=args.size,
                spread_bps=args.spread_bps,
                refresh_seconds=args.refresh,
            ),
        )
        for i in range(args.makers)
    ]
    factors = willingness(args.consumers, 10_000, 1_000, args.seed)
    consumers = [
        (
            Credentials(f"c{i}", f"c{i}-secret"),
            ConsumerConfig(
                name=f"c{i}",
                symbol=SYMBOL,
                lot_cu=100,
                rate_per_second=args.rate,
                willingness_bps=factor,
                seed=args.seed + 1 + i,
                mode="order",
            ),
        )
        for i, factor in enumerate(factors)
    ]
    latencies: list[int] = []

    @contextlib.asynccontextmanager
    async def connect(
        url: str, key: str, secret: str, *, seed: int | None = None
    ) -> AsyncIterator[TimedVenue]:
        async with connect_venue(url, key, secret, seed=seed) as venue:
            yield TimedVenue(venue.client, latencies)

    trades = [0]
    watching = asyncio.Event()
    watcher = asyncio.create_task(count_trades(url, trades, watching))
    await watching.wait()
    stop = asyncio.Event()
    asyncio.get_running_loop().call_later(args.duration, stop.set)
    start = time.perf_counter()
    stats = await run_agents(
        url, pricer, makers=makers, consumers=consumers, stop=stop, connect=connect
    )
    elapsed = time.perf_counter() - start
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    return _figures(stats, latencies, trades[0], elapsed)


def _figures(
    stats: dict[str, Any], latencies: list[int], trades: int, elapsed: float
) -> dict[str, Any]:
    makers = [s for s in stats.values() if "placed" in s]
    consumers = [s for s in stats.values() if "submitted" in s]
    requests = len(latencies)
    ms = sorted(n / 1e6 for n in latencies)

    def pct(q: float) -> float:
        return ms[min(len(ms) - 1, int(q * len(ms)))] if ms else 0.0

    return {
        "seconds": round(elapsed, 2),
        "makers": len(makers),
        "consumers": len(consumers),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "maker_orders": sum(s["placed"] + s["amended"] for s in makers),
        "consumer_orders": sum(s["submitted"] for s in consumers),
        "consumer_accepted": sum(s["accepted"] for s in consumers),
        "trades": trades,
        "trades_per_s": round(trades / elapsed, 1),
        "jobs_done": sum(
            list(s["jobs"].values()).count("done") for s in consumers if s["jobs"]
        ),
        "ack_ms_p50": round(statistics.median(ms), 2) if ms else 0.0,
        "ack_ms_p99": round(pct(0.99), 2),
        "ack_ms_max": round(ms[-1], 2) if ms else 0.0,
        "refused": _refused(stats),
    }


def _refused(stats: dict[str, Any]) -> dict[str, int]:
    total: dict[str, int] = {}
    for s in stats.values():
        for code, count in s["refused"].items():
            total[code] = total.get(code, 0) + count
    return total


def report(figures: dict[str, Any]) -> str:
    f = figures
    return "\n".join(
        [
            f"{f['makers']} makers, {f['consumers']} consumers (order mode), "
            f"{f['seconds']} s",
            "| requests/s | trades/s | jobs done | ack p50 ms | ack p99 ms "
            "| ack max ms |",
            "|---|---|---|---|---|---|",
            f"| {f['requests_per_s']} | {f['trades_per_s']} | {f['jobs_done']} "
            f"| {f['ack_ms_p50']} | {f['ack_ms_p99']} | {f['ack_ms_max']} |",
            f"requests: {f['requests']} (maker orders and amends "
            f"{f['maker_orders']}, consumer buys {f['consumer_orders']}, "
            f"{f['consumer_accepted']} accepted); trades: {f['trades']}; "
            f"refused: {f['refused'] or 'none'}",
        ]
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.agents_bench")
    p.add_argument("--makers", type=int, default=2)
    p.add_argument("--consumers", type=int, default=8)
    p.add_argument("--duration", type=float, default=20.0, help="seconds")
    p.add_argument("--rate", type=float, default=2.0, help="buys a second each")
    p.add_argument("--size", type=int, default=50, help="a maker's lots a side")
    p.add_argument("--spread-bps", type=int, default=200)
    p.add_argument("--refresh", type=float, default=0.5, help="maker, seconds")
    p.add_argument(
        "--cu-per-second",
        type=float,
        default=1.0,
        help="the throughput a lot is priced at (default: 1 CU/s, a CPU node)",
    )
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    figures = asyncio.run(bench(args))
    print(report(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
