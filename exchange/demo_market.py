"""The market `cux demo` runs: its class, accounts, nodes, agents and clock.

One resource class, ``emb``, sells embedding compute in lots of `LOT_CU` CU,
small enough that a job of a few documentation passages needs a few lots. The
exchange runs on a simulated clock (`CLOCK_SPEED` simulated seconds per real
second, starting inside the shipped GPU price series), so that a one-hour
futures window is listed, traded, delivered and settled in a few real
minutes.

Simulated time and the nodes. Everything the exchange counts in time — lease
lengths, windows, a node's CU per second — is simulated time. A node that
really computes ``R`` CU a second delivers ``R / CLOCK_SPEED`` CU per
simulated second, so each node registers that (``--max-cu-per-second``): its
capacity in lots and its price per lot (an hour of its GPU's rental price
over the lots it computes in a simulated hour) then agree with what it can
really do.

Prices. Each provider's cost per hour is the median rental price of one GPU
model over the shipped series (`clients.agents.prices`), so the sellers
differ: A100, H100, H200, B200, each with a different real throughput.
Consumers are willing to pay the H100's price at the replayed time, priced at
the H100 node's throughput, times their own ``willingness_bps``.

Strategies. Each node also marks its reservation up its own way
(`STRATEGIES`, ``cux node --markup-min-bps/--markup-max-bps``): ``steady``
10% idle to 50% sold out (the node's default), ``surge`` nothing idle but
150% sold out, ``flat`` 20% whatever it sold, ``premium`` 40% to 80%.

Why more than one node trades. A job order's lease ends as soon as its job is
done, and a node runs a demo job in about a second, so the cheapest node is
almost always idle, at its lowest ask, when the next job order comes: waiting
for it to be busy would leave the others idle. So the demand itself is larger
than the cheapest node: ``bob``'s and ``carol``'s job orders buy more lots than
its spot capacity (`NodeSpec.spot_lots`) at a limit above the next node's
ask, so one IOC order takes the cheapest node's lots and then the next
node's, and the futures buyer buys more of the window than the cheapest node
can sell (`exchange.demo_futures.BUY_LOTS`). That does not depend on timing.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Final

from clients.agents import ConsumerConfig, LotPricer, MakerConfig, PriceSeries

__all__ = [
    "CLASS",
    "CLOCK_SPEED",
    "LOT_CU",
    "STRATEGIES",
    "SYMBOL",
    "DemoPlan",
    "NodeSpec",
    "make_plan",
]

CLASS: Final = "emb"
SYMBOL: Final = "emb-SPOT"
LOT_CU: Final = 4
"""CU per lot: a passage of a hundred tokens costs about 2 CU at full depth."""
TICK: Final = 1
CLOCK_SPEED: Final = 60
"""Simulated seconds per real second: a simulated hour lasts a real minute."""
LEASE_SECONDS: Final = 600
"""A spot lease's length, simulated seconds (10 real seconds)."""
GATE_SECONDS: Final = 180
CLOSING_CALL_SECONDS: Final = 60
DEPOSIT: Final = 1_000 * 1_000_000
"""Each trader's opening deposit, µcr (1,000 credits)."""
PROVIDER_DEPOSIT: Final = 100 * 1_000_000
START: Final = datetime(2025, 10, 21, 13, 10, tzinfo=UTC)
"""The simulated clock's start for seed 0: 50 simulated minutes before a whole
hour, so that the first futures window starts 50 real seconds in (when the
nodes have registered within 40 s)."""

_GPUS: Final = ("A100_80GB_SXM4", "H100_80GB_SXM5", "H200_141GB", "B200_180GB")
STRATEGIES: Final = (
    ("steady", 1_000, 5_000),
    ("surge", 0, 15_000),
    ("flat", 2_000, 2_000),
    ("premium", 4_000, 8_000),
)
"""A node's markup strategy: its name, its markup with nothing sold and with
everything sold, basis points (node ``i`` takes strategy ``i mod 4``)."""
REFERENCE_GPU: Final = "H100_80GB_SXM5"
REFERENCE_REAL_CU: Final = 2
"""The real CU/s the consumers price a lot at: the H100 node's."""


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """One provider and its node.

    Attributes:
        account: the provider's account.
        node_id: the node's name.
        gpu: the GPU model whose rental price is its cost.
        usd_per_hour: that cost, USD per hour, as decimal text.
        real_cu_per_second: the real CU/s it sells (its machine computes
            more; the rest is kept for other work).
        strategy: the name of its markup strategy (see `STRATEGIES`).
        markup_min_bps: its markup with nothing sold, basis points.
        markup_max_bps: its markup with everything sold, basis points.
    """

    account: str
    node_id: str
    gpu: str
    usd_per_hour: str
    real_cu_per_second: float
    strategy: str = "steady"
    markup_min_bps: int = 1_000
    markup_max_bps: int = 5_000

    @property
    def markup(self) -> str:
        """The strategy in words: ``surge 0-150%``."""
        low, high = self.markup_min_bps // 100, self.markup_max_bps // 100
        span = f"{low}%" if low == high else f"{low}-{high}%"
        return f"{self.strategy} {span}"

    @property
    def cu_per_second(self) -> float:
        """What it registers: its real CU/s in simulated time."""
        return round(self.real_cu_per_second / CLOCK_SPEED, 3)

    @property
    def spot_lots(self) -> int:
        """The lots the exchange registers for it on spot: one lease's CU."""
        return self.lots_in(LEASE_SECONDS)

    def lots_in(self, seconds: int) -> int:
        """Whole lots it delivers in ``seconds`` of simulated time, rounded
        down as the exchange does (a one-hour window: ``lots_in(3600)``)."""
        milli = round(self.cu_per_second * 1000)
        return milli * seconds // (1000 * LOT_CU)


