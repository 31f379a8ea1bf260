"""GET /api/account — the caller's usage; DELETE — all of the caller's data."""

from lib.accounts import deletion
from lib.accounts.usage import account_usage
from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.adapters.replicate import Replicate
from lib.settings import get_settings
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response


def account(request: Request) -> Response:
    """GET: usage against the limits. DELETE: 200 when gone, 202 while the cron finishes."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    if request.method == "DELETE":
        return _delete(settings, user_id)
    with database.connect(settings) as conn:
        return json_response(account_usage(conn, user_id=user_id, settings=settings))


def _delete(settings, user_id: str) -> Response:
    replicate = Replicate(settings)  # refuses a missing token before anything changes
    with database.connect(settings) as conn:
        done = deletion.delete_account(
            conn, user_id=user_id, storage=get_storage(settings), replicate=replicate
        )
    return json_response(*deletion.outcome(done))


app = endpoint(account, "GET", "DELETE")
