"""POST /api/training/cancel — stop the caller's live training of a model."""

from lib import database, lifecycle
from lib.app_events.sender import send_due_events
from lib.auth import authenticate
from lib.http import Request, Response, endpoint, json_response, read_json
from lib.replicate import Replicate
from lib.settings import get_settings


def cancel(request: Request) -> Response:
    """200 with the model, now `canceled`; 409 when its training already ended."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    model_id = lifecycle.model_id_from(read_json(request))
    replicate = Replicate(settings)  # refuses a missing token before anything changes
    with database.connect(settings) as conn:
        model = lifecycle.cancel_training(
            conn, user_id=user_id, model_id=model_id, replicate=replicate
        )
    return json_response({"model": model})


app = endpoint(cancel, "POST", after=send_due_events)
