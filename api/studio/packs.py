"""GET /api/studio/packs — the packs (and a model's runs); POST — run a pack with a model."""

from lib.adapters import database
from lib.adapters.replicate import Replicate
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.studio import packs
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, query_param, read_json


def studio_packs(request: Request) -> Response:
    """200 with the packs (and `runs` with ?modelId); 201 with the run a POST started."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    if request.method == "GET":
        body = {"packs": [pack.summary() for pack in packs.all_packs().values()]}
        if "modelId" in request.args:
            model_id = query_param(request, "modelId")
            with database.connect(settings) as conn:
                body["runs"] = packs.list_runs(conn, user_id=user_id, model_id=model_id)
        return json_response(body)
    model_id, pack_id = packs.request_ids(read_json(request))
    replicate = Replicate(settings)  # refuses a missing token before anything is written
    with database.connect(settings) as conn:
        run = packs.start_pack(
            conn,
            user_id=user_id,
            model_id=model_id,
            pack_id=pack_id,
            replicate=replicate,
            settings=settings,
        )
    return json_response({"run": run}, status=201)


app = endpoint(studio_packs, "GET", "POST", after=send_due_events)
