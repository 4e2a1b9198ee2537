"""The shipped quality profile is what the probe set measures, and it is honest."""

import pytest

from providers.model import EncoderModel
from providers.probe import load_probe_set, paraphrase_recall_at_1
from providers.profile import format_profile, load_profile, measure_profile
from providers.tiers import TIERS
from providers.weights import WEIGHTS_SHA256


def test_the_shipped_profile_matches_a_fresh_measurement(model: EncoderModel) -> None:
    probe = load_probe_set()
    shipped = load_profile()

    fresh = measure_profile(model, probe)

    assert shipped.probe_sha256 == probe.sha256
    assert shipped.weights_sha256 == WEIGHTS_SHA256
    assert [t.tier for t in shipped.tiers] == list(TIERS)
    for old, new in zip(shipped.tiers, fresh.tiers, strict=True):
        assert (old.layers, old.flops, old.cu_fraction) == (
            new.layers,
            new.flops,
            new.cu_fraction,
        )
        assert old.mean_cosine_to_exact == pytest.approx(
            new.mean_cosine_to_exact, abs=1e-3
        )
        # One query in 160 may flip between devices: a tolerance of two.
        assert old.recall_at_1 == pytest.approx(new.recall_at_1, abs=0.0126)
    assert "R@1 vs exact" in format_profile(fresh)


def test_cheaper_tiers_cost_less_and_the_profile_shows_what_they_lose() -> None:
    tiers = load_profile().tiers

    fractions = [t.cu_fraction for t in tiers]
    assert fractions == sorted(fractions, reverse=True)
    assert tiers[0].tier == "exact"
    assert tiers[0].mean_cosine_to_exact == 1.0
    for cheaper in tiers[1:]:
        assert cheaper.cu_fraction < 1.0
        assert cheaper.mean_cosine_to_exact < 0.9  # not trained for exits
        assert cheaper.recall_at_1_against_exact < tiers[0].recall_at_1


def test_the_probe_set_pairs_every_query_with_its_paraphrase() -> None:
    probe = load_probe_set()

    assert probe.pairs == 80
    assert len(probe.sentences) == 210
    assert probe.partner(0) == 80
    assert probe.partner(80) == 0
    with pytest.raises(IndexError):
        probe.partner(160)


def test_recall_counts_a_query_found_only_when_its_paraphrase_is_nearest() -> None:
    probe = load_probe_set()
    n = len(probe.sentences)
    # Each pair shares a direction of its own; every decoy points elsewhere.
    vectors = [[0.0] * (probe.pairs + 1) for _ in range(n)]
    for i in range(probe.queries):
        vectors[i][i % probe.pairs] = 1.0
    for i in range(probe.queries, n):
        vectors[i][probe.pairs] = 1.0

    assert paraphrase_recall_at_1(probe, vectors) == 1.0

    vectors[probe.partner(0)] = vectors[probe.queries]  # 0's match now a decoy
    assert paraphrase_recall_at_1(probe, vectors) < 1.0
