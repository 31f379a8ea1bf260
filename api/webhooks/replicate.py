"""POST /api/webhooks/replicate — Replicate's signed training and prediction callbacks."""

from lib.adapters import database
from lib.adapters.clients import Clients
from lib.adapters.signatures import verify_replicate
from lib.settings import get_settings
from lib.sync import webhooks
from lib.web.http import Request, Response, endpoint, json_response

# Deliveries carry the whole log, which grows to a few MB over a long training.
BODY_LIMIT = 16 * 1024 * 1024


def replicate_webhook(request: Request) -> Response:
    """Verify the signature over the raw body, then apply the event once."""
    settings = get_settings()
    body = request.get_data()
    clients = Clients(settings)
    webhook_id = verify_replicate(request.headers, body, settings=settings, clients=clients)
    payload = webhooks.parse_payload(body)
    with database.connect(settings) as conn:
        delivery = webhooks.record_webhook(
            conn,
            webhook_id=webhook_id,
            payload=payload,
            run_hint=request.args.get("run"),
            generation_hint=request.args.get("generation"),
        )
        if delivery.has_follow_up:
            webhooks.follow_up(conn, delivery, clients=clients)
    return json_response({"received": True, "outcome": delivery.outcome})


app = endpoint(replicate_webhook, "POST", max_body=BODY_LIMIT)
