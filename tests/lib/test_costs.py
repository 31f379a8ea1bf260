"""Prices and costs: the published table, REPLICATE_PRICES over it, the cost of billed seconds."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lib.accounts import costs, spend
from lib.errors import ConfigError
from lib.settings import load_settings


def test_without_settings_the_trainer_and_trained_models_run_at_replicates_h100_price():
    settings = load_settings({})

    assert settings.trainer_hardware == settings.model_hardware == "gpu-h100"
    assert settings.replicate_prices["gpu-h100"] == 0.001525
    assert settings.monthly_spend_limit_usd is None


def test_replicate_prices_override_and_add_hardware():
    settings = load_settings({"REPLICATE_PRICES": '{"gpu-h100": 0.002, "gpu-b200": 0.004}'})

    assert settings.replicate_prices["gpu-h100"] == 0.002
    assert settings.replicate_prices["gpu-b200"] == 0.004
    assert settings.replicate_prices["gpu-t4"] == 0.000225


@pytest.mark.parametrize(
    "value",
    [
        "{not json",
        "[0.001]",
        '{"gpu-h100": "cheap"}',
        '{"gpu-h100": -1}',
        '{"x": true}',
        '{"x": 1e400}',
    ],
)
def test_a_malformed_price_table_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="REPLICATE_PRICES"):
        load_settings({"REPLICATE_PRICES": value})


@pytest.mark.parametrize("value", ["lots", "-5", "NaN", "Infinity"])
def test_a_spend_limit_that_is_not_an_amount_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="MONTHLY_SPEND_LIMIT_USD"):
        load_settings({"MONTHLY_SPEND_LIMIT_USD": value})


def test_a_configured_hardware_without_a_price_is_refused_by_name():
    with pytest.raises(ConfigError, match="REPLICATE_MODEL_HARDWARE 'gpu-b200' has no price"):
        load_settings({"REPLICATE_MODEL_HARDWARE": "gpu-b200"})


def test_the_cost_is_replicates_predict_time_at_the_hardwares_price():
    seconds = costs.billed_seconds({"predict_time": 1674.940257378, "total_time": 1700.1})

    assert costs.cost_usd(seconds, Decimal("0.001525")) == Decimal("2.554284")


@pytest.mark.parametrize(
    "metrics",
    [None, {}, {"predict_time": "12"}, {"predict_time": -1}, {"predict_time": 1e300}, [1.0]],
)
def test_metrics_without_billed_seconds_give_none(metrics):
    assert costs.billed_seconds(metrics) is None


def test_unreported_hardware_is_priced_as_the_default():
    prices = costs.parse_prices(None)

    assert costs.price_per_second(None, prices, "gpu-h100") == Decimal("0.001525")
    assert costs.price_per_second("gpu-unknown", prices, "gpu-t4") == Decimal("0.000225")


@pytest.mark.parametrize(
    ("now", "reset"),
    [
        (datetime(2026, 12, 31, 23, 59, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC)),
        (datetime(2027, 2, 1, 0, 0, tzinfo=UTC), datetime(2027, 3, 1, tzinfo=UTC)),
    ],
)
def test_the_monthly_spend_resets_on_the_first_of_the_next_utc_month(now, reset):
    assert spend.month_reset(now) == reset
