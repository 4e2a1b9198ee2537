"""Jobs in the core: numbered at OpenJob, closed once by CloseJob, journaled."""

import msgspec
import pytest
from harness import CPU, Market, command_rejected

from matching import (
    CloseJob,
    Code,
    Engine,
    EngineState,
    Job,
    JobClosed,
    JobOpened,
    OpenJob,
)
from matching.jobs import MAX_INPUTS

GFLOP = 10**9


def unstamped(m: Market) -> EngineState:
    """The engine's state without the last command's sequence number and time."""
    return msgspec.structs.replace(m.engine.snapshot(), seq=0, now=0)


def market() -> Market:
    m = Market()
    m.open("c", deposit=1_000, roles=("consumer",))
    return m


def test_open_job_numbers_jobs_from_one_and_keeps_them_until_closed() -> None:
    m = market()

    first = m.apply(OpenJob("c", CPU, "exact", 3, 500 * GFLOP, 20 * GFLOP))
    second = m.apply(OpenJob("c", CPU, "fast2", 1, 10 * GFLOP, 2 * GFLOP))

    assert first == [JobOpened(1, "c", CPU, "exact", 3, 500 * GFLOP, 20 * GFLOP)]
    assert second == [JobOpened(2, "c", CPU, "fast2", 1, 10 * GFLOP, 2 * GFLOP)]
    assert sorted(m.engine.jobs) == [1, 2]
    assert m.engine.jobs[1] == Job(
        1, "c", CPU, "exact", 3, 500 * GFLOP, 20 * GFLOP, m.engine.jobs[1].opened_at
    )


def test_close_job_reports_its_use_and_forgets_it() -> None:
    m = market()
    m.apply(OpenJob("c", CPU, "exact", 3, 500 * GFLOP, 20 * GFLOP))

    closed = m.apply(CloseJob(1, "done", 19 * GFLOP))

    assert closed == [
        JobClosed(1, "c", CPU, "done", 3, 500 * GFLOP, 20 * GFLOP, 19 * GFLOP, "")
    ]
    assert m.engine.jobs == {}


def test_a_closed_job_cannot_be_closed_again() -> None:
    m = market()
    m.apply(OpenJob("c", CPU, "exact", 1, GFLOP, GFLOP))
    m.apply(CloseJob(1, "cancelled", 0, "consumer cancelled"))

    again = m.apply(CloseJob(1, "done", 0))

    assert again == [command_rejected("close_job", Code.UNKNOWN_JOB)]


@pytest.mark.parametrize(
    ("command", "code"),
    [
        (OpenJob("nobody", CPU, "exact", 1, GFLOP, GFLOP), Code.UNKNOWN_ACCOUNT),
        (OpenJob("c", "gpu-NOPE", "exact", 1, GFLOP, GFLOP), Code.UNKNOWN_SYMBOL),
        (OpenJob("c", CPU, "exact", 0, GFLOP, GFLOP), Code.INVALID_JOB),
        (OpenJob("c", CPU, "exact", MAX_INPUTS + 1, GFLOP, GFLOP), Code.INVALID_JOB),
        (OpenJob("c", CPU, "exact", 1, 0, GFLOP), Code.INVALID_JOB),
        (OpenJob("c", CPU, "exact", 1, GFLOP, -1), Code.INVALID_JOB),
        (OpenJob("c", CPU, "", 1, GFLOP, GFLOP), Code.INVALID_JOB),
        (OpenJob("c", CPU, "exact", 1, 2**63, GFLOP), Code.INVALID_JOB),
        (OpenJob("c", CPU, "exact", True, GFLOP, GFLOP), Code.INVALID_JOB),
    ],
)
def test_a_bad_open_job_is_rejected_and_changes_nothing(
    command: OpenJob, code: Code
) -> None:
    m = market()
    before = unstamped(m)

    events = m.apply(command)

    assert events == [command_rejected("open_job", code)]
    assert unstamped(m) == before


@pytest.mark.parametrize(
    "command",
    [
        CloseJob(1, "exploded", 0),  # type: ignore[arg-type]
        CloseJob(1, "done", -1),
        CloseJob(1, "done", 2**63),
        CloseJob(1, "failed", 0, "x" * 65),
    ],
)
def test_a_bad_close_job_is_rejected_and_the_job_stays_open(command: CloseJob) -> None:
    m = market()
    m.apply(OpenJob("c", CPU, "exact", 1, GFLOP, GFLOP))

    events = m.apply(command)

    assert events == [command_rejected("close_job", Code.INVALID_JOB)]
    assert list(m.engine.jobs) == [1]


def test_open_jobs_survive_snapshot_restore_and_replay() -> None:
    m = market()
    m.apply(OpenJob("c", CPU, "exact", 2, 5 * GFLOP, 4 * GFLOP))
    m.apply(OpenJob("c", CPU, "exact", 1, GFLOP, GFLOP))
    m.apply(CloseJob(1, "failed", GFLOP, "node lost"))

    replayed = m.replay()
    restored = Engine.restore(m.config, m.engine.snapshot())

    assert replayed.state_hash() == m.state_hash() == restored.state_hash()
    assert replayed.engine.jobs == m.engine.jobs == restored.jobs
    assert restored.job_seq == 2
