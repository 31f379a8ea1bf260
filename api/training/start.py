"""POST /api/training/start — train a LoRA model from the caller's uploaded selfies."""

from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.adapters.replicate import Replicate
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.training import start
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, read_json


def post(request: Request) -> Response:
    """201 with the new model's id, training id and trigger word."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    start_request = start.StartRequest.parse(read_json(request))
    idempotency_key = start.idempotency_key(request.headers.get("Idempotency-Key"))
    replicate = Replicate(settings)  # refuses a missing token before anything is written
    with database.connect(settings) as conn:
        started = start.start_training(
            conn,
            user_id=user_id,
            request=start_request,
            idempotency_key=idempotency_key,
            replicate=replicate,
            storage=get_storage(settings),
            settings=settings,
        )
    return json_response(started.as_json(), status=201)


app = endpoint(post, "POST", after=send_due_events)
