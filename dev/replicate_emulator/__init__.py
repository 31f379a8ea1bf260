"""Local emulator of Replicate's HTTP API (models, trainings, predictions, signed webhooks).

The official `replicate` client works against it unchanged:
`replicate.Client(api_token=emulator.token, base_url=emulator.url)`.
Run standalone with `python -m dev.replicate_emulator --port 8100`.
"""

from dev.replicate_emulator.emulator import ReplicateEmulator
from dev.replicate_emulator.protocol import (
    DEFAULT_WEBHOOK_SECRET,
    EVENTS,
    HARDWARE,
    NOT_FOUND,
    TERMINAL,
    TRAINER_MODEL,
    TRAINER_VERSION,
    ApiError,
    Delivery,
    RecordedRequest,
)
from dev.replicate_emulator.webhooks import sign

__all__ = [
    "DEFAULT_WEBHOOK_SECRET",
    "EVENTS",
    "HARDWARE",
    "NOT_FOUND",
    "TERMINAL",
    "TRAINER_MODEL",
    "TRAINER_VERSION",
    "ApiError",
    "Delivery",
    "RecordedRequest",
    "ReplicateEmulator",
    "sign",
]
