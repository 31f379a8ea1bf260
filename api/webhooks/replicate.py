"""POST /api/webhooks/replicate — Replicate's signed training and prediction callbacks."""

from lib.adapters import database
from lib.adapters.clients import Clients
from lib.adapters.signatures import verify_replicate
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.sync import snapshots, webhooks
from lib.web.http import Request, Response, endpoint, json_response

# Deliveries carry the whole log, which grows to a few MB over a long training.
BODY_LIMIT = 16 * 1024 * 1024


def replicate_webhook(request: Request) -> Response:
    """Verify the signature over the raw body, then apply the event once."""
    settings = get_settings()
    body = request.get_data()
    clients = Clients(settings)
    webhook_id = verify_replicate(request.headers, body, settings=settings, clients=clients)
    payload = snapshots.from_webhook(body)  # 400 unless a readable Replicate object
    with database.connect(settings) as conn:
        delivery = webhooks.record_webhook(
            conn,
            webhook_id=webhook_id,
            payload=payload,
            run_hint=request.args.get("run"),
            generation_hint=request.args.get("generation"),
        )
    response = json_response({"received": True, "outcome": delivery.outcome})
    if delivery.has_follow_up:  # images or weights to copy: after Replicate has its answer
        response.after(lambda: webhooks.follow_up(delivery, settings=settings, clients=clients))
    return response


app = endpoint(replicate_webhook, "POST", max_body=BODY_LIMIT, after=send_due_events)
