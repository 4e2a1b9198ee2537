"""Crash safety: `cux serve` killed with SIGKILL loses nothing it acknowledged.

Three accounts stream places, cancels and amends at full speed, each over its
own websocket, to a real server process that takes a snapshot every 50
commands; the test kills the server at several points of the stream, holds
what the clients saw against the market rebuilt from the journal alone (with
the server's own market data code), restarts the server on the same data
folder and checks that it serves exactly that market. The checks never depend
on where exactly the kill landed: whatever a client heard of must be in the
journal, and whatever the journal holds is the market.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from crash_harness import (
    SYMBOL,
    TERMINAL,
    JournalMarket,
    Trader,
    get_json,
    kill_when,
    open_orders,
)
from journal_flow import engine_after, flip_byte, frame_offsets, segments
from server_harness import ROOT, Client, ServerProcess, write_config

from exchange.journal import read_records
from exchange.journal.format import FRAME_BYTES
from exchange.settings import load

ACCOUNTS = ("alice", "bob", "carol")
QUIET = ("--log-level", "WARNING")


def cux(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """Run ``python -m exchange`` to the end, as a user would run ``cux``."""
    return subprocess.run(
        [sys.executable, "-m", "exchange", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def replay_report(data: Path) -> dict[str, Any]:
    """``cux replay DATA --json``, which also checks the engine's invariants."""
    result = cux("replay", data, "--json")
    assert result.returncode == 0, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    return report


async def live_state(server: ServerProcess) -> dict[str, Any]:
    """The running server's seq and state hash, read through its sequencer."""
    health: dict[str, Any] = await get_json(f"{server.http}/health?state_hash=1")
    assert health["status"] == "ok"
    return health


# -- kill points -----------------------------------------------------------------


@dataclass(frozen=True)
class KillPoint:
    """When to kill the server: once ``reached(traders, data)`` is true (it
    looks only at the data folder if ``files_only``), or, with ``on_send``,
    from inside a trader right after the request it picks."""

    name: str
    reached: Callable[[list[Trader], Path], bool] | None = None
    on_send: Callable[[Trader], bool] | None = None
    files_only: bool = False


def after_acks(n: int) -> KillPoint:
    return KillPoint(
        f"after-{n}-acks", reached=lambda traders, _: sum(t.acks for t in traders) >= n
    )


def after_snapshot(seq: int) -> KillPoint:
    def reached(traders: list[Trader], data: Path) -> bool:
        return any(int(p.stem) >= seq for p in (data / "snapshots").glob("*.snap"))

    return KillPoint(
        f"right-after-the-snapshot-past-{seq}", reached=reached, files_only=True
    )


# Bob has sent five bursts and half of his sixth, none of it answered yet.
MID_BURST = KillPoint(
    "in-the-middle-of-a-burst",
    on_send=lambda t: t.account == "bob" and len(t.sent) == 5 * t.burst + t.burst // 2,
)


async def run_until_killed(
    server: ServerProcess, data: Path, kill_point: KillPoint, seed: int = 0
) -> list[Trader]:
    """Stream from every account until the kill point, kill; the traders."""
    killed = False

    def on_send(trader: Trader) -> None:
        nonlocal killed
        if not killed and kill_point.on_send is not None and kill_point.on_send(trader):
            server.proc.kill()
            killed = True

    def reached() -> bool:
        if kill_point.reached is None:
            return killed
        return kill_point.reached(traders, data)

    traders = [
        Trader(name, seed + i, on_send=on_send) for i, name in enumerate(ACCOUNTS)
    ]
    try:
        for trader in traders:
            await trader.connect(server.url)
        streams = asyncio.gather(*(trader.run() for trader in traders))
        await kill_when(server, reached, timeout=60, from_thread=kill_point.files_only)
        await asyncio.wait_for(streams, 60)
    finally:
        server.kill()
        for trader in traders:
            await trader.close()
    return traders


# -- what the clients saw against the journal ----------------------------------


def check_clients_heard_only_what_the_journal_holds(
    traders: list[Trader], journal: JournalMarket, since: int
) -> None:
    """Every message a client got is the journal's, in the journal's order, and
    every place, cancel and amend it got an ack for is in the journal."""
    for trader in traders:
        account = trader.account
        seen = trader.private()
        assert seen == journal.private_since(account, since)[: len(seen)], account
        assert trader.trades == journal.trades_since(since)[: len(trader.trades)]

        history = journal.history(account, since)
        for place in trader.acked("place"):
            first = history[place["order_id"]][0]
            assert first["status"] == "new"
            assert first["client_order_id"] == place["client_order_id"]
        for op, status in (("cancel", "cancelled"), ("amend", "amended")):
            for request in trader.acked(op):
                statuses = [m["status"] for m in history[request["order_id"]]]
                assert status in statuses, request


