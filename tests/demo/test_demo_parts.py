"""The demo's parts without processes: its market plan, its tally of the wire,
its live view and status line, and the report it prints."""

from __future__ import annotations

import io
import itertools
import re
from pathlib import Path
from typing import Any

from rich.console import Console

from clients.agents import load_gpu_prices, load_passages, plan_jobs
from exchange.demo_futures import BUY_LOTS, BUYER_WILLINGNESS_BPS
from exchange.demo_market import CLOCK_SPEED, LOT_CU, SYMBOL, NodeSpec, make_plan
from exchange.demo_summary import Summary
from exchange.demo_tally import Tally
from exchange.settings import load
from providers.jobs import JobBudget, full_depth_flops, plan_inputs
from providers.pricing import Pricing, micro_usd, reservation_price
from providers.tokens import TokenCounter

SERIES = load_gpu_prices()


def test_demo_plan_writes_a_valid_server_configuration_with_every_account(
    tmp_path: Path,
) -> None:
    plan = make_plan(SERIES, nodes=4, seed=3)
    path = tmp_path / "demo.toml"
    path.write_text(plan.config_toml(), encoding="utf-8")

    settings = load(path)

    (emb,) = settings.classes
    assert (emb.name, emb.lot_cu) == ("emb", LOT_CU)
    assert emb.futures is not None
    assert emb.futures.list_ahead_hours == 0  # the operator lists the window
    assert settings.server.clock_speed == CLOCK_SPEED
    assert settings.server.clock_start == plan.clock_start
    roles = {a.key: a.roles for a in settings.accounts}
    assert roles == {
        "prov-1": ("provider",),
        "prov-2": ("provider",),
        "prov-3": ("provider",),
        "prov-4": ("provider",),
        "alice": ("consumer",),
        "bob": ("consumer",),
        "carol": ("consumer",),
        "dave": ("consumer",),
        "mm": ("consumer",),
        "operator": ("operator",),
    }
    assert all(a.secret == f"{a.key}-secret" for a in settings.accounts)


