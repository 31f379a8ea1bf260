"""GET /api/models?limit=&cursor= — the caller's models, newest first."""

from lib import database, models
from lib.auth import authenticate
from lib.http import Request, Response, endpoint, int_param, json_response
from lib.settings import get_settings


def list_models(request: Request) -> Response:
    """A page of models (each as progress's `model`) and the cursor of the next page."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    limit = int_param(
        request, "limit", default=models.DEFAULT_PAGE_SIZE, minimum=1, maximum=models.MAX_PAGE_SIZE
    )
    cursor = request.args.get("cursor") or None
    with database.connect(settings) as conn:
        body = models.list_models(conn, user_id=user_id, limit=limit, cursor=cursor)
    return json_response(body)


app = endpoint(list_models, "GET")
