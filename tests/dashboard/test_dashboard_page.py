"""The web dashboard of a real `cux serve`, in headless Chromium.

The page loads with no console error, shows a trade that the test makes over
the websocket (in the trades, the last price and the price chart), shows and
removes the book level of an order the test places and cancels, subscribes
again when its book updates have a gap, shows the indicative price of a call
phase until its auction, shows a node's utilisation and reputation as its
shards run, shows nodes, futures windows and auctions of a busy market, and
reconnects after a server restart. Each test watches an instrument of its own
(a "desk"), so that the tests share one server.
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
import socket
import time
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import pytest_asyncio
from dashboard_harness import (
    GPU_CLASS,
    WAIT_MS,
    chromium_missing_message,
    launch_browser,
    open_dashboard,
    populate,
)
from playwright.async_api import Browser, Page, Route, WebSocketRoute, expect
from server_harness import Client, ServerProcess, connected, desk_config, write_config

from providers.jobs import JobBudget, plan_inputs
from providers.metering import FLOPS_PER_CU, MINILM_L6
from providers.tokens import TokenCounter

pytestmark = pytest.mark.asyncio(loop_scope="module")

DESKS = ("quiet", "tape", "depth", "gap", "call", "fleet")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("dashboard")
    extra = GPU_CLASS + "".join(desk_config(name) for name in DESKS)
    with ServerProcess(write_config(folder, extra=extra), folder / "data") as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    missing = chromium_missing_message()
    if missing is not None:
        pytest.fail(missing)
    async with launch_browser() as browser:
        yield browser


CHART_COLOURS = """() => {
  const canvas = document.getElementById("chart");
  const { width, height } = canvas;
  const { data } = canvas.getContext("2d").getImageData(0, 0, width, height);
  const colours = { up: [47, 208, 127], down: [255, 92, 108], last: [90, 169, 255] };
  const counts = { up: 0, down: 0, last: 0 };
  for (let i = 0; i < data.length; i += 4) {
    if (!data[i + 3]) continue;
    for (const [name, [r, g, b]] of Object.entries(colours)) {
      const off = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g);
      if (off + Math.abs(data[i + 2] - b) < 12) counts[name] += 1;
    }
  }
  return counts;
}"""
"""How many pixels of the price chart have the colour of a rising candle, a
falling one and the last price's line (`exchange/dashboard/chart.js`)."""


async def chart_colours(
    page: Page, until: Callable[[dict[str, int]], bool] | None = None
) -> dict[str, int]:
    """The `CHART_COLOURS` counts, once ``until`` holds for them if given or
    `WAIT_MS` has passed (the page's policy runs no script from a string, so
    the test polls rather than `Page.wait_for_function`)."""
    deadline = time.monotonic() + WAIT_MS / 1000
    while True:
        counts: dict[str, int] = await page.evaluate(CHART_COLOURS)
        if until is None or until(counts) or time.monotonic() > deadline:
            return counts
        await asyncio.sleep(0.05)


# -- serving --------------------------------------------------------------------


async def test_the_page_and_its_files_are_served_with_a_same_origin_policy(
    server: ServerProcess,
) -> None:
    with urllib.request.urlopen(server.http + "/", timeout=10) as response:
        policy = response.headers["Content-Security-Policy"]
        html = response.read().decode()
    script = server.get("/dashboard/app.js")
    missing = server.get("/dashboard/nothing.js")
    dotted = server.get("/dashboard/.hidden.js")
    features = server.get("/dashboard/features.json")
    jobs_route = server.get("/api/v1/jobs/recent")

    assert '<script type="module" src="/dashboard/app.js"' in html
    assert "default-src 'self'" in policy
    assert "connect-src 'self'" in policy
    assert script.status == 200
    assert script.content_type.startswith("text/javascript")
    assert missing.status == 404
    assert dotted.status == 404
    assert features.status == 200
    assert features.body == {"jobs_recent": jobs_route.status == 200}


# -- the page -------------------------------------------------------------------


