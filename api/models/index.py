"""GET /api/models?limit=&cursor= — the caller's models, newest first."""

from lib.accounts import user_models
from lib.adapters import database
from lib.settings import get_settings
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, int_param, json_response


def list_models(request: Request) -> Response:
    """A page of models (each as progress's `model`) and the cursor of the next page."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    limit = int_param(
        request,
        "limit",
        default=user_models.DEFAULT_PAGE_SIZE,
        minimum=1,
        maximum=user_models.MAX_PAGE_SIZE,
    )
    cursor = request.args.get("cursor") or None
    with database.connect(settings) as conn:
        body = user_models.list_models(conn, user_id=user_id, limit=limit, cursor=cursor)
    return json_response(body)


app = endpoint(list_models, "GET")