def check_open_orders_are_where_the_client_saw_them(
    trader: Trader, listed: list[dict[str, Any]], journal: JournalMarket, since: int
) -> None:
    """Each order is as the client last saw it, unless the journal holds later
    changes that the kill kept from the client."""
    open_now = {order["order_id"]: order for order in listed}
    history = journal.history(trader.account, since)
    heard: dict[str, int] = {}
    for message in trader.orders:
        heard[message["order_id"]] = heard.get(message["order_id"], 0) + 1

    for order_id, last in trader.last_seen().items():
        unheard = history[order_id][heard[order_id] :]
        if last["status"] in TERMINAL:
            assert order_id not in open_now, last
        elif not unheard:
            order = open_now[order_id]
            seen = (last["price"], last["filled"], last["leaves"])
            assert (order["price"], order["filled"], order["leaves"]) == seen


async def check_trading_goes_on(server: ServerProcess, trade_seq: int) -> None:
    """A crossing pair trades; the first trade since the (re)start has the next
    trade id after ``trade_seq``, the last one the journal holds."""
    seller, buyer = await Client.connect(server.url), await Client.connect(server.url)
    try:
        await seller.login("carol")
        await buyer.login("alice")
        await buyer.request("subscribe", channels=[f"trades.{SYMBOL}"])
        sell = await seller.request(
            "place", symbol=SYMBOL, side="sell", qty=1, price=900
        )
        buy = await buyer.request("place", symbol=SYMBOL, side="buy", qty=1, price=1100)
        assert (sell["type"], buy["type"]) == ("ack", "ack")
        first, *_ = await buyer.wait_for("trade", 1, timeout=30)
    finally:
        await seller.close()
        await buyer.close()
    assert first["trade_id"] == trade_seq + 1


async def check_restart(
    config: Path, data: Path, lives: list[tuple[int, list[Trader]]]
) -> None:
    """Check the journal against what the clients of each life (the seq it
    started at, its traders) saw; restart; check the market it serves."""
    journal = JournalMarket.read(data, config)
    for since, traders in lives:
        check_clients_heard_only_what_the_journal_holds(traders, journal, since)
    before = replay_report(data)
    assert before["state_hash"] == journal.engine.state_hash()

    server = ServerProcess(config, data, *QUIET)
    try:
        assert await live_state(server) == {
            "status": "ok",
            "seq": before["last_seq"],
            "state_hash": before["state_hash"],
        }
        since, traders = lives[-1]
        for trader in traders:
            listed, rest = await open_orders(server.http, server.url, trader.account)
            assert listed == rest == journal.open_orders(trader.account)
            check_open_orders_are_where_the_client_saw_them(
                trader, listed, journal, since
            )
        await check_trading_goes_on(server, journal.engine.trade_seq)
        after = await live_state(server)
    finally:
        status = server.stop()
    assert status == 0, "".join(server.output)

    # A graceful stop leaves a journal whose replay is the market it served.
    again = replay_report(data)
    assert (again["last_seq"], again["state_hash"]) == (
        after["seq"],
        after["state_hash"],
    )


# -- killed mid-stream -------------------------------------------------------------


@pytest.mark.parametrize(
    "kill_point",
    [after_acks(1), after_acks(250), after_acks(1200), MID_BURST, after_snapshot(400)],
    ids=lambda k: k.name,
)
async def test_a_server_killed_mid_stream_restarts_with_everything_it_acknowledged(
    tmp_path: Path, kill_point: KillPoint
) -> None:
    config = write_config(tmp_path, snapshot_every=50)
    data = tmp_path / "data"
    server = ServerProcess(config, data, *QUIET)
    since = (await live_state(server))["seq"]

    traders = await run_until_killed(server, data, kill_point)

    await check_restart(config, data, [(since, traders)])


async def test_a_server_journaling_in_its_writer_thread_killed_mid_burst_restarts_whole(
    tmp_path: Path,
) -> None:
    # The tests above use the default writer, a process of its own that dies
    # with the server; the writer thread is the other choice in the config.
    config = write_config(
        tmp_path, snapshot_every=50, server_extra='journal_writer = "thread"'
    )
    data = tmp_path / "data"
    server = ServerProcess(config, data, *QUIET)
    since = (await live_state(server))["seq"]

    traders = await run_until_killed(server, data, MID_BURST)

    await check_restart(config, data, [(since, traders)])


async def test_a_server_killed_again_soon_after_its_restart_loses_nothing_either(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path, snapshot_every=50)
    data = tmp_path / "data"
    lives = []
    for life in range(2):
        server = ServerProcess(config, data, *QUIET)
        since = (await live_state(server))["seq"]
        kill_point = after_acks(300) if life == 0 else after_snapshot(since + 150)
        traders = await run_until_killed(server, data, kill_point, seed=10 * life)
        lives.append((since, traders))

    await check_restart(config, data, lives)


