"""Tests of the exchange reuse the matching core's test market (`harness`)."""

import sys
from pathlib import Path

_MATCHING_TESTS = str(Path(__file__).resolve().parents[1] / "matching")
if _MATCHING_TESTS not in sys.path:
    sys.path.insert(0, _MATCHING_TESTS)
