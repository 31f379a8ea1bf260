"""GET /api/training/progress?modelId=ID — a model's training status and progress."""

from lib import database, trainings
from lib.app_events.sender import send_due_events
from lib.auth import authenticate
from lib.http import Request, Response, endpoint, json_response, query_param
from lib.settings import get_settings


def progress(request: Request) -> Response:
    """Status, progress 0–100 and the model, from the database (polled every 5 s)."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    model_id = query_param(request, "modelId")
    with database.connect(settings) as conn:
        body = trainings.get_progress(conn, user_id=user_id, model_id=model_id, settings=settings)
    return json_response(body)


app = endpoint(progress, "GET", after=send_due_events)
