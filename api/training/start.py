"""POST /api/training/start — train a LoRA model from the caller's uploaded selfies."""

from lib import client_uploads, database, trainings
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
    storage = get_storage(settings)
    with database.connect(settings) as conn:
        # Client uploads the browser sent before Blob's callback came are recorded now.
        client_uploads.complete_waiting(
            conn, user_id=user_id, urls=start_request.image_urls, storage=storage, settings=settings
        )
        started = trainings.start_training(
            conn,
            user_id=user_id,
            request=start_request,
            idempotency_key=idempotency_key,
            replicate=replicate,
            storage=storage,
            settings=settings,
        )
    return json_response(started.as_json(), status=201)


app = endpoint(start, "POST")
