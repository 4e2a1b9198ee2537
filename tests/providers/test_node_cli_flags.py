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
    (
        ["--energy-cost-per-hour", "-0.1"],
        "cux node: --energy-cost-per-hour: not a USD amount: '-0.1'; give US "
        "dollars an hour, such as 0.25",
    ),
    (["--cost-per-hour", "-1"], "cux node: --cost-per-hour: not a USD amount: '-1'"),
    (["--cost-per-hour", "nan"], "cux node: --cost-per-hour: not a USD amount"),
    (["--hardware-cost-per-hour", "inf"], "--hardware-cost-per-hour: not a USD"),
    (["--price-gpu", "H100"], "cux node: --price-gpu needs --price-series"),
    (
        ["--price-series", "shipped", "--price-gpu", "TPU"],
        "cux node: shipped: 'TPU' names no single GPU model of A100_80GB_SXM4",
    ),
    (
        ["--price-series", "/nonexistent.json"],
        "cux node: --price-series /nonexistent.json: cannot read the file: "
        "No such file or directory",
    ),
    (
        ["--markup-min-bps", "3000", "--markup-max-bps", "2000"],
        "cux node: --markup-min-bps (3000) and --markup-max-bps (2000) must be "
        "0 <= min <= max <= 100000",
    ),
    (["--markup-max-bps", "100001"], "must be 0 <= min <= max <= 100000"),
    (["--markup-min-bps", "ten"], "argument --markup-min-bps: invalid int value"),
]

REFUSED_BEFORE_LOADING = [
    (
        ["--heartbeat-seconds", "0"],
        "cux node: --heartbeat-seconds must be above 0 and at most 3600, not 0.0",
    ),
    (
        ["--probe-seconds", "0"],
        "cux node: --probe-seconds must be above 0 and at most 3600, not 0.0",
    ),
    (["--tick", "0"], "cux node: --tick must be a positive whole number, not 0"),
    (
        ["--exchange", "ftp://x"],
        "cux node: --exchange must be a ws:// or wss:// URL with a host, such as "
        "ws://127.0.0.1:8700/ws, not 'ftp://x'",
    ),
    (["--exchange", "ws:///ws"], "not 'ws:///ws'"),
    (["--node-id", "a b"], "cux node: --node-id must match"),
]


@pytest.mark.parametrize(("flags", "message"), REFUSED_BEFORE_LOADING)
def test_a_node_given_a_bad_flag_names_only_that_flag_and_exits_2_before_loading(
    flags: list[str], message: str
) -> None:
    command = [sys.executable, "-m", "exchange", "node", "--exchange"]
    command += ["ws://127.0.0.1:9/ws", "--key", "p1", "--secret", "s", *flags]

    # A flag let through would load the model and run on: the timeout ends it.
    done = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [message] or message in done.stderr
    assert len(done.stderr.splitlines()) == 1
    assert "lot-cu" not in done.stderr or "--lot-cu" in flags


def test_the_default_node_id_is_the_host_name_as_a_valid_id() -> None:
    from providers.node_cli import _NODE_ID, default_node_id

    node_id = default_node_id()

    assert node_id.startswith("node-")
    assert _NODE_ID.match(node_id)


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