async def test_a_server_killed_right_after_a_snapshot_that_ends_the_journal_restarts(
    tmp_path: Path,
) -> None:
    # A snapshot after every command: the last one holds the whole journal.
    config = write_config(tmp_path, snapshot_every=1)
    data = tmp_path / "data"
    server = ServerProcess(config, data, *QUIET)
    since = (await live_state(server))["seq"]
    traders = [Trader(name, seed) for seed, name in enumerate(ACCOUNTS)]
    try:
        for trader in traders:
            await trader.connect(server.url)
        await asyncio.gather(*(trader.run(bursts=2) for trader in traders))
        last = (await live_state(server))["seq"]
        snapshot = data / "snapshots" / f"{last:020d}.snap"
        await kill_when(server, snapshot.exists, timeout=60, from_thread=True)
    finally:
        server.kill()
        for trader in traders:
            await trader.close()

    assert list(read_records(data))[-1].seq == last
    await check_restart(config, data, [(since, traders)])


# -- a damaged journal -------------------------------------------------------------


async def traded_journal(tmp_path: Path) -> tuple[Path, Path]:
    """A data folder of one segment in which the accounts traded, ended by a
    crash (a clean stop would add a snapshot past any damage made later); its
    config."""
    config = write_config(tmp_path)
    data = tmp_path / "data"
    server = ServerProcess(config, data, *QUIET)
    traders = [Trader(name, seed) for seed, name in enumerate(ACCOUNTS)]
    try:
        for trader in traders:
            await trader.connect(server.url)
        await asyncio.gather(*(trader.run(bursts=3) for trader in traders))
    finally:
        for trader in traders:
            await trader.close()
        server.kill()
    assert len(segments(data)) == 1
    assert not (data / "snapshots").exists() or not any((data / "snapshots").iterdir())
    return data, config


async def test_a_last_record_cut_in_half_is_cut_off_and_the_server_starts_with_the_rest(
    tmp_path: Path,
) -> None:
    data, config = await traded_journal(tmp_path)
    records = list(read_records(data))
    expected = engine_after(records[:-1], load(config).market)
    [segment] = segments(data)
    *_, last, end = frame_offsets(segment)
    with segment.open("r+b") as file:
        file.truncate(last + (end - last) // 2)
    before = replay_report(data)

    server = ServerProcess(config, data, *QUIET)
    try:
        state = await live_state(server)
    finally:
        assert server.stop() == 0

    assert state["seq"] == before["last_seq"] == expected.seq == len(records) - 1
    assert state["state_hash"] == before["state_hash"] == expected.state_hash()
    cut = (end - last) // 2
    [warning] = [line for line in server.output if "WARNING" in line]
    said = f"journal {segment}: cut a torn tail of {cut} bytes at byte {last} ("
    assert said in warning
    assert segment.with_name(f"{segment.name}.torn-at-{last}").stat().st_size == cut


async def test_a_flipped_byte_in_the_middle_of_the_journal_stops_cux_serve_with_code_2(
    tmp_path: Path,
) -> None:
    data, config = await traded_journal(tmp_path)
    [segment] = segments(data)
    offsets = frame_offsets(segment)
    damaged = offsets[len(offsets) // 2]
    flip_byte(segment, damaged + FRAME_BYTES + 3)
    size = segment.stat().st_size

    result = cux("serve", "--config", config, "--data", data, "--port", "0")

    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.splitlines()[-1] == (
        f"cux serve: journal corrupt: {segment} at byte {damaged}: the record's "
        "CRC does not match"
    )
    assert "listening" not in result.stdout
    assert segment.stat().st_size == size


# -- what a restart forgets --------------------------------------------------------


async def test_the_recent_trades_of_rest_survive_a_restart(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    data = tmp_path / "data"
    path = f"/api/v1/trades/{SYMBOL}"
    candles = f"/api/v1/candles/{SYMBOL}?interval=60"
    server = ServerProcess(config, data, *QUIET)
    try:
        await check_trading_goes_on(server, trade_seq=0)
        before = await get_json(server.http + path)
        candles_before = await get_json(server.http + candles)
    finally:
        assert server.stop() == 0

    server = ServerProcess(config, data, *QUIET)
    try:
        after = await get_json(server.http + path)
        candles_after = await get_json(server.http + candles)
    finally:
        assert server.stop() == 0

    assert len(before["trades"]) == 1
    assert after == before
    assert len(candles_before["candles"]) == 1
    assert candles_after == candles_before