@dataclass(frozen=True, slots=True)
class DemoPlan:
    """Everything `cux demo` starts, fixed by the seed and the node count.

    Attributes:
        seed: the seed of every agent's random choices.
        clock_start: the simulated clock's start, ns since the epoch.
        series: the GPU price series.
        nodes: the providers and their nodes.
        consumers: the consumer agents (``start_offset`` set when they start).
        futures_buyer: the account that buys the futures window.
        maker: the market maker's account and settings (its symbol is the
            window's, set when it is listed).
    """

    seed: int
    clock_start: int
    series: PriceSeries
    nodes: tuple[NodeSpec, ...]
    consumers: tuple[ConsumerConfig, ...]
    futures_buyer: str
    maker: MakerConfig

    @property
    def pricer(self) -> LotPricer:
        """What a lot is worth to a consumer at a point of the series."""
        milli = round(REFERENCE_REAL_CU * 1000 / CLOCK_SPEED)
        return LotPricer(self.series, REFERENCE_GPU, "median", LOT_CU, TICK, milli)

    def offset(self, server_time_ns: int) -> float:
        """Seconds into the price series at a simulated time."""
        return max(0.0, server_time_ns / 1e9 - self.series.start)

    def traders(self) -> list[str]:
        return [c.name for c in self.consumers] + [self.futures_buyer, self.maker.name]

    def config_toml(self) -> str:
        """The server's configuration file."""
        parts = [
            _SERVER.format(start=self.clock_start, speed=CLOCK_SPEED),
            _CLASS.format(
                name=CLASS,
                lot_cu=LOT_CU,
                tick=TICK,
                lease=LEASE_SECONDS,
                gate=GATE_SECONDS,
                call=CLOSING_CALL_SECONDS,
            ),
        ]
        accounts = [(n.account, "provider", PROVIDER_DEPOSIT) for n in self.nodes]
        accounts += [(name, "consumer", DEPOSIT) for name in self.traders()]
        accounts.append(("operator", "operator", 0))
        for key, role, deposit in accounts:
            parts.append(_ACCOUNT.format(key=key, role=role, deposit=deposit))
        return "".join(parts)


def make_plan(series: PriceSeries, nodes: int, seed: int) -> DemoPlan:
    """The demo's market with ``nodes`` providers; ``seed`` picks the day of
    the series it replays and every agent's random choices."""
    start = START + timedelta(days=seed % 20)
    specs = tuple(_node(series, i) for i in range(nodes))
    consumers = tuple(
        replace(config, seed=seed * 100 + i) for i, config in enumerate(_CONSUMERS)
    )
    maker = MakerConfig(
        name="mm",
        symbol=SYMBOL,
        tick=TICK,
        size=4,
        spread_bps=600,
        refresh_seconds=1.0,
        speed=CLOCK_SPEED,
    )
    return DemoPlan(
        seed=seed,
        clock_start=int(start.timestamp()) * 1_000_000_000,
        series=series,
        nodes=specs,
        consumers=consumers,
        futures_buyer="dave",
        maker=maker,
    )


def _node(series: PriceSeries, index: int) -> NodeSpec:
    gpu = _GPUS[index % len(_GPUS)]
    cents = int(statistics.median(series.series[gpu]["median"]))
    strategy, low, high = STRATEGIES[index % len(STRATEGIES)]
    return NodeSpec(
        account=f"prov-{index + 1}",
        node_id=f"node-{index + 1}",
        gpu=gpu,
        usd_per_hour=f"{cents // 100}.{cents % 100:02d}",
        real_cu_per_second=1.5 + 0.5 * index,
        strategy=strategy,
        markup_min_bps=low,
        markup_max_bps=high,
    )


_CONSUMER = ConsumerConfig(
    symbol=SYMBOL, lot_cu=LOT_CU, tick=TICK, speed=CLOCK_SPEED, max_jobs=None
)
_CONSUMERS: Final = (
    # Small jobs at full quality, pays little more than the H100's price:
    # the cheapest seller.
    replace(
        _CONSUMER, name="alice", rate_per_second=0.25, inputs_min=2, inputs_max=6,
        willingness_bps=13_000,
    ),
    # Full depth on a tight budget: long inputs stop a layer or two early. A
    # third of its jobs need more lots than the cheapest node sells at once.
    replace(
        _CONSUMER, name="bob", rate_per_second=0.2, inputs_min=10, inputs_max=16,
        budget_bps=8_000, willingness_bps=16_000,
    ),
    # Large batches at the balanced tier (half the layers), a generous price:
    # most need more than the cheapest node, some more than the two cheapest.
    replace(
        _CONSUMER, name="carol", rate_per_second=0.2, inputs_min=16, inputs_max=40,
        tier="balanced", willingness_bps=20_000,
    ),
)  # fmt: skip

_SERVER = """\
[server]
clock_start = {start}
clock_speed = {speed}

[dispatch]
shard_timeout_seconds = 20
max_attempts = 3
results_ttl_seconds = 3600
"""

_CLASS = """
[[classes]]
name = "{name}"
lot_cu = {lot_cu}
tick = {tick}
taker_fee_bps = 10
maker_fee_bps = 5
lease_seconds = {lease}
futures = {{ list_ahead_hours = 0, gate_seconds = {gate}, \
closing_call_seconds = {call} }}
"""

_ACCOUNT = """
[[accounts]]
key = "{key}"
secret = "{key}-secret"
deposit = {deposit}
roles = ["{role}"]
"""
