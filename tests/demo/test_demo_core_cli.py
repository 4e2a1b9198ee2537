"""``cux demo --core-only`` as a user runs it: a real process, its output and its
exit code (the live demo is tested in ``tests/demo``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from exchange.demo_core import run_demo
from matching import Deposited, Withdrawn

REPO = Path(__file__).resolve().parents[2]
CUX = Path(sys.executable).with_name("cux")


def cux(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed ``cux`` script, or ``python -m exchange`` without one."""
    command = [str(CUX)] if CUX.exists() else [sys.executable, "-m", "exchange"]
    return subprocess.run(
        [*command, *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def state_hash(output: str) -> str:
    match = re.search(r"^state hash: ([0-9a-f]{64})$", output, re.MULTILINE)
    assert match is not None, output
    return match.group(1)


def test_demo_exits_zero_and_prints_trades_book_balances_and_state_hash() -> None:
    result = cux("demo", "--core-only", "--seed", "7")

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = result.stdout
    assert "Trades (" in out
    assert re.search(r"^id +price +qty +taker +buyer +seller +buyer fee$", out, re.M)
    assert "Book cpu-SPOT (bids best first | asks best first)" in out
    assert re.search(r"^bid price +qty +\| +ask price +qty$", out, re.M)
    assert re.search(r"^venue fee income +\d+\.\d{6}$", out, re.M)
    state_hash(out)


def test_demo_with_the_same_seed_prints_the_same_output() -> None:
    first = cux("demo", "--core-only", "--seed", "3", "--steps", "30")
    second = cux("demo", "--core-only", "--seed", "3", "--steps", "30")

    assert first.returncode == second.returncode == 0
    assert first.stdout == second.stdout


def test_demo_with_another_seed_ends_in_another_state_hash() -> None:
    one = cux("demo", "--core-only", "--seed", "1")
    two = cux("demo", "--core-only", "--seed", "2")

    assert one.returncode == two.returncode == 0
    assert state_hash(one.stdout) != state_hash(two.stdout)


def test_python_m_exchange_runs_the_same_demo_as_cux() -> None:
    module = subprocess.run(
        [sys.executable, "-m", "exchange", "demo", "--core-only", "--seed", "5"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert module.returncode == 0, module.stderr
    assert module.stdout == cux("demo", "--core-only", "--seed", "5").stdout


@pytest.mark.parametrize("args", [["--help"], ["demo", "--help"]])
def test_help_exits_zero_and_shows_usage(args: list[str]) -> None:
    result = cux(*args)

    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: cux")


def test_demo_with_negative_steps_is_a_usage_error() -> None:
    result = cux("demo", "--core-only", "--steps", "-1")

    assert result.returncode == 2
    assert "--steps: must be from 0 to 1,000,000, got -1" in result.stderr


@pytest.mark.parametrize(("seed", "steps"), [(1, 0), (2, 20), (99, 200)])
def test_scenario_ends_holding_exactly_deposits_less_withdrawals(
    seed: int, steps: int
) -> None:
    run = run_demo(seed=seed, steps=steps)

    ledger = run.engine.ledger
    deposited = sum(e.amount for e in run.events if isinstance(e, Deposited))
    withdrawn = sum(e.amount for e in run.events if isinstance(e, Withdrawn))
    assert withdrawn > 0
    assert ledger.total() == deposited - withdrawn
    assert (ledger.deposits, ledger.withdrawals) == (deposited, withdrawn)
    assert run.trades


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--steps", "1e3", "must be a whole number, got '1e3'"),
        ("--steps", "10000000", "must be from 0 to 1,000,000"),
        ("--seed", "-1", "must be from 0 to 4,294,967,295"),
    ],
)
def test_demo_refuses_out_of_range_numbers_with_a_plain_message(
    flag: str, value: str, message: str
) -> None:
    result = cux("demo", "--core-only", flag, value)

    assert result.returncode == 2
    assert message in result.stderr


def test_demo_steps_without_core_only_is_refused_not_ignored() -> None:
    result = cux("demo", "--steps", "5", "--duration", "1")

    assert result.returncode == 2
    assert result.stderr.strip() == "cux demo: --steps goes with --core-only"
