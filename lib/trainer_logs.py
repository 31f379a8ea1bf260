"""Reading the Flux LoRA trainer's own progress out of Replicate's logs."""

import re
from dataclasses import dataclass

# Only the trainer's bar counts; dataset scans and latent caching print bars of their own.
_TRAINER_LINE = re.compile(r"flux_train_replicate:\s*\d+%\|[^|\n]*\|\s*(\d+)/(\d+)")
# The progress line is rewritten constantly, so its latest copy is always near the end.
TAIL_CHARS = 8 * 1024
LOGS_TAIL_CHARS = 4 * 1024


@dataclass(frozen=True)
class TrainerProgress:
    step: int
    total_steps: int

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
    step, total = matches[-1]
    return TrainerProgress(step=int(step), total_steps=int(total))


def logs_tail(logs: str | None) -> str | None:
    """The end of the logs, kept for support after Replicate deletes them."""
    return logs[-LOGS_TAIL_CHARS:] if logs else None
