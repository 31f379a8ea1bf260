"""GET /api/cron/reconcile — Vercel Cron: recover lost webhooks, archive weights, delete ZIPs."""

from lib import cron
from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.adapters.replicate import Replicate
from lib.settings import get_settings
from lib.web.auth import authorize_cron
from lib.web.http import Request, Response, endpoint, json_response


def reconcile_trainings(request: Request) -> Response:
    """A JSON count of what this run did; safe to run beside another."""
    settings = get_settings()
    authorize_cron(request, settings)
    with database.connect(settings) as conn:
        summary = cron.reconcile(
            conn, replicate=Replicate(settings), storage=get_storage(settings), settings=settings
        )
    return json_response(summary)


app = endpoint(reconcile_trainings, "GET")
