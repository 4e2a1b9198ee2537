"""The replay analysis of metered work: leases, providers, jobs and hash checks.

The server does not meter work on its own yet, so this journal is written by
the file journal from commands stamped here, on a clock of our own: a provider
``pat`` and a consumer ``cy`` on ``cpu`` (100 CU a lot, a tick of 1 µcr, a
taker fee of 10 bps and a maker fee of 5 bps, leases of 300 s), and the window
``cpu-20260105T10``, listed by command, with no closing call. Every amount is
worked out in the comments.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import msgspec
import pytest
from journal_flow import write_journal

from exchange.analysis import open_market
from exchange.analysis_compute import (
    LeaseStats,
    ProviderStats,
    leases,
    provider_series,
    providers,
)
from exchange.analysis_jobs import JobStats, JobTotals, job_totals, jobs
from exchange.analysis_sources import StateHashMismatch, default_journal
from exchange.journal import JournalError, JournalRecord
from exchange.journal.snapshots import write_snapshot
from matching import (
    CloseJob,
    Command,
    Deposit,
    EndLease,
    Engine,
    FuturesTerms,
    ListFuture,
    MarketConfig,
    OpenAccount,
    OpenJob,
    PlaceOrder,
    RecordUsage,
    ResourceClass,
    SetCapacity,
    Tick,
)

CONFIG = MarketConfig(
    classes=[
        ResourceClass(
            "cpu",
            lot_cu=100,
            tick=1,
            taker_fee_bps=10,
            maker_fee_bps=5,
            futures=FuturesTerms(list_ahead_hours=0, closing_call_seconds=0),
        )
    ]
)
SPOT = "cpu-SPOT"
FUTURE = "cpu-20260105T10"
SECOND = 1_000_000_000
NINE = 1_767_603_600 * SECOND  # 2026-01-05 09:00 UTC
TEN = NINE + 3600 * SECOND
CU = 10**9

# (seconds after 09:00, command)
FLOW: list[tuple[int, Command]] = [
    (0, OpenAccount("pat", ("provider",))),
    (0, SetCapacity("pat", SPOT, 100)),
    (0, OpenAccount("cy")),
    (0, Deposit("cy", 10**9)),
    (0, ListFuture("cpu", TEN)),
    (0, SetCapacity("pat", FUTURE, 10)),
    (1, PlaceOrder("pat", SPOT, "sell", 10, price=1000)),
    # Trade 1, lease 1: 4 lots at 1000, 400 CU, an escrow of 4,000 µcr.
    (2, PlaceOrder("cy", SPOT, "buy", 4, price=1000)),
    (3, OpenJob("cy", SPOT, "balanced", 3, 300 * CU, 300 * CU)),
    (10, RecordUsage(SPOT, 1, 150 * CU)),
    (10, CloseJob(1, "done", 150 * CU)),
    # Pays 4,000 x 150 / 400 = 1,500 less a maker fee of 1 (5 bps, rounded
    # up); refunds 2,500.
    (10, EndLease(SPOT, 1, "used_up")),
    # Trade 2, lease 2: 2 lots, never used: it expires at 09:05:20.
    (20, PlaceOrder("cy", SPOT, "buy", 2, price=1000)),
    (30, OpenJob("cy", SPOT, "exact", 2, 50 * CU, 50 * CU)),
    (40, CloseJob(2, "failed", 10 * CU, "node lost")),
    (50, OpenJob("cy", SPOT, "fast", 5, 90 * CU, 100 * CU)),  # still open
    # Trade 3 on the window: 3 lots at 2,000, paid at the trade.
    (60, PlaceOrder("pat", FUTURE, "sell", 3, price=2000)),
    (61, PlaceOrder("cy", FUTURE, "buy", 3, price=2000)),
    (400, Tick()),  # lease 2 expires: pays 0, refunds 2,000
    # 10:00: the window's lease 1 of 3 lots, 300 CU, from pat to cy.
    (3600, Tick()),
    (3700, RecordUsage(FUTURE, 1, 100 * CU)),
    # 11:00: the lease expires; pat is paid 6,000 less 3 (5 bps, rounded up).
    (7200, Tick()),
]


def flow_records() -> list[JournalRecord]:
    return [
        JournalRecord(seq, NINE + at * SECOND, command)
        for seq, (at, command) in enumerate(FLOW, start=1)
    ]


def engine_after(count: int) -> Engine:
    engine = Engine(CONFIG)
    for record in flow_records()[:count]:
        engine.apply(record.seq, record.ts, record.command)
    return engine


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_journal(tmp_path / "data", [flow_records()], CONFIG)
    return tmp_path / "data"


def test_leases_are_settled_by_usage_expired_unused_and_delivered_from_a_window(
    data: Path,
) -> None:
    found = leases(open_market(data))

    assert found == [
        LeaseStats(
            SPOT, 1, "pat", "cy", 4, 1000, NINE + 2 * SECOND, 400 * CU,
            end=NINE + 10 * SECOND, state="used_up", used_flops=150 * CU,
            payout=1500, seller_fee=1, refund=2500,
        ),
        LeaseStats(
            SPOT, 2, "pat", "cy", 2, 1000, NINE + 20 * SECOND, 200 * CU,
            end=NINE + 400 * SECOND, state="expired", used_flops=0,
            payout=0, seller_fee=0, refund=2000,
        ),
        LeaseStats(
            FUTURE, 1, "pat", "cy", 3, 2000, TEN, 300 * CU,
            end=NINE + 7200 * SECOND, state="expired", used_flops=100 * CU,
        ),
    ]  # fmt: skip
    assert [lease.utilisation for lease in found] == [0.375, 0.0, 1 / 3]


def test_provider_totals_add_payouts_less_fees_over_spot_and_the_window(
    data: Path,
) -> None:
    (pat,) = providers(open_market(data))

    # Sold 4 + 2 spot lots at 1,000 and 3 window lots at 2,000.
    assert pat == ProviderStats("pat", 3, 9, 900 * CU, 250 * CU, 12_000, 7_500, 4)
    assert pat.revenue == 7_496
    assert pat.utilisation == 250 / 900


def test_provider_series_follows_capacity_leased_lots_usage_and_revenue(
    data: Path,
) -> None:
    (spot,) = provider_series(open_market(data), SPOT)
    (window,) = provider_series(open_market(data), FUTURE)

    rows = list(
        zip(
            spot.capacity.tolist(),
            spot.leased.tolist(),
            spot.used_flops.tolist(),
            spot.revenue.tolist(),
            strict=True,
        )
    )
    assert rows == [
        (100, 0, 0, 0),  # capacity registered
        (100, 4, 0, 0),  # trade 1
        (100, 4, 150 * CU, 0),  # usage
        (100, 0, 150 * CU, 1499),  # lease 1 ended and paid
        (100, 2, 150 * CU, 1499),  # trade 2
        (100, 0, 150 * CU, 1499),  # lease 2 expired, unpaid
    ]
    assert spot.utilisation.tolist() == [0.0, 0.04, 0.04, 0.0, 0.02, 0.0]
    assert spot.seq.tolist() == [2, 8, 10, 12, 13, 19]
    assert window.leased.tolist() == [0, 3, 3, 0]
    assert window.used_flops.tolist() == [0, 0, 100 * CU, 100 * CU]
    assert window.revenue.tolist() == [0, 0, 0, 5997]


def test_jobs_give_cu_used_against_full_depth_open_and_closed(data: Path) -> None:
    found = jobs(open_market(data))

    assert found == [
        JobStats(
            1, "cy", SPOT, "balanced", 3, "done", 300 * CU, 300 * CU, 150 * CU,
            NINE + 3 * SECOND, NINE + 10 * SECOND,
        ),
        JobStats(
            2, "cy", SPOT, "exact", 2, "failed", 50 * CU, 50 * CU, 10 * CU,
            NINE + 30 * SECOND, NINE + 40 * SECOND, "node lost",
        ),
        JobStats(
            3, "cy", SPOT, "fast", 5, "open", 90 * CU, 100 * CU, 0,
            NINE + 50 * SECOND,
        ),
    ]  # fmt: skip
    assert [job.cu for job in found] == [150.0, 10.0, 0.0]
    assert [job.saved_flops for job in found] == [150 * CU, 40 * CU, 0]
    assert [job.saved_share for job in found] == [0.5, 0.8, 0.0]


def test_job_totals_add_up_closed_jobs_per_tier_deepest_first(data: Path) -> None:
    totals = job_totals(jobs(open_market(data)))

    assert totals == [
        JobTotals("exact", 1, 0, 2, 10 * CU, 50 * CU),
        JobTotals("balanced", 1, 1, 3, 150 * CU, 300 * CU),
        JobTotals("all", 2, 1, 5, 160 * CU, 350 * CU),
    ]
    assert totals[-1].saved_share == 190 / 350
    assert totals[1].describe() == (
        "balanced: 1 jobs (1 done), 3 inputs, 150.0 CU used of 300.0 at full "
        "depth: 50.0% saved"
    )


def test_expected_hash_at_a_sequence_number_is_met_and_a_wrong_one_fails(
    data: Path,
) -> None:
    good = engine_after(10).state_hash()

    met = open_market(data, expected_hash=good, expected_seq=10)
    missed = open_market(data, expected_hash="0" * 64)

    met.verify()
    assert [(c.seq, c.ok) for c in met.hash_checks] == [(10, True)]
    assert not missed.verified
    with pytest.raises(StateHashMismatch, match=f"seq {len(FLOW)} \\(expected\\)"):
        missed.verify()


def test_a_snapshot_of_another_state_fails_the_check_at_its_sequence_number(
    data: Path,
) -> None:
    # A snapshot at seq 12 of an engine that did not end lease 1 at seq 12.
    other = engine_after(11)
    other.apply(12, NINE + 10 * SECOND, Tick())
    write_snapshot(data / "snapshots", other.snapshot(), lambda fd: None)
    write_snapshot(data / "snapshots", engine_after(13).snapshot(), lambda fd: None)

    replay = open_market(data)

    assert [(c.seq, c.source, c.ok) for c in replay.hash_checks] == [
        (12, "00000000000000000012.snap", False),
        (13, "00000000000000000013.snap", True),
    ]
    with pytest.raises(StateHashMismatch, match=r"00000000000000000012\.snap"):
        replay.verify()


def test_a_damaged_snapshot_or_one_past_the_journal_fails_its_check(
    data: Path,
) -> None:
    snapshots = data / "snapshots"
    damaged = write_snapshot(snapshots, engine_after(5).snapshot(), lambda fd: None)
    raw = damaged.read_bytes()
    damaged.write_bytes(raw[:-1] + bytes([raw[-1] ^ 0xFF]))
    beyond = Engine(CONFIG)
    for record in flow_records():
        beyond.apply(record.seq, record.ts, record.command)
    beyond.apply(len(FLOW) + 1, NINE + 7300 * SECOND, Tick())
    write_snapshot(snapshots, beyond.snapshot(), lambda fd: None)

    checks = open_market(data).hash_checks

    assert [(c.seq, c.ok) for c in checks] == [(5, False), (len(FLOW) + 1, False)]
    assert "checksum" in checks[0].note
    assert checks[1].note == f"the journal ends at record {len(FLOW)}"


def test_a_torn_last_record_is_skipped_and_reported(data: Path) -> None:
    (segment,) = (data / "journal").iterdir()
    with segment.open("ab") as file:
        file.write(b"\x10\x00\x00\x00\x01")  # a frame header cut short

    replay = open_market(data)

    assert replay.records == len(FLOW)
    assert replay.torn_tail is not None
    assert replay.torn_tail.path == segment.resolve()


def test_a_folder_without_a_journal_is_refused(tmp_path: Path) -> None:
    with pytest.raises(JournalError, match="no journal"):
        open_market(tmp_path)


def test_default_journal_is_the_newest_demo_data_folder_else_the_fallback(
    tmp_path: Path, data: Path
) -> None:
    demo = tmp_path / "demo"
    first, second = demo / "run-1", demo / "run-2"
    write_journal(first, [flow_records()[:3]], CONFIG)
    write_journal(second, [flow_records()[:3]], CONFIG)
    # By the time the files were written, not by name: run-1 is the newer.
    for folder, when in ((first, 1_100_000_000), (second, 1_000_000_000)):
        for segment in (folder / "journal").iterdir():
            os.utime(segment, (when, when))

    assert default_journal("fallback", [demo]) == first
    assert default_journal("fallback", [demo, data]) == data  # written just now
    assert default_journal("fallback", [tmp_path / "none"]) == Path("fallback")


def test_analysis_amounts_are_integers_not_floats(data: Path) -> None:
    replay = open_market(data)

    values = [*msgspec.structs.astuple(providers(replay)[0])[1:]]
    values += [v for lease in leases(replay) for v in msgspec.structs.astuple(lease)]
    assert all(type(v) is not float for v in values)
    assert not math.isnan(providers(replay)[0].utilisation)
