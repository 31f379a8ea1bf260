"""GET /api/cron/reconcile — Vercel Cron: recover lost webhooks, archive weights, delete ZIPs."""

from lib import database, reconcile
from lib.auth import authorize_cron
from lib.http import Request, Response, endpoint, json_response
from lib.replicate import Replicate
from lib.settings import get_settings
from lib.storage import get_storage


def reconcile_trainings(request: Request) -> Response:
    """A JSON count of what this run did; safe to run beside another."""
    settings = get_settings()
    authorize_cron(request, settings)
    with database.connect(settings) as conn:
        summary = reconcile.reconcile(
            conn, replicate=Replicate(settings), storage=get_storage(settings), settings=settings
        )
    return json_response(summary)


app = endpoint(reconcile_trainings, "GET")