async def test_the_dashboard_loads_with_no_console_error_and_lists_every_instrument(
    server: ServerProcess, browser: Browser
) -> None:
    listed = server.get("/api/v1/instruments").body["instruments"]

    async with open_dashboard(browser, server.http, "quiet-SPOT") as dashboard:
        page = dashboard.page
        buttons = page.locator("#instrument-list button[data-symbol]")
        await expect(buttons).to_have_count(len(listed), timeout=WAIT_MS)
        symbols = await buttons.evaluate_all("bs => bs.map(b => b.dataset.symbol)")
        await expect(page.locator("#symbol")).to_have_text("quiet-SPOT")
        await expect(page.locator("#conn")).to_have_text("live")
        await expect(page.locator("#book-state")).to_contain_text("checksum ok")
        await expect(page.locator("#trades-empty")).to_be_visible()
        await expect(page.locator("#bids")).to_have_text("no bids")
        futures = page.locator("#futures tr")
        await expect(futures).to_have_count(
            sum(i["kind"] == "future" for i in listed), timeout=WAIT_MS
        )

    assert sorted(symbols) == sorted(i["symbol"] for i in listed)
    assert dashboard.problems == []


async def test_a_trade_made_over_the_websocket_shows_in_the_trades_and_last_price(
    server: ServerProcess, browser: Browser
) -> None:
    async with (
        open_dashboard(browser, server.http, "tape-SPOT") as dashboard,
        connected(server.url, "tape-seller") as seller,
        connected(server.url, "tape-buyer") as buyer,
    ):
        page = dashboard.page
        blank = await chart_colours(page)
        sell = await seller.request(
            "place", symbol="tape-SPOT", side="sell", qty=3, price=1234
        )
        buy = await buyer.request(
            "place", symbol="tape-SPOT", side="buy", qty=3, price=1234
        )

        trade = page.locator("#trades tr", has_text="1,234")
        await expect(trade).to_have_count(1, timeout=WAIT_MS)
        await expect(trade.locator("td")).to_have_text(
            [re.compile(r"^\d\d:\d\d:\d\d$"), "1,234", "3", "buy"]
        )
        await expect(page.locator("#last-price")).to_contain_text("1,234 µcr")
        await expect(page.locator("#last-price")).to_contain_text("0.001234 cr")
        await expect(page.locator("#trades-empty")).to_be_hidden()
        # One trade: one candle, open = close (so drawn "up"), and the last
        # price marked across the chart.
        drawn = await chart_colours(page, until=lambda counts: counts["up"] > 0)

    assert sell["type"] == "ack", sell
    assert buy["type"] == "ack", buy
    assert blank == {"up": 0, "down": 0, "last": 0}
    assert drawn["up"] > 0
    assert drawn["down"] == 0
    assert drawn["last"] > 0
    assert dashboard.problems == []


async def test_a_resting_order_shows_as_a_book_level_until_it_is_cancelled(
    server: ServerProcess, browser: Browser
) -> None:
    async with (
        open_dashboard(browser, server.http, "depth-SPOT") as dashboard,
        connected(server.url, "depth-buyer") as buyer,
    ):
        page = dashboard.page
        level = page.locator('#bids [data-side="bid"][data-price="2100"]')

        first = await buyer.request(
            "place", symbol="depth-SPOT", side="buy", qty=7, price=2100
        )
        await expect(level).to_have_attribute("data-qty", "7", timeout=WAIT_MS)
        await expect(level).to_contain_text("2,100")
        await expect(page.locator("#best-bid")).to_contain_text("2,100 µcr")

        second = await buyer.request(
            "place", symbol="depth-SPOT", side="buy", qty=5, price=2100
        )
        await expect(level).to_have_attribute("data-qty", "12", timeout=WAIT_MS)

        await buyer.request("cancel_all", symbol="depth-SPOT")
        await expect(level).to_have_count(0, timeout=WAIT_MS)
        await expect(page.locator("#bids")).to_have_text("no bids")
        state = await page.locator("#book-state").inner_text()

    assert first["type"] == "ack", first
    assert second["type"] == "ack", second
    assert "checksum ok" in state
    assert "resync" not in state
    assert dashboard.problems == []


async def test_a_gap_in_the_book_updates_makes_the_page_subscribe_again(
    server: ServerProcess, browser: Browser
) -> None:
    # The page's websocket runs through a proxy that drops one book update.
    dropped: list[dict[str, object]] = []

    def forward(route: WebSocketRoute) -> None:
        upstream = route.connect_to_server()

        def down(message: str | bytes) -> None:
            data = json.loads(message)
            update = data["type"] == "book" and not data.get("snapshot")
            if update and data["symbol"] == "gap-SPOT" and not dropped:
                dropped.append(data)
                return
            route.send(message)

        upstream.on_message(down)

    async def route_ws(page: Page) -> None:
        await page.route_web_socket(re.compile(r"/ws$"), forward)

    async with (
        open_dashboard(
            browser, server.http, "gap-SPOT", before_load=route_ws
        ) as dashboard,
        connected(server.url, "gap-buyer") as buyer,
    ):
        page = dashboard.page
        await buyer.request("place", symbol="gap-SPOT", side="buy", qty=4, price=900)
        await buyer.request("place", symbol="gap-SPOT", side="buy", qty=6, price=901)

        await expect(page.locator("#book-state")).to_contain_text(
            "1 resync", timeout=WAIT_MS
        )
        await expect(page.locator('#bids [data-price="900"]')).to_have_attribute(
            "data-qty", "4", timeout=WAIT_MS
        )
        await expect(page.locator('#bids [data-price="901"]')).to_have_attribute(
            "data-qty", "6"
        )
        await expect(page.locator("#book-state")).to_contain_text("checksum ok")

    assert len(dropped) == 1
    assert dashboard.problems == []


