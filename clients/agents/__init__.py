"""Simulated traders: consumer agents that embed real text, and market makers.

- `Consumer` submits embedding jobs of real English passages
  (`load_passages`, from CPython's documentation) at a Poisson rate, willing to
  pay what a real GPU price series (`load_gpu_prices`, `LotPricer`) says a lot
  is worth at the replayed time;
- `MarketMaker` quotes both sides of a spot book around such a reference price
  and re-quotes after fills and moves.

They trade through the small `Venue` interface; `SdkVenue` (`connect_venue`)
gives it on the SDK's `clients.Client`. Both are deterministic given their seed and
settings, and stop cleanly: a maker cancels its quotes, a consumer its running
jobs. See ``docs/agents.md``.
"""

from clients.agents.consumer import (
    Consumer,
    ConsumerConfig,
    ConsumerStats,
    PlannedJob,
    estimated_flops,
    plan_jobs,
)
from clients.agents.corpus import load_passages
from clients.agents.maker import MakerConfig, MakerStats, MarketMaker, quote_prices
from clients.agents.prices import (
    GPUS,
    Gpu,
    LotPricer,
    PriceSeries,
    load_gpu_prices,
    lot_price,
)
from clients.agents.venue import SdkVenue, Venue, connect_venue

__all__ = [
    "GPUS",
    "Consumer",
    "ConsumerConfig",
    "ConsumerStats",
    "Gpu",
    "LotPricer",
    "MakerConfig",
    "MakerStats",
    "MarketMaker",
    "PlannedJob",
    "PriceSeries",
    "SdkVenue",
    "Venue",
    "connect_venue",
    "estimated_flops",
    "load_gpu_prices",
    "load_passages",
    "lot_price",
    "plan_jobs",
    "quote_prices",
]
