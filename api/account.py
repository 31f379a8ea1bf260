"""DELETE /api/account — all of the caller's data: models, uploads, trainings, generations."""

from lib.accounts import deletion
from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.adapters.replicate import Replicate
from lib.settings import get_settings
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response


def delete_account(request: Request) -> Response:
    """200 when everything is gone, 202 while the cron finishes what a failure left."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    replicate = Replicate(settings)  # refuses a missing token before anything changes
    with database.connect(settings) as conn:
        done = deletion.delete_account(
            conn, user_id=user_id, storage=get_storage(settings), replicate=replicate
        )
    return json_response(*deletion.outcome(done))


app = endpoint(delete_account, "DELETE")