async def test_a_call_phase_shows_the_indicative_price_and_volume_until_its_auction(
    server: ServerProcess, browser: Browser
) -> None:
    async with (
        open_dashboard(browser, server.http, "call-SPOT") as dashboard,
        connected(server.url, "operator") as operator,
        connected(server.url, "call-seller") as seller,
        connected(server.url, "call-buyer") as buyer,
    ):
        page = dashboard.page
        auction = page.locator("#auction-phase")
        moved = await operator.request(
            "set_phase", symbol="call-SPOT", phase="pre_open"
        )
        await expect(auction).to_have_text("pre open", timeout=WAIT_MS)
        placed = [
            await seller.request("place", **call_order("sell", 5, 1000)),
            await seller.request("place", **call_order("sell", 3, 1010)),
            await buyer.request("place", **call_order("buy", 4, 1010)),
            await buyer.request("place", **call_order("buy", 2, 990)),
        ]

        # The book crosses, nothing trades: 4 lots would trade at 1000 and at
        # 1010; at 1000 the fewer are left over (1 sell lot, so surplus -1).
        await expect(page.locator("#ind-price")).to_have_text(
            "1,000 µcr", timeout=WAIT_MS
        )
        await expect(page.locator("#ind-volume")).to_have_text("4 lots")
        await expect(page.locator("#ind-surplus")).to_have_text("-1")
        await expect(page.locator("#trades-empty")).to_be_visible()

        opened = await operator.request(
            "set_phase", symbol="call-SPOT", phase="continuous"
        )
        await expect(page.locator("#last-auction")).to_contain_text(
            "4 @ 1,000", timeout=WAIT_MS
        )
        await expect(page.locator("#ind-price")).to_have_text("—")
        await expect(page.locator("#ind-volume")).to_have_text("—")
        await expect(auction).to_have_text("continuous")
        await expect(page.locator("#trades tr", has_text="auction")).to_have_text(
            re.compile(r"1,000\s*4\s*auction")
        )

    assert [moved["type"], opened["type"]] == ["ack", "ack"]
    assert [reply["type"] for reply in placed] == ["ack"] * 4
    assert dashboard.problems == []


def call_order(side: str, qty: int, price: int) -> dict[str, Any]:
    return {"symbol": "call-SPOT", "side": side, "qty": qty, "price": price}


FLEET_NODE = "fleet-seller/fleet-node"
TEXT = "The dashboard shows the node that embeds this sentence."


async def shard_of_a_new_job(
    node: Client, buyer: Client, shards: int
) -> dict[str, Any]:
    """Submit a job order of `TEXT` as the fleet's buyer; the shard it gives
    ``node`` (its ``shards``-th)."""
    submitted = await buyer.request(
        "submit_job", symbol="fleet-SPOT", inputs=[TEXT], budget_cu=1, max_price=50
    )
    assert submitted["type"] == "ack", submitted
    return (await node.wait_for("shard", shards))[-1]


def honest_report(shard: dict[str, Any]) -> dict[str, Any]:
    """What an honest node reports for ``shard``, without running the model:
    the planned depth and FLOPs of each input, and zero embeddings. It took
    half a second per CU, so it delivered 2 CU/s."""
    tokens = TokenCounter().count(shard["inputs"])
    budget = JobBudget(shard["budget_flops"], shard["job_full_flops"])
    inputs = plan_inputs(tokens, shard["tier"], budget)
    flops = sum(report.flops for report in inputs)
    zeros = bytes(4 * MINILM_L6.hidden * len(inputs))
    return {
        "shard_id": shard["shard_id"],
        "inputs": msgspec.to_builtins(inputs),
        "embeddings": base64.b64encode(zeros).decode(),
        "flops": flops,
        "wall_ns": flops // 2,
    }


