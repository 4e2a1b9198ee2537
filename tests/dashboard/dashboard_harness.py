"""The dashboard of a real `cux serve` in headless Chromium, and a market to show.

`open_dashboard` launches Debian's Chromium (``/usr/bin/chromium``) through
Playwright's ``executable_path``, never a browser that Playwright downloads,
loads the page and waits until the page says it shows the live instrument
(``#app[data-ready="<symbol>"]``). It records every console error, page error,
failed request and HTTP error answer, for the tests to assert there are none.

`populate` makes a busy market: provider nodes, a book on both sides, trades
spread over some seconds, batch auctions and a futures trade. Run as a script,
this module starts a server, populates it and writes the screenshot that the
docs show:

    .venv/bin/python tests/dashboard/dashboard_harness.py docs/dashboard.png
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import sys
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_EXCHANGE_TESTS = str(Path(__file__).resolve().parents[1] / "exchange")
if _EXCHANGE_TESTS not in sys.path:  # when run as a script
    sys.path.append(_EXCHANGE_TESTS)

from playwright.async_api import (  # noqa: E402
    Browser,
    ConsoleMessage,
    Page,
    Request,
    Response,
    async_playwright,
)
from server_harness import Client, ServerProcess, connected, write_config  # noqa: E402

CHROMIUM = Path("/usr/bin/chromium")
"""Debian's Chromium; `scripts/test` installs it where it is missing."""

CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)

WAIT_MS = 15_000
"""How long a wait for the page gives up after, in ms (a deadline to fail by,
not a speed the test asserts)."""

GPU_CLASS = """
[[classes]]
name = "gpu"
lot_cu = 1000
tick = 10
taker_fee_bps = 25
maker_fee_bps = 10
spot_phase = "batch"
batch_interval_ms = 500
futures = { list_ahead_hours = 3, gate_seconds = 300, closing_call_seconds = 60 }
"""
"""A second class for a busy market: spot in batch auctions, hourly futures."""


@dataclass
class Dashboard:
    """A loaded dashboard page and what went wrong in it so far."""

    page: Page
    problems: list[str] = field(default_factory=list)

    async def wait_ready(self, symbol: str) -> None:
        """Wait until the page shows ``symbol`` live: book snapshot, channels
        subscribed, recent history loaded."""
        await self.page.wait_for_selector(
            f'#app[data-ready="{symbol}"]', state="attached", timeout=WAIT_MS
        )


def chromium_missing_message() -> str | None:
    """Why the browser tests cannot run here, or None when they can."""
    if CHROMIUM.exists():
        return None
    return (
        f"Chromium is missing: {CHROMIUM} does not exist. The dashboard tests "
        "drive Debian's Chromium; install it with "
        "`apt-get install -y chromium chromium-driver` (scripts/test does)."
    )


@contextlib.asynccontextmanager
async def launch_browser() -> AsyncIterator[Browser]:
    """Debian's headless Chromium, for the length of the block.

    Raises:
        RuntimeError: Chromium is not installed (`chromium_missing_message`).
    """
    missing = chromium_missing_message()
    if missing is not None:
        raise RuntimeError(missing)
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS)
        )
        try:
            yield browser
        finally:
            await browser.close()


@contextlib.asynccontextmanager
async def open_dashboard(
    browser: Browser,
    http: str,
    symbol: str,
    *,
    width: int = 1440,
    height: int = 1100,
    before_load: Callable[[Page], Awaitable[None]] | None = None,
) -> AsyncIterator[Dashboard]:
    """The dashboard at ``http`` (the server's base URL) showing ``symbol``,
    ready, in a fresh browser context for the length of the block.
    ``before_load``, if given, is awaited with the page before it loads (to
    route its websocket, say)."""
    context = await browser.new_context(viewport={"width": width, "height": height})
    try:
        page = await context.new_page()
        dashboard = Dashboard(page)
        _watch(page, dashboard.problems)
        if before_load is not None:
            await before_load(page)
        await page.goto(f"{http}/#{symbol}", timeout=WAIT_MS)
        await dashboard.wait_ready(symbol)
        yield dashboard
    finally:
        await context.close()


def _watch(page: Page, problems: list[str]) -> None:
    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            problems.append(f"console error: {message.text}")

    def failed(request: Request) -> None:
        problems.append(f"request failed: {request.url} ({request.failure})")

    def answered(response: Response) -> None:
        if response.status >= 400:
            problems.append(f"HTTP {response.status}: {response.url}")

    page.on("console", console)
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("requestfailed", failed)
    page.on("response", answered)


# -- a busy market ----------------------------------------------------------------


