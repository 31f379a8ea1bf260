"""What Replicate charges: a price per second for each hardware, and the cost of a finished job.

Replicate bills public models (the trainer, fine-tuned Flux versions) for the seconds a job
runs, `metrics.predict_time`, at the price of the hardware it runs on; queueing and setup are
free. The defaults are Replicate's published prices (replicate.com/pricing, USD per second);
REPLICATE_PRICES overrides or adds hardware.
"""

import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from lib.errors import ConfigError

PUBLISHED_PRICES: dict[str, float] = {
    "cpu": 0.000100,
    "gpu-t4": 0.000225,
    "gpu-a40-small": 0.000575,
    "gpu-a40-large": 0.000725,
    "gpu-l40s": 0.000975,
    "gpu-2x-l40s": 0.001950,
    "gpu-a100-large": 0.001400,
    "gpu-a100-large-2x": 0.002800,
    "gpu-h100": 0.001525,
    "gpu-h100-2x": 0.003050,
    "gpu-h100-4x": 0.006100,
    "gpu-h100-8x": 0.012200,
}
# Replicate does not report a public model's hardware; these are published on the models' pages.
TRAINER_HARDWARE = {"ostris/flux-dev-lora-trainer": "gpu-h100"}
# "Flux fine-tunes run on H100s" (replicate.com/pricing): the trained models' default.
MODEL_HARDWARE = "gpu-h100"
# Bounds that keep costs within Decimal's precision: no job runs 115 days, no GPU costs $1000/s.
MAX_BILLED_SECONDS = 10_000_000
MAX_USD_PER_SECOND = 1000


def parse_prices(raw: str | None) -> dict[str, float]:
    """The price table: the published prices, then REPLICATE_PRICES' JSON object over them."""
    if raw is None:
        return dict(PUBLISHED_PRICES)
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"REPLICATE_PRICES is not valid JSON: {exc.msg}") from None
    if not isinstance(overrides, dict) or not all(_is_price(v) for v in overrides.values()):
        raise ConfigError(
            "REPLICATE_PRICES must be a JSON object of USD per second (0 to 1000),"
            ' like {"gpu-h100": 0.001525}'
        )
    return {**PUBLISHED_PRICES, **{str(k): float(v) for k, v in overrides.items()}}


def checked_hardware(name: str, hardware: str, prices: Mapping[str, float]) -> str:
    """A configured hardware name, refused by the variable's name when it has no price."""
    if hardware not in prices:
        raise ConfigError(f"{name} {hardware!r} has no price; add it to REPLICATE_PRICES")
    return hardware


def price_per_second(hardware: str | None, prices: Mapping[str, float], default: str) -> Decimal:
    """The USD per second of a hardware; unknown or unreported hardware is priced as `default`."""
    price = prices.get(hardware or "", prices[default])
    return Decimal(str(price))


def billed_seconds(metrics: Any) -> float | None:
    """The seconds Replicate bills (`metrics.predict_time`), or None when it has not said."""
    seconds = metrics.get("predict_time") if isinstance(metrics, dict) else None
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return float(seconds) if 0 <= seconds <= MAX_BILLED_SECONDS else None


def cost_usd(seconds: float, usd_per_second: Decimal) -> Decimal:
    """The cost of `seconds` at a price, to a millionth of a dollar."""
    return (Decimal(str(seconds)) * usd_per_second).quantize(Decimal("0.000001"))


def usd_json(amount: Decimal | None) -> float | None:
    """An amount as the API shows it: a JSON number of dollars, null while unknown."""
    return None if amount is None else float(amount)


def _is_price(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and 0 <= value <= MAX_USD_PER_SECOND
    )
