"""Traders never load torch: the SDK, the core and the metering stay free of it."""

import subprocess
import sys

PURE = [
    "matching",
    "clients",
    "exchange.cli",
    "providers",
    "providers.metering",
    "providers.jobs",
    "providers.tiers",
    "providers.probe",
    "providers.profile",
    "providers.weights",
    "providers.tokens",
    "providers.pricing",
    "providers.capacity",
    "providers.daemon",
    "providers.node_cli",
]


def test_the_core_the_clients_and_the_metering_import_without_torch() -> None:
    code = (
        f"import importlib, sys\nfor m in {PURE!r}: importlib.import_module(m)\n"
        "from providers.tokens import TokenCounter\n"
        "assert TokenCounter().count(['a fox']) == [4]\n"
        "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"
    )

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )

    assert out.stdout.strip() == "[]"