async def test_the_nodes_panel_shows_utilisation_and_reputation_as_shards_run(
    server: ServerProcess, browser: Browser
) -> None:
    # The test is the node: it registers 2 CU/s and quotes lots, takes the
    # shard of a job, delivers it, then hands back the next job's shard.
    async with (
        connected(server.url, "fleet-seller") as node,
        connected(server.url, "fleet-buyer") as buyer,
    ):
        registered = await node.request(
            "register_node",
            node_id="fleet-node",
            resource_class="fleet",
            cu_per_second_milli=2_000,
            model="all-MiniLM-L6-v2",
        )
        quoted = await node.request(
            "place", symbol="fleet-SPOT", side="sell", qty=5, price=50
        )
        first = await shard_of_a_new_job(node, buyer, 1)

        # Opened while the node runs a shard: its first look finds it busy.
        async with open_dashboard(browser, server.http, "fleet-SPOT") as dashboard:
            cells = dashboard.page.locator(f'#nodes tr[data-node="{FLEET_NODE}"] td')
            usage, reputation = cells.nth(3), cells.nth(4)
            await expect(usage).to_contain_text("1 shard running", timeout=WAIT_MS)
            await expect(usage.locator(".meter-label")).to_have_text("100% busy")
            await expect(cells.nth(2)).to_have_text("2 CU/s")
            await expect(reputation.locator(".meter-label")).to_have_text("100%")
            await expect(reputation.locator("div.small")).to_have_text(
                "0 done · 0 failed · 0 CU"
            )

            report = honest_report(first)
            delivered = await node.request("shard_result", **report)
            second = await shard_of_a_new_job(node, buyer, 2)
            handed_back = await node.request(
                "shard_failed", shard_id=second["shard_id"], reason="test"
            )

            # One shard delivered of two; busy at its first look, idle now.
            await expect(usage).to_contain_text("idle", timeout=WAIT_MS)
            await expect(usage.locator(".meter-label")).to_have_text(
                re.compile(r"^[1-9]\d?% busy$")
            )
            await expect(reputation.locator(".meter-label")).to_have_text(
                "50%", timeout=WAIT_MS
            )
            await expect(reputation.locator(".meter span")).to_have_attribute(
                "style", "width: 50%;"
            )
            cu = f"{report['flops'] / FLOPS_PER_CU:.1f}".removesuffix(".0")
            await expect(reputation.locator("div.small")).to_have_text(
                f"1 done · 1 failed · {cu} CU · 2 CU/s"
            )

    assert [registered["type"], quoted["type"]] == ["ack", "ack"]
    assert [delivered["type"], handed_back["type"]] == ["ack", "ack"]
    assert dashboard.problems == []


async def test_a_busy_market_shows_its_nodes_futures_windows_and_auctions(
    server: ServerProcess, browser: Browser
) -> None:
    async with await populate(server, seconds=0) as _nodes:
        listed = server.get("/api/v1/instruments").body["instruments"]
        last_future = max(
            (i for i in listed if i["kind"] == "future"), key=lambda i: i["start"]
        )
        async with (
            open_dashboard(browser, server.http, "gpu-SPOT") as dashboard,
            connected(server.url, "carol") as carol,
            connected(server.url, "alice") as alice,
        ):
            page = dashboard.page
            node = page.locator('#nodes tr[data-node="carol/gpu-node-1"]')
            await expect(node).to_contain_text("200 CU/s", timeout=WAIT_MS)
            await expect(page.locator("#nodes tr")).to_have_count(3)
            future = page.locator(f'#futures tr[data-symbol="{last_future["symbol"]}"]')
            await expect(future).to_contain_text("21,000")

            # A crossing pair in the batch phase trades at the next auction.
            await carol.request(
                "place", symbol="gpu-SPOT", side="sell", qty=5, price=23_000
            )
            await alice.request(
                "place", symbol="gpu-SPOT", side="buy", qty=5, price=26_000
            )
            await expect(page.locator("#last-auction")).to_contain_text(
                "batch", timeout=WAIT_MS
            )
            auction_trade = page.locator("#trades tr", has_text="auction")
            await expect(auction_trade.first).to_be_visible(timeout=WAIT_MS)
            await expect(page.locator("#phase")).to_have_text("batch")

            await page.locator(
                '#instrument-list button[data-symbol="cpu-SPOT"]'
            ).click()
            await dashboard.wait_ready("cpu-SPOT")
            await expect(page.locator("#trades tr")).to_have_count(40)
            await expect(page.locator("#asks .book-row")).to_have_count(10)

    assert dashboard.problems == []


