"""POST /api/training/start — train a LoRA model from the caller's uploaded selfies."""

from lib import database, trainings
from lib.app_events.sender import send_due_events
from lib.auth import authenticate
from lib.http import Request, Response, endpoint, json_response, read_json
from lib.replicate import Replicate
from lib.settings import get_settings
from lib.storage import get_storage


def start(request: Request) -> Response:
    """201 with the new model's id, training id and trigger word."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    start_request = trainings.StartRequest.parse(read_json(request))
    idempotency_key = trainings.idempotency_key(request.headers.get("Idempotency-Key"))
    replicate = Replicate(settings)  # refuses a missing token before anything is written
    with database.connect(settings) as conn:
        started = trainings.start_training(
            conn,
            user_id=user_id,
            request=start_request,
            idempotency_key=idempotency_key,
            replicate=replicate,
            storage=get_storage(settings),
            settings=settings,
        )
    return json_response(started.as_json(), status=201)


app = endpoint(start, "POST", after=send_due_events)
