"""The replay analysis of a journal that a real `cux serve` wrote.

The flow is in `replay_harness`: an opening auction, continuous trades, an
offer cancelled and a bid cancelled, on ``cpu-SPOT`` (100 CU a lot, a tick of
1 µcr). Prices and quantities are known exactly; times are the server's clock,
so they are read from the replay, never assumed.
"""

from __future__ import annotations

import math

import msgspec
import numpy as np
from replay_harness import SYMBOL, ServerJournal, server_journal
from server_harness import replay_report

from exchange.analysis import MarketReplay, open_market
from exchange.analysis_compute import (
    LeaseStats,
    ProviderStats,
    leases,
    provider_series,
    providers,
)
from exchange.analysis_market import (
    AuctionResult,
    auctions,
    depth,
    spread,
    trades,
    volume_bars,
)

__all__ = ["server_journal"]  # the fixture, imported for pytest

CU = 10**9


def replayed(journal: ServerJournal) -> MarketReplay:
    return open_market(
        journal.data, expected_hash=journal.state_hash, expected_seq=journal.seq
    )


def prices(values: np.ndarray) -> list[int | None]:
    return [None if math.isnan(v) else int(v) for v in values]


def test_replay_of_a_server_journal_meets_every_snapshot_and_the_servers_hash(
    server_journal: ServerJournal,
) -> None:
    replay = replayed(server_journal)

    replay.verify()
    sources = [check.source for check in replay.hash_checks]
    assert sources[-1] == "expected"
    assert len(sources) >= 2, "snapshot_every = 3 leaves snapshots to check"
    assert all(source.endswith(".snap") for source in sources[:-1])
    assert all(check.ok for check in replay.hash_checks)
    assert replay.records == server_journal.seq
    assert replay.state_hash == server_journal.state_hash
    assert replay.state_hash == replay_report(server_journal.data)["state_hash"]
    assert replay.torn_tail is None


def test_replay_summary_counts_the_flows_commands_and_trades(
    server_journal: ServerJournal,
) -> None:
    summary = replayed(server_journal).summary()

    commands = summary["commands"]
    assert (commands["place"], commands["cancel"], commands["set_phase"]) == (7, 2, 2)
    assert (summary["trades"], summary["auctions"], summary["rejections"]) == (4, 1, 0)
    assert summary["verified"] is True


def test_trades_of_a_server_journal_are_the_auction_then_three_continuous(
    server_journal: ServerJournal,
) -> None:
    replay = replayed(server_journal)

    series = trades(replay, SYMBOL)

    assert series.trade_id.tolist() == [1, 2, 3, 4]
    assert series.price.tolist() == [1000, 1000, 1010, 1010]
    assert series.qty.tolist() == [4, 1, 1, 1]
    assert series.auction.tolist() == [True, False, False, False]
    assert series.notional == 4000 + 1000 + 1010 + 1010
    assert series.vwap() == 7020 / 7
    assert list(np.diff(series.ts) >= 0) == [True] * 3
    day = volume_bars(series, 86_400)
    assert (int(day.volume.sum()), int(day.count.sum())) == (7, 4)
    assert (int(day.low.min()), int(day.high.max())) == (1000, 1010)


def test_depth_of_a_server_journal_follows_every_change_of_the_book(
    server_journal: ServerJournal,
) -> None:
    book = depth(replayed(server_journal), SYMBOL)

    rows = list(
        zip(
            prices(book.bid),
            book.bid_qty.tolist(),
            prices(book.ask),
            book.ask_qty.tolist(),
            book.bid_depth.tolist(),
            book.ask_depth.tolist(),
            book.phase,
            strict=True,
        )
    )
    assert rows == [
        (None, 0, None, 0, 0, 0, "continuous"),  # capacity registered
        (None, 0, None, 0, 0, 0, "pre_open"),
        (None, 0, 1000, 5, 0, 5, "pre_open"),
        (None, 0, 1000, 5, 0, 8, "pre_open"),
        (1010, 4, 1000, 5, 4, 8, "pre_open"),  # crossed: a call phase
        (1010, 4, 1000, 5, 6, 8, "pre_open"),
        (990, 2, 1000, 1, 2, 4, "continuous"),  # after the opening auction
        (990, 2, 1010, 2, 2, 2, "continuous"),
        (990, 2, 1005, 3, 2, 5, "continuous"),
        (990, 2, 1010, 2, 2, 2, "continuous"),
        (990, 2, 1010, 1, 2, 1, "continuous"),
        (None, 0, 1010, 1, 0, 1, "continuous"),
    ]  # fmt: skip
    assert book.bid_lots.tolist() == book.bid_depth.tolist()  # under 10 levels
    assert book.ask_lots.tolist() == book.ask_depth.tolist()


def test_spread_of_a_server_journal_is_negative_while_crossed_and_nan_one_sided(
    server_journal: ServerJournal,
) -> None:
    book = depth(replayed(server_journal), SYMBOL)

    result = spread(book)

    assert prices(result.spread) == [
        None, None, None, None, -10, -10, 10, 20, 15, 20, 20, None
    ]  # fmt: skip
    assert result.mid[6] == 995.0
    assert result.bps[6] == 10 / 995 * 10_000


def test_auctions_of_a_server_journal_give_the_opening_beside_continuous_prices(
    server_journal: ServerJournal,
) -> None:
    replay = replayed(server_journal)

    (opening,) = auctions(replay, SYMBOL)

    assert msgspec.structs.replace(opening, seq=0, ts=0) == AuctionResult(
        SYMBOL, 0, 0, "opening", 1000, 4, -1, 1010, 1000, 1, None, 1000
    )
    assert opening.ts == int(trades(replay, SYMBOL).ts[0])


def test_leases_of_a_server_journal_are_its_four_spot_trades_still_live(
    server_journal: ServerJournal,
) -> None:
    found = leases(replayed(server_journal))

    starts = [lease.start for lease in found]
    assert found == [
        LeaseStats(SYMBOL, 1, "bob", "alice", 4, 1000, starts[0], 400 * CU),
        LeaseStats(SYMBOL, 2, "bob", "alice", 1, 1000, starts[1], 100 * CU),
        LeaseStats(SYMBOL, 3, "carol", "alice", 1, 1010, starts[2], 100 * CU),
        LeaseStats(SYMBOL, 4, "carol", "alice", 1, 1010, starts[3], 100 * CU),
    ]
    assert starts[1] == starts[2]  # one order took both


def test_providers_of_a_server_journal_sold_but_were_paid_nothing_yet(
    server_journal: ServerJournal,
) -> None:
    replay = replayed(server_journal)

    totals = providers(replay)
    series = {s.account: s for s in provider_series(replay, SYMBOL)}

    assert totals == [
        ProviderStats("bob", 2, 5, 500 * CU, 0, 5000, 0, 0),
        ProviderStats("carol", 2, 2, 200 * CU, 0, 2020, 0, 0),
    ]
    assert totals[0].revenue == 0
    assert math.isclose(totals[0].utilisation, 0.0)
    assert sorted(series) == ["bob", "carol"]
    assert series["bob"].capacity.tolist() == [100_000, 100_000, 100_000]
    assert series["bob"].leased.tolist() == [0, 4, 5]
    assert series["carol"].leased.tolist() == [0, 1, 2]
    assert series["carol"].utilisation.tolist() == [0.0, 1e-5, 2e-5]
    assert series["bob"].revenue.tolist() == [0, 0, 0]