def test_demo_plan_replays_a_day_inside_the_price_series_chosen_by_the_seed() -> None:
    starts = {make_plan(SERIES, 3, seed).clock_start for seed in range(5)}

    assert len(starts) == 5
    end = SERIES.start + SERIES.duration_seconds
    assert all(SERIES.start < start // 10**9 < end for start in starts)


def test_demo_nodes_differ_in_cost_and_capacity_so_their_prices_differ() -> None:
    plan = make_plan(SERIES, nodes=4, seed=1)

    costs = {node.usd_per_hour for node in plan.nodes}
    speeds = {node.cu_per_second for node in plan.nodes}
    prices = {
        reservation_price(
            micro_usd(node.usd_per_hour), round(node.cu_per_second * 1000), LOT_CU
        )
        for node in plan.nodes
    }
    assert len(costs) == len(speeds) == len(prices) == 4
    # Each has its own markup strategy, so the asks differ as they sell.
    strategies = {(n.markup_min_bps, n.markup_max_bps) for n in plan.nodes}
    assert len(strategies) == 4
    assert [n.markup for n in plan.nodes] == [
        "steady 10-50%",
        "surge 0-150%",
        "flat 20%",
        "premium 40-80%",
    ]
    # Each registers its real throughput in simulated time.
    assert all(
        abs(n.cu_per_second * CLOCK_SPEED - n.real_cu_per_second) < 0.05
        for n in plan.nodes
    )


def test_consumers_pay_more_than_the_cheapest_node_asks_and_differ_in_willingness() -> (
    None
):
    plan = make_plan(SERIES, nodes=3, seed=1)
    cheapest = min(
        reservation_price(
            micro_usd(n.usd_per_hour), round(n.cu_per_second * 1000), LOT_CU
        )
        for n in plan.nodes
    )
    offset = plan.offset(plan.clock_start)

    limits = [
        plan.pricer.price(offset) * c.willingness_bps // 10_000 for c in plan.consumers
    ]

    assert len(set(limits)) == len(limits)
    # A node asks its reservation plus a 10% markup at least.
    assert all(limit > cheapest * 11 // 10 for limit in limits)
    assert all(c.symbol == SYMBOL and c.lot_cu == LOT_CU for c in plan.consumers)


def idle_ask(node: NodeSpec) -> int:
    """What ``node`` asks per lot with nothing sold."""
    milli = round(node.cu_per_second * 1000)
    reservation = reservation_price(micro_usd(node.usd_per_hour), milli, LOT_CU)
    slope = node.markup_max_bps - node.markup_min_bps
    return Pricing(reservation, 1, node.markup_min_bps, slope).ask(0, 1)


def test_job_orders_buy_more_lots_than_the_cheapest_node_has_at_the_next_price() -> (
    None
):
    # A job order's lease ends with its job, a second or so later: the
    # cheapest node is idle when most orders come, so only an order larger
    # than it makes the next node trade, whatever the timing.
    plan = make_plan(SERIES, nodes=3, seed=1)
    cheapest, second = sorted(plan.nodes, key=idle_ask)[:2]
    counter = TokenCounter()
    passages = load_passages()
    spilling = {}
    for consumer in plan.consumers:
        jobs = itertools.islice(plan_jobs(consumer, plan.pricer.price, passages), 20)
        over = 0
        for job in jobs:
            # The lots the exchange buys for it (`exchange.dispatch`).
            tokens = counter.count(list(job.inputs))
            budget = JobBudget(job.budget_cu * 10**9, full_depth_flops(tokens))
            planned = sum(p.flops for p in plan_inputs(tokens, job.tier, budget))
            lots = -(-planned // (LOT_CU * 10**9))
            fillable = sum(
                n.spot_lots for n in plan.nodes if idle_ask(n) <= job.max_price
            )
            assert lots <= fillable, (consumer.name, job)
            if lots > cheapest.spot_lots and job.max_price >= idle_ask(second):
                over += 1
        spilling[consumer.name] = over

    assert spilling["alice"] == 0  # small jobs: the cheapest node only
    assert spilling["bob"] >= 3
    assert spilling["carol"] >= 10


def test_the_futures_buyer_buys_more_of_the_window_than_the_cheapest_node_sells() -> (
    None
):
    plan = make_plan(SERIES, nodes=3, seed=1)
    cheapest, second = sorted(plan.nodes, key=idle_ask)[:2]
    window_start = plan.clock_start + 50 * 60 * 10**9
    limit = (
        plan.pricer.price(plan.offset(window_start)) * BUYER_WILLINGNESS_BPS // 10_000
    )

    assert cheapest.lots_in(3600) < BUY_LOTS
    assert cheapest.lots_in(3600) + second.lots_in(3600) >= BUY_LOTS
    assert limit >= idle_ask(second)


def job(
    job_id: str, status: str, flops: int, full_flops: int, cost: int
) -> dict[str, Any]:
    return {
        "type": "job",
        "job_id": job_id,
        "symbol": SYMBOL,
        "status": status,
        "tier": "exact",
        "inputs": 3,
        "done_inputs": 3,
        "failed_inputs": 0,
        "flops": flops,
        "budget_flops": full_flops,
        "full_flops": full_flops,
        "cost": cost,
        "refund": 0,
        "reason": None,
        "ts": 1,
    }


def test_tally_counts_cu_spent_on_every_job_and_saved_on_the_done_ones() -> None:
    tally = Tally(speed=CLOCK_SPEED)

    tally.on_job("alice", job("1", "running", 0, 10 * 10**9, 0))
    tally.on_job("alice", job("1", "done", 6 * 10**9, 10 * 10**9, 500))
    tally.on_job("bob", job("1", "failed", 1 * 10**9, 5 * 10**9, 100))

    assert (tally.count_jobs("done"), tally.count_jobs("failed")) == (1, 1)
    assert tally.count_jobs("running") == 0
    assert tally.cu_spent == 7.0
    assert tally.cu_saved == 4.0  # a failed job's unrun inputs saved nothing
    assert tally.paid == 600
    assert tally.signal("job.alice.1").is_set()


def test_tally_follows_trades_settlement_and_delivery_of_each_instrument() -> None:
    tally = Tally(speed=CLOCK_SPEED)
    window = "emb-20251021T14"

    for price, qty in [(900, 2), (950, 3)]:
        tally.on_public(
            {"type": "trade", "symbol": SYMBOL, "price": price, "qty": qty, "ts": 1}
        )
    tally.on_public({"type": "trade", "symbol": window, "price": 800, "qty": 5})
    tally.on_public({"type": "settlement", "symbol": window, "price": 810, "ts": 2})
    tally.on_public(
        {"type": "delivery", "symbol": window, "status": "started", "lots": 5}
    )

    spot = tally.markets[SYMBOL]
    assert (spot.trades, spot.lots, spot.last_price) == (2, 5, 950)
    assert tally.markets[window].settlement == 810
    assert tally.trades == 3
    assert tally.signal(f"settled.{window}").is_set()
    assert tally.signal(f"started.{window}").is_set()
    assert not tally.signal(f"ended.{window}").is_set()
    assert [text for _, text in tally.events] == [
        f"{window}: gate passed, settlement price 810 µcr per lot",
        f"{window}: delivery started, 5 lots become leases",
    ]


def one_of_each() -> Tally:
    """A tally of one spot trade, one job done and one node."""
    tally = Tally(speed=CLOCK_SPEED)
    tally.on_public({"type": "trade", "symbol": SYMBOL, "price": 900, "qty": 2})
    tally.on_job("alice", job("7", "done", 2 * 10**9, 3 * 10**9, 1_800_000))
    tally.nodes = [
        {
            "account": "prov-1",
            "node_id": "node-1",
            "cu_per_second": 0.025,
            "busy": 0,
            "reputation": {
                "shards_done": 4,
                "shards_failed": 1,
                "flops_delivered": 8 * 10**9,
                "reputation_bps": 8_000,
            },
        }
    ]
    return tally


def test_live_view_shows_the_dashboard_market_jobs_cu_nodes_and_events() -> None:
    plan = make_plan(SERIES, nodes=3, seed=1)
    tally = one_of_each()
    tally.stage = "trading"
    tally.event("a notable event")
    summary = Summary(tally, plan, "http://127.0.0.1:1/", lambda: {"JOB_UNFILLED": 2})
    screen = io.StringIO()

    Console(file=screen, width=160, color_system=None).print(summary)

    lines = [line.rstrip() for line in screen.getvalue().splitlines()]
    assert re.fullmatch(
        r"cux demo  \d+ s  simulated -- UTC  \(trading\)  "
        r"dashboard: http://127\.0\.0\.1:1/",
        lines[0],
    )
    assert "│ emb-SPOT   │      1 │    2 │            900 │         -- │" in lines
    assert (
        "jobs 1 done, 0 failed, 0 running, 0 cancelled, 2 unfilled at their price"
        in lines
    )
    assert (
        "CU spent 2.0, saved 1.0 (tiers and budgets) | consumers paid 1.800000 "
        "credits" in lines
    )
    [node] = [line for line in lines if line.startswith("│ node-1")]
    assert [cell.strip() for cell in node.strip("│").split("│")] == [
        "node-1",
        "prov-1",
        "A100 $1.75/h",
        "steady 10-50%",
        "1.5",  # CU per real second: 0.025 simulated × 60
        "0",
        "4 done, 1 failed",
        "8.0",
        "80.00%",
    ]
    assert re.search(r"^ +\d+ +a notable event$", "\n".join(lines), re.M)


def test_status_line_gives_time_market_jobs_cu_and_nodes_in_one_line() -> None:
    plan = make_plan(SERIES, nodes=3, seed=1)
    tally = one_of_each()
    tally.stage = "trading"
    summary = Summary(tally, plan, "http://127.0.0.1:1/", dict)

    line = summary.status_line()

    assert re.fullmatch(r"\[ +\d+ s \| --\] .*", line)
    assert line.split("] ", 1)[1] == (
        "trading: trades 1 (2 lots, last 900 µcr) | jobs 1 done, "
        "0 failed, 0 running, 0 cancelled, 0 unfilled at their price | CU spent "
        "2.0, saved 1.0 (tiers and budgets) | consumers paid 1.800000 credits | "
        "nodes 1/3"
    )


def test_report_gives_trades_jobs_providers_and_the_journal_path(
    tmp_path: Path,
) -> None:
    plan = make_plan(SERIES, nodes=3, seed=1)
    tally = one_of_each()
    summary = Summary(tally, plan, "http://127.0.0.1:1/", lambda: {"JOB_UNFILLED": 2})
    balances = {"prov-1": {"available": 101_500_000, "held": 0, "escrow": 0}}

    report = summary.report(balances, tmp_path, ["a notable event"], ["a note"])

    lines = report.splitlines()
    assert "trades: 1" in lines
    assert "  emb-SPOT: 1 trades, 2 lots, last 900 µcr per lot" in lines
    assert (
        "jobs 1 done, 0 failed, 0 running, 0 cancelled, 2 unfilled at their price"
        in lines
    )
    assert lines[lines.index("providers:") + 1] == (
        "  prov-1 node-1 (A100 at $1.75/h, markup steady 10-50%): 4 shards done, "
        "1 failed, 8.0 CU, "
        "reputation 80.00%, earned 1.500000 credits"
    )
    assert "  a notable event" in lines
    assert "note: a note" in lines
    assert f"journal: {tmp_path / 'journal'}" in lines
    assert summary.compute_line().startswith("CU spent 2.0, saved 1.0")


def test_report_tells_how_the_notebook_opens_a_journal_outside_the_demo_folder(
    tmp_path: Path,
) -> None:
    plan = make_plan(SERIES, nodes=3, seed=1)
    summary = Summary(Tally(speed=CLOCK_SPEED), plan, "http://127.0.0.1:1/", dict)
    root = tmp_path / "cux-demo"

    inside = summary.report({}, root / "run", [], [], demo_root=root)
    outside = summary.report({}, tmp_path / "elsewhere", [], [], demo_root=root)

    assert "market_replay.ipynb opens the newest demo journal" in inside
    assert "newest" not in outside
    assert f"opens it with CUX_JOURNAL={tmp_path / 'elsewhere'} or JOURNAL" in outside
