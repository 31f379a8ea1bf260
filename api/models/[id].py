"""GET /api/models/{id} — one of the caller's models; DELETE removes it and everything it used."""

from lib.accounts import deletion, user_models
from lib.adapters import database
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response


def model(request: Request) -> Response:
    """GET: the model as progress shows it. DELETE: 200 when gone, 202 when the cron finishes."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    # Vercel and the dev router put [id] in the query; anything but a model id is a 404.
    model_id = request.args.get("id", "")
    if request.method == "DELETE":
        return _delete(settings, user_id, model_id)
    with database.connect(settings) as conn:
        row = user_models.find_model(conn, user_id=user_id, model_id=model_id)
    return json_response(user_models.model_json(row))


def _delete(settings, user_id: str, model_id: str) -> Response:
    from lib.adapters.clients import get_storage
    from lib.adapters.replicate import Replicate

    replicate = Replicate(settings)  # refuses a missing token before anything changes
    with database.connect(settings) as conn:
        done = deletion.delete_model(
            conn,
            user_id=user_id,
            model_id=model_id,
            storage=get_storage(settings),
            replicate=replicate,
        )
    return json_response(*deletion.outcome(done))


app = endpoint(model, "GET", "DELETE", after=send_due_events)
