"""POST /api/training/retry — train a failed or canceled model again from its stored images."""

from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.adapters.replicate import Replicate
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.training import cancel_retry
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, read_json


def retry(request: Request) -> Response:
    """201 like start's: the same model and trigger word, a new training."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    model_id = cancel_retry.model_id_from(read_json(request))
    replicate = Replicate(settings)  # refuses a missing token before anything is written
    with database.connect(settings) as conn:
        started = cancel_retry.retry_training(
            conn,
            user_id=user_id,
            model_id=model_id,
            replicate=replicate,
            storage=get_storage(settings),
            settings=settings,
        )
    return json_response(started.as_json(), status=201)


app = endpoint(retry, "POST", after=send_due_events)