async def populate(
    server: ServerProcess, *, seconds: float, seed: int = 7
) -> contextlib.AsyncExitStack:
    """Make a busy market on ``server`` (configured with `GPU_CLASS`): nodes, a
    two-sided cpu book, cpu trades spread over ``seconds``, gpu batch auctions
    and a trade in the last listed gpu future. The nodes stay connected until
    the returned stack is closed."""
    stack = contextlib.AsyncExitStack()
    bob = await stack.enter_async_context(connected(server.url, "bob"))
    carol = await stack.enter_async_context(connected(server.url, "carol"))
    alice = await stack.enter_async_context(connected(server.url, "alice"))
    for owner, node_id, name, milli in (
        (bob, "cpu-node-1", "cpu", 400_000),
        (carol, "gpu-node-1", "gpu", 200_000),
        (carol, "gpu-node-2", "gpu", 150_000),
    ):
        reply = await owner.request(
            "register_node",
            node_id=node_id,
            resource_class=name,
            cu_per_second_milli=milli,
            model="all-MiniLM-L6-v2",
            tiers={"exact": {"cu_fraction": 1.0}, "fast": {"cu_fraction": 0.4}},
        )
        assert reply["type"] == "ack", reply

    last = await _cpu_trades(alice, bob, seconds, random.Random(seed))
    await _cpu_ladder(alice, bob, last)
    await _gpu(alice, carol, server)
    return stack


async def _ok(client: Client, **fields: Any) -> None:
    reply = await client.request("place", **fields)
    assert reply["type"] == "ack", reply


async def _cpu_trades(
    alice: Client, bob: Client, seconds: float, rng: random.Random
) -> int:
    """Trades on a random walk from 1,500 µcr per lot, the taker side
    alternating; the last price."""
    steps = 40
    price = 1500
    for step in range(steps):
        price = max(1000, price + rng.choice((-12, -6, -3, 0, 4, 7, 11)))
        qty = rng.randint(1, 12)
        maker, taker = (bob, alice) if step % 2 else (alice, bob)
        maker_side, taker_side = ("sell", "buy") if step % 2 else ("buy", "sell")
        await _ok(maker, symbol="cpu-SPOT", side=maker_side, qty=qty, price=price)
        await _ok(
            taker, symbol="cpu-SPOT", side=taker_side, qty=qty, price=price, tif="IOC"
        )
        if seconds:
            await asyncio.sleep(seconds / steps)
    return price


async def _cpu_ladder(alice: Client, bob: Client, last: int) -> None:
    """Ten resting levels on each side of the last cpu price."""
    for i in range(1, 11):
        ask, bid = last + 4 + 5 * i, last - 4 - 5 * i
        await _ok(bob, symbol="cpu-SPOT", side="sell", qty=3 * i + i % 4, price=ask)
        await _ok(alice, symbol="cpu-SPOT", side="buy", qty=2 * i + i % 3, price=bid)


async def _gpu(alice: Client, carol: Client, server: ServerProcess) -> None:
    """Orders for the gpu spot auctions, and a trade in the last gpu future."""
    await _ok(carol, symbol="gpu-SPOT", side="sell", qty=20, price=24_000)
    await _ok(alice, symbol="gpu-SPOT", side="buy", qty=8, price=24_500)
    listed = server.get("/api/v1/instruments").body["instruments"]
    futures = sorted(
        (i for i in listed if i["kind"] == "future"), key=lambda i: i["start"]
    )
    if futures:
        symbol = futures[-1]["symbol"]
        await _ok(carol, symbol=symbol, side="sell", qty=40, price=21_000)
        await _ok(alice, symbol=symbol, side="buy", qty=15, price=21_000)
        await _ok(alice, symbol=symbol, side="buy", qty=10, price=20_500)


# -- the screenshot -----------------------------------------------------------------


async def screenshot(path: Path) -> None:
    """Start a server, make a busy market and save the dashboard's picture."""
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        config = write_config(folder, extra=GPU_CLASS)
        with ServerProcess(config, folder / "data") as server:
            stack = await populate(server, seconds=30)
            async with (
                stack,
                launch_browser() as browser,
                open_dashboard(browser, server.http, "cpu-SPOT") as dashboard,
            ):
                # Let the trades animation settle and the chart draw.
                await dashboard.page.wait_for_timeout(1500)
                await dashboard.page.screenshot(path=str(path), full_page=True)
                if dashboard.problems:
                    raise RuntimeError("\n".join(dashboard.problems))


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/dashboard.png")
    asyncio.run(screenshot(target))
    print(f"wrote {target}")
