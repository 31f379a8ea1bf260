"""POST /api/training/cancel — stop the caller's live training of a model."""

from lib.adapters import database
from lib.adapters.replicate import Replicate
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.training import cancel_retry
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, read_json


def cancel(request: Request) -> Response:
    """200 with the model, now `canceled`; 409 when its training already ended."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    model_id = cancel_retry.model_id_from(read_json(request))
    replicate = Replicate(settings)  # refuses a missing token before anything changes
    with database.connect(settings) as conn:
        model = cancel_retry.cancel_training(
            conn, user_id=user_id, model_id=model_id, replicate=replicate
        )
    return json_response({"model": model})


app = endpoint(cancel, "POST", after=send_due_events)
