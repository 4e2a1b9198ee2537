"""``python -m clients.agents`` as a process against a real ``cux serve``."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from server_harness import ROOT, ServerProcess, write_config


def agents(server: ServerProcess, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "clients.agents",
            "--url",
            server.url,
            "--cu-per-second",
            "25",
            *args,
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def book(server: ServerProcess) -> tuple[list[list[int]], list[list[int]]]:
    body = server.get("/api/v1/book/cpu-SPOT").body
    return body["bids"], body["asks"]


def wait_until(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_agents_run_a_maker_and_a_consumer_until_its_jobs_are_sent_then_report(
    tmp_path: Path,
) -> None:
    with ServerProcess(write_config(tmp_path), tmp_path / "data") as server:
        process = agents(
            server,
            *("--maker", "bob", "--consumer", "alice:alice-secret"),
            *("--mode", "order", "--jobs", "4", "--rate", "20"),
            *("--willingness-bps", "12000", "--willingness-spread-bps", "0"),
        )
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err
        report = json.loads(out)
        trades = server.get("/api/v1/trades/cpu-SPOT").body["trades"]
        assert book(server) == ([], [])

    # Willing to pay 120% of the series' price, the consumer takes the
    # maker's ask (the price plus 1%) four times.
    consumer, maker = report["consumer0"], report["mm0"]
    assert (consumer["submitted"], consumer["accepted"]) == (4, 4)
    assert consumer["lots_bought"] == maker["sold"] == len(trades) == 4
    assert {t["price"] for t in trades} == {2_233}
    assert consumer["spent"] == 4 * 2_233


def test_agents_stopped_by_sigterm_cancel_the_makers_quotes_and_exit_0(
    tmp_path: Path,
) -> None:
    with ServerProcess(write_config(tmp_path), tmp_path / "data") as server:
        process = agents(server, "--maker", "bob", "--size", "7")
        try:
            assert wait_until(lambda: book(server) == ([[2_189, 7]], [[2_233, 7]]))
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        assert process.returncode == 0, err
        assert json.loads(out)["mm0"]["placed"] == 2
        assert book(server) == ([], [])


def test_agents_without_any_agent_is_a_usage_error() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "clients.agents"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "give at least one --maker or --consumer" in done.stderr
