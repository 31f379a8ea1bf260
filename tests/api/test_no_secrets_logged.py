"""No token, secret or JWT ever reaches a log line, through a whole training's life."""

import logging
import os

from tests.helpers import start_training, upload_selfies

BYPASS_SECRET = "bypass-secret-for-the-log-test-0123456789"


def test_a_full_flow_logs_no_secret(api, user, stack, configure, caplog):
    configure(VERCEL_AUTOMATION_BYPASS_SECRET=BYPASS_SECRET)
    caplog.set_level(logging.DEBUG)
    secrets = {
        "user JWT": user.headers["Authorization"].removeprefix("Bearer "),
        "AUTH_JWT_SECRET": os.environ["AUTH_JWT_SECRET"],
        "REPLICATE_API_TOKEN": os.environ["REPLICATE_API_TOKEN"],
        "BLOB_READ_WRITE_TOKEN": os.environ["BLOB_READ_WRITE_TOKEN"],
        "webhook signing secret": stack.replicate.webhook_secret.removeprefix("whsec_"),
        "VERCEL_AUTOMATION_BYPASS_SECRET": BYPASS_SECRET,
    }

    started = start_training(api, user, upload_selfies(api, user, 5)).json()
    stack.replicate.advance(started["trainingId"], "processing", step=300)
    stack.replicate.advance(started["trainingId"], "succeeded")
    stack.replicate.wait_for_deliveries()
    api.get("/api/training/progress", params={"modelId": started["modelId"]}, headers=user.headers)
    api.get("/api/models", headers={"Authorization": "Bearer not-a-valid-jwt.x.y"})
    api.delete(f"/api/models/{started['modelId']}", headers=user.headers)

    ours = [r for r in caplog.records if not _replicate_delivering(r, stack.url)]
    logged = "\n".join([r.getMessage() for r in ours] + [r.exc_text or "" for r in ours])
    assert "webhook" in logged and "training started" in logged  # the flow was logged at all
    assert [name for name, value in secrets.items() if value in logged] == []


def _replicate_delivering(record: logging.LogRecord, app_url: str) -> bool:
    """The emulator's own client posting a webhook: Replicate's logs, not ours."""
    return record.name == "httpx" and f"POST {app_url}/api/webhooks/" in record.getMessage()
