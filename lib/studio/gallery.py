"""The gallery's shape of a generation: what the frontend lists and what the app is sent."""

from typing import Any

from lib.accounts import user_models
from lib.accounts.costs import usd_json

# The body's names -> the fine-tuned version's input names (replicate-api.md §5).
INPUT_NAMES = {
    "numOutputs": "num_outputs",
    "aspectRatio": "aspect_ratio",
    "outputFormat": "output_format",
    "loraScale": "lora_scale",
    "seed": "seed",
}
# Replicate's prediction states; `pending` (written before Replicate was called) shows as starting.
PUBLIC_STATUS = {
    "pending": "starting",
    "starting": "starting",
    "processing": "processing",
    "succeeded": "succeeded",
    "failed": "failed",
    "canceled": "canceled",
}


def generation_json(row: dict[str, Any]) -> dict[str, Any]:
    """A generation as the frontend reads it; `images` are our storage's URLs, never Replicate's."""
    given = row["input"]
    return {
        "id": str(row["id"]),
        "modelId": str(row["model_id"]),
        "prompt": row["prompt"],
        "status": PUBLIC_STATUS[row["status"]],
        "error": row["error"],
        "images": list(row["output_urls"]),
        "createdAt": user_models.iso(row["created_at"]),
        "completedAt": user_models.iso(row["completed_at"]),
        "input": {name: given.get(input_name) for name, input_name in INPUT_NAMES.items()},
        "packRunId": str(row["pack_run_id"]) if row["pack_run_id"] else None,
        "costUsd": usd_json(row["cost_usd"]),
    }
