"""Market configuration: validated at the edge, listed as spot instruments."""

import pytest

from matching import (
    ConfigError,
    Engine,
    InstrumentSpec,
    MarketConfig,
    ResourceClass,
    load_market,
)

CPU_RAW = {"name": "cpu", "lot_cu": 100, "tick": 1, "taker_fee_bps": 10}


def test_load_market_reads_plain_data_into_resource_classes_with_defaults() -> None:
    config = load_market({"classes": [CPU_RAW]})

    assert config == MarketConfig(
        classes=[
            ResourceClass(
                "cpu",
                lot_cu=100,
                tick=1,
                taker_fee_bps=10,
                maker_fee_bps=0,
                lease_seconds=300,
            )
        ]
    )


def test_each_class_lists_one_spot_instrument() -> None:
    config = load_market(
        {"classes": [CPU_RAW, {"name": "gpu-h100", "lot_cu": 1000, "tick": 5}]}
    )

    assert config.instruments() == [
        InstrumentSpec("cpu-SPOT", "cpu", "spot", 100, 1, 10, 0, lease_seconds=300),
        InstrumentSpec(
            "gpu-h100-SPOT", "gpu-h100", "spot", 1000, 5, 0, 0, lease_seconds=300
        ),
    ]
    assert sorted(Engine(config).instruments) == ["cpu-SPOT", "gpu-h100-SPOT"]


def test_max_fee_is_the_higher_of_the_taker_and_maker_rates() -> None:
    config = load_market(
        {"classes": [{**CPU_RAW, "taker_fee_bps": 5, "maker_fee_bps": 12}]}
    )

    assert config.instruments()[0].max_fee_bps == 12


@pytest.mark.parametrize(
    ("change", "field"),
    [
        pytest.param({"name": "CPU"}, "name", id="upper-case name"),
        pytest.param({"name": ""}, "name", id="empty name"),
        pytest.param({"lot_cu": 0}, "lot_cu", id="zero lot"),
        pytest.param({"tick": 0}, "tick", id="zero tick"),
        pytest.param({"tick": -1}, "tick", id="negative tick"),
        pytest.param({"tick": 1.5}, "tick", id="fractional tick"),
        pytest.param({"tick": 2.0}, "tick", id="float tick"),
        pytest.param({"taker_fee_bps": -1}, "taker_fee_bps", id="negative fee"),
        pytest.param({"maker_fee_bps": 1001}, "maker_fee_bps", id="fee over 10%"),
        pytest.param({"lease_seconds": 0}, "lease_seconds", id="zero lease"),
        pytest.param({"colour": "red"}, "colour", id="unknown field"),
    ],
)
def test_invalid_class_is_refused_naming_the_field(
    change: dict[str, object], field: str
) -> None:
    raw = {**CPU_RAW, **change}

    with pytest.raises(ConfigError, match=field):
        load_market({"classes": [raw]})


def test_missing_field_is_refused_naming_it() -> None:
    with pytest.raises(ConfigError, match="tick"):
        load_market({"classes": [{"name": "cpu", "lot_cu": 100}]})


def test_duplicate_class_names_are_refused() -> None:
    with pytest.raises(ConfigError, match="unique"):
        load_market({"classes": [CPU_RAW, CPU_RAW]})


def test_duplicate_class_names_are_refused_when_built_in_code() -> None:
    cpu = ResourceClass("cpu", lot_cu=100, tick=1)

    with pytest.raises(ConfigError, match="unique"):
        MarketConfig(classes=[cpu, cpu])


def test_digest_is_stable_and_changes_with_any_setting() -> None:
    config = load_market({"classes": [CPU_RAW]})
    same = load_market({"classes": [dict(CPU_RAW)]})
    other = load_market({"classes": [{**CPU_RAW, "maker_fee_bps": 1}]})

    assert config.digest() == same.digest()
    assert config.digest() != other.digest()
    assert len(config.digest()) == 64


@pytest.mark.parametrize(
    "rc",
    [
        pytest.param(ResourceClass("cpu", lot_cu=100, tick=0), id="zero tick"),
        pytest.param(ResourceClass("cpu", lot_cu=0, tick=1), id="zero lot"),
        pytest.param(
            ResourceClass("cpu", lot_cu=100, tick=1, taker_fee_bps=20_000), id="fee"
        ),
        pytest.param(
            ResourceClass("cpu", lot_cu=100, tick=1, batch_interval_ms=0), id="batch"
        ),
        pytest.param(
            ResourceClass("cpu", lot_cu=100, tick=1, spot_phase="bogus"),  # type: ignore[arg-type]
            id="phase",
        ),
    ],
)
def test_engine_refuses_a_configuration_built_in_python_with_a_bad_value(
    rc: ResourceClass,
) -> None:
    with pytest.raises(ConfigError, match="invalid market configuration"):
        Engine(MarketConfig(classes=[rc]))
