"""GET /api/studio/generations?modelId=ID — the caller's generations with a model, newest first."""

from lib.adapters import database
from lib.adapters.clients import Clients
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.studio import generate
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, query_param


def generations(request: Request) -> Response:
    """The gallery, from the database (polled while pictures are on their way)."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    model_id = query_param(request, "modelId")
    with database.connect(settings) as conn:
        rows = generate.list_generations(
            conn, user_id=user_id, model_id=model_id, settings=settings, clients=Clients(settings)
        )
    return json_response({"generations": rows})


app = endpoint(generations, "GET", after=send_due_events)
