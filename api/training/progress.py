"""GET /api/training/progress?modelId=ID — a model's training status and progress."""

from lib.adapters import database
from lib.adapters.clients import Clients
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.training import progress
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, query_param


def get(request: Request) -> Response:
    """Status, progress 0–100 and the model, from the database (polled every 5 s)."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    model_id = query_param(request, "modelId")
    with database.connect(settings) as conn:
        body = progress.get_progress(
            conn, user_id=user_id, model_id=model_id, settings=settings, clients=Clients(settings)
        )
    return json_response(body)


app = endpoint(get, "GET", after=send_due_events)
