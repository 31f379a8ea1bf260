"""Reading the Flux LoRA trainer's own progress out of Replicate's logs."""

import re
from dataclasses import dataclass

# Only the trainer's bar counts; dataset scans and latent caching print bars of their own.
# tqdm then prints [elapsed<remaining, rate…]; remaining is mm:ss, h:mm:ss, or ? before a rate.
_TRAINER_LINE = re.compile(
    r"flux_train_replicate:\s*\d+%\|[^|\n]*\|\s*(\d+)/(\d+)"
    r"(?:\s*\[[^<\]\n]*<(\d+(?::\d\d){1,2}|\?))?"
)
# The progress line is rewritten constantly, so its latest copy is always near the end.
TAIL_CHARS = 8 * 1024
LOGS_TAIL_CHARS = 4 * 1024


@dataclass(frozen=True)
class TrainerProgress:
    step: int
    total_steps: int
    eta_seconds: int | None = None  # the trainer's own estimate of the time left

    @property
    def percent(self) -> int:
        """Whole percent done, held at 99 until Replicate says the run succeeded."""
        if self.total_steps <= 0:
            return 0
        return min(99, self.step * 100 // self.total_steps)


def parse_progress(logs: str | None) -> TrainerProgress | None:
    """The trainer's latest step counter in the logs' tail, or None before training starts."""
    if not logs:
        return None
    matches = _TRAINER_LINE.findall(logs[-TAIL_CHARS:])
    if not matches:
        return None
    step, total, remaining = matches[-1]
    return TrainerProgress(int(step), int(total), _seconds(remaining))


def _seconds(interval: str) -> int | None:
    """tqdm's mm:ss or h:mm:ss as seconds; None for "?" (no rate yet) or a missing one."""
    if not interval or interval == "?":
        return None
    seconds = 0
    for part in interval.split(":"):
        seconds = seconds * 60 + int(part)
    return seconds


def logs_tail(logs: str | None) -> str | None:
    """The end of the logs, kept for support after Replicate deletes them."""
    return logs[-LOGS_TAIL_CHARS:] if logs else None
