"""What `cux demo` shows: a live summary while it runs and a report at the end.

On a terminal the summary is a `rich` live view, redrawn twice a second:
the market (trades, lots, last price per instrument), the jobs (done, failed,
running, refused for want of capacity at their price, CU spent and saved,
what the consumers paid), the nodes (capacity, shards, reputation) and the
latest events. Elsewhere (a pipe, a log file, a test) it prints each event as
a line and a one-line status every few seconds instead.

The report, printed on exit, is plain text: the same figures in full, each
provider's earnings, the futures window's story, and where the journal is.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from exchange.demo_market import PROVIDER_DEPOSIT, DemoPlan
from exchange.demo_tally import FLOPS_PER_CU, Tally, sim_time

__all__ = ["Summary"]

UCR_PER_CREDIT = 1_000_000


class Summary:
    """Renders a `Tally` (see the module doc).

    Args:
        tally: what the demo has seen.
        plan: the market it runs.
        dashboard: the dashboard's address.
        refused: the job orders the exchange refused so far, by code.
    """

    def __init__(
        self,
        tally: Tally,
        plan: DemoPlan,
        dashboard: str,
        refused: Callable[[], dict[str, int]],
    ) -> None:
        self.tally = tally
        self.plan = plan
        self.dashboard = dashboard
        self.refused = refused

    # -- the live view ---------------------------------------------------------------

    def __rich__(self) -> RenderableType:
        t = self.tally
        head = Text.assemble(
            ("cux demo", "bold"),
            f"  {t.elapsed():.0f} s  simulated {sim_time(t.sim_now())} UTC  ",
            f"({t.stage})  dashboard: ",
            (self.dashboard, "underline"),
        )
        events = Table(title="latest events", title_justify="left", box=None)
        events.add_column("s", justify="right", style="dim")
        events.add_column("event")
        for at, text in t.recent:
            events.add_row(f"{at:.0f}", text)
        jobs = Text(f"{self.jobs_line()}\n{self.compute_line()}")
        return Group(head, self._markets(), jobs, self._nodes(), events)

    def _markets(self) -> Table:
        table = Table(title="market", title_justify="left")
        for name in ("instrument", "trades", "lots", "last price µcr", "settlement"):
            table.add_column(name, justify="left" if name == "instrument" else "right")
        for symbol, m in sorted(self.tally.markets.items()):
            table.add_row(
                symbol,
                str(m.trades),
                str(m.lots),
                _amount(m.last_price),
                _amount(m.settlement),
            )
        return table

    def _nodes(self) -> Table:
        table = Table(title="nodes (GET /api/v1/nodes)", title_justify="left")
        columns = (
            "node",
            "provider",
            "cost",
            "markup",
            "sells CU/s",
            "busy",
            "shards",
            "CU done",
        )
        for name in (*columns, "reputation"):
            table.add_column(name, justify="left" if name in columns[:4] else "right")
        for node in self.tally.nodes:
            table.add_row(*self._node_row(node))
        return table

    def _node_row(self, node: dict[str, Any]) -> list[str]:
        spec = {n.account: n for n in self.plan.nodes}.get(node.get("account", ""))
        rep = node.get("reputation") or {}
        cost = (
            "" if spec is None else f"{spec.gpu.split('_')[0]} ${spec.usd_per_hour}/h"
        )
        return [
            str(node.get("node_id")),
            str(node.get("account")),
            cost,
            "" if spec is None else spec.markup,
            f"{float(node.get('cu_per_second', 0)) * self.tally.speed:.1f}",
            str(node.get("busy", 0)),
            f"{rep.get('shards_done', 0)} done, {rep.get('shards_failed', 0)} failed",
            f"{int(rep.get('flops_delivered', 0)) / FLOPS_PER_CU:.1f}",
            f"{int(rep.get('reputation_bps', 10_000)) / 100:.2f}%",
        ]

    # -- lines -----------------------------------------------------------------------

    def jobs_line(self) -> str:
        t = self.tally
        unfilled = self.refused().get("JOB_UNFILLED", 0)
        return (
            f"jobs {t.count_jobs('done')} done, {t.count_jobs('failed')} failed, "
            f"{t.count_jobs('running')} running, {t.count_jobs('cancelled')} "
            f"cancelled, {unfilled} unfilled at their price"
        )

    def compute_line(self) -> str:
        t = self.tally
        return (
            f"CU spent {t.cu_spent:.1f}, saved {t.cu_saved:.1f} (tiers and "
            f"budgets) | consumers paid {_credits(t.paid)} credits"
        )

    def status_line(self) -> str:
        """One line for a log: time, market, jobs, nodes."""
        t = self.tally
        lots = sum(m.lots for m in t.markets.values())
        spot = t.markets.get(self.plan.consumers[0].symbol)
        last = "" if spot is None else f", last {_amount(spot.last_price)} µcr"
        return (
            f"[{t.elapsed():4.0f} s | {sim_time(t.sim_now())}] {t.stage}: trades "
            f"{t.trades} ({lots} lots{last}) | {self.jobs_line()} | "
            f"{self.compute_line()} | nodes "
            f"{len(t.nodes)}/{len(self.plan.nodes)}"
        )

    # -- the report ------------------------------------------------------------------

    def report(
        self,
        balances: dict[str, dict[str, int]],
        data: Path,
        events: list[str],
        notes: list[str],
        demo_root: Path = Path("cux-demo"),
    ) -> str:
        """The report; ``demo_root`` is the folder of data folders that the
        replay notebook searches by default (``cux-demo`` where it runs)."""
        t = self.tally
        lines = [
            f"cux demo report: {t.elapsed():.0f} s real, simulated "
            f"{sim_time(self.plan.clock_start)} to {sim_time(t.sim_now())} UTC",
            f"trades: {t.trades}",
        ]
        for symbol, m in sorted(t.markets.items()):
            settled = "" if m.settlement is None else f", settled {m.settlement:,}"
            lines.append(
                f"  {symbol}: {m.trades} trades, {m.lots} lots, last "
                f"{_amount(m.last_price)} µcr per lot{settled}"
            )
        lines.append(self.jobs_line())
        lines.append(self.compute_line())
        lines.append("providers:")
        for spec in self.plan.nodes:
            available = balances.get(spec.account, {}).get("available")
            earned = None if available is None else available - PROVIDER_DEPOSIT
            node = next((n for n in t.nodes if n.get("account") == spec.account), None)
            rep = (node or {}).get("reputation") or {}
            lines.append(
                f"  {spec.account} {spec.node_id} ({_gpu(spec.gpu)} at "
                f"${spec.usd_per_hour}/h, markup {spec.markup}): "
                f"{rep.get('shards_done', 0)} shards done, "
                f"{rep.get('shards_failed', 0)} failed, "
                f"{int(rep.get('flops_delivered', 0)) / FLOPS_PER_CU:.1f} CU, "
                f"reputation {int(rep.get('reputation_bps', 10_000)) / 100:.2f}%, "
                f"earned {_credits(earned)} credits"
            )
        lines.append("futures and notable events:")
        lines += [f"  {text}" for text in events] or ["  none"]
        lines += [f"note: {note}" for note in notes]
        lines.append(f"journal: {data / 'journal'}")
        lines.append(
            f"replay it: cux replay {data}  (logs: {data / 'logs'}; "
            f"{_notebook_hint(data, demo_root)})"
        )
        return "\n".join(lines)


def _notebook_hint(data: Path, demo_root: Path) -> str:
    """How the replay notebook finds this run's journal: by itself when the
    data folder is ``demo_root`` or one of its folders (it opens the newest
    there), else by its ``CUX_JOURNAL`` (see docs/notebooks.md)."""
    notebook = "the notebook notebooks/market_replay.ipynb"
    folder, root = data.resolve(), demo_root.resolve()
    if root in (folder, folder.parent):
        return f"{notebook} opens the newest demo journal"
    return (
        f"{notebook} opens it with CUX_JOURNAL={folder} or JOURNAL set in its "
        "first cell"
    )


def _gpu(model: str) -> str:
    """A GPU model's short name: ``A100`` for ``A100_80GB_SXM4``."""
    return model.split("_")[0]


def _amount(value: int | None) -> str:
    return "--" if value is None else f"{value:,}"


def _credits(value: int | None) -> str:
    if value is None:
        return "--"
    return f"{value / UCR_PER_CREDIT:,.6f}"