RECENT_JOBS = {
    "jobs": [
        {
            "job_id": "18",
            "symbol": "cpu-SPOT",
            "status": "running",
            "tier": "fast",
            "inputs": 10,
            "done_inputs": 3,
            "flops": 470_000_000_000,
            "budget_flops": 500_000_000_000,
            "full_flops": 900_000_000_000,
            "providers": ["bob"],
        },
        {
            "job_id": "17",
            "symbol": "cpu-SPOT",
            "status": "done",
            "tier": "exact",
            "inputs": 4,
            "done_inputs": 4,
            "flops": 36_904_558_592,
            "budget_flops": 500_000_000_000,
            "full_flops": 60_000_000_000,
            "providers": ["bob", "carol"],
            "cost": 5550,
            "refund": 1200,
        },
    ]
}
"""Two jobs, newest first, as ``GET /api/v1/jobs/recent`` answers (the lead's
`exchange.dispatch` ``recent``; cost and refund where a server adds them)."""


async def test_the_jobs_panel_shows_cu_spent_against_budget_from_the_recent_jobs(
    server: ServerProcess, browser: Browser
) -> None:
    # The page is told the server has the route, and the route answers as
    # the contract says: this checks the page's side of it on any server.
    async def fake(page: Page) -> None:
        async def features(route: Route) -> None:
            await route.fulfill(json={"jobs_recent": True})

        async def jobs(route: Route) -> None:
            await route.fulfill(json=RECENT_JOBS)

        await page.route("**/dashboard/features.json", features)
        await page.route("**/api/v1/jobs/recent", jobs)

    async with open_dashboard(
        browser, server.http, "quiet-SPOT", before_load=fake
    ) as dashboard:
        page = dashboard.page
        done = page.locator('#jobs tr[data-job="17"] td')
        await expect(done).to_have_count(5, timeout=WAIT_MS)
        await expect(done.nth(0)).to_have_text("17cpu-SPOT · exact")
        await expect(done.nth(1)).to_have_text("done 4/4on bob, carol")
        await expect(done.nth(2)).to_contain_text("36.9 / 500 CU")
        await expect(done.nth(2)).to_contain_text("saved 23.1 CU (38%)")
        await expect(done.nth(3)).to_have_text("0.00555 cr")
        await expect(done.nth(4)).to_have_text("0.0012 cr")
        running = page.locator('#jobs tr[data-job="18"]')
        await expect(running).to_contain_text("running 3/10")
        await expect(running).to_contain_text("full model: 900 CU")
        await expect(running.locator(".meter")).to_have_class(re.compile(r"\bhot\b"))
        await expect(page.locator("#jobs tr").first).to_have_attribute("data-job", "18")
        await expect(page.locator("#jobs-count")).to_have_text("2 recent")
        await expect(page.locator("#jobs-empty")).to_be_hidden()

    assert dashboard.problems == []


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_the_page_reconnects_after_a_server_restart_and_shows_live_data_again(
    tmp_path: Path, browser: Browser
) -> None:
    port = ["--port", str(free_port())]
    config, data = write_config(tmp_path), tmp_path / "data"
    first = ServerProcess(config, data, *port)
    try:
        async with open_dashboard(browser, first.http, "cpu-SPOT") as dashboard:
            page = dashboard.page
            first.stop()
            await expect(page.locator("#conn")).to_have_class(
                re.compile(r"\bpill-down\b"), timeout=WAIT_MS
            )
            # The server stays away until the page has tried it again at
            # least once (its retries back off, so the first may come late).
            async with asyncio.timeout(WAIT_MS / 1000):
                while not dashboard.problems:
                    await asyncio.sleep(0.05)
            with ServerProcess(config, data, *port) as second:
                await dashboard.wait_ready("cpu-SPOT")
                async with connected(second.url, "bob") as bob:
                    placed = await bob.request(
                        "place", symbol="cpu-SPOT", side="sell", qty=9, price=1777
                    )
                level = page.locator('#asks [data-price="1777"]')
                await expect(level).to_have_attribute("data-qty", "9", timeout=WAIT_MS)
                await expect(page.locator("#conn")).to_have_text("live")
    finally:
        first.stop()

    assert placed["type"] == "ack", placed
    # While the server was away, the browser logged its refused connections.
    assert dashboard.problems
    assert all("ERR_CONNECTION_REFUSED" in p for p in dashboard.problems)
