"""``cux node`` checks its pricing flags before it loads anything: a bad value
or a combination that names two costs is refused with a message that says
which flags, and the status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest
from server_harness import ROOT

REFUSED = [
    (
        ["--cost-per-hour", "1", "--energy-cost-per-hour", "0.2"],
        "cux node: give one cost, not --cost-per-hour and "
        "--energy/--hardware-cost-per-hour",
    ),
    (
        ["--hardware-cost-per-hour", "1", "--price-series", "shipped"],
        "cux node: give one cost, not --energy/--hardware-cost-per-hour and "
        "--price-series",
    ),
    (["--energy-cost-per-hour", "-0.1"], "cux node: not a USD amount: '-0.1'"),
    (["--price-gpu", "H100"], "cux node: --price-gpu needs --price-series"),
    (
        ["--price-series", "shipped", "--price-gpu", "TPU"],
        "cux node: shipped: 'TPU' names no single GPU model of A100_80GB_SXM4",
    ),
    (["--price-series", "no-such-file.json"], "No such file or directory"),
    (
        ["--markup-min-bps", "3000", "--markup-max-bps", "2000"],
        "cux node: --markup-min-bps (3000) and --markup-max-bps (2000) must be "
        "0 <= min <= max <= 100000",
    ),
    (["--markup-max-bps", "100001"], "must be 0 <= min <= max <= 100000"),
    (["--markup-min-bps", "ten"], "argument --markup-min-bps: invalid int value"),
]


@pytest.mark.parametrize(("flags", "message"), REFUSED)
def test_a_node_given_bad_pricing_flags_says_why_and_exits_with_status_2(
    flags: list[str], message: str
) -> None:
    command = [sys.executable, "-m", "exchange", "node", "--exchange"]
    command += ["ws://127.0.0.1:9/ws", "--key", "p1", "--secret", "s", *flags]

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)

    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stdout == ""
