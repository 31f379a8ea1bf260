"""POST /api/studio/generate — pictures from a trained model, copied into our storage."""

from lib.adapters import database
from lib.adapters.replicate import Replicate
from lib.app_events.sender import send_due_events
from lib.settings import get_settings
from lib.studio import generate
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response, read_json


def post(request: Request) -> Response:
    """201 with the new generation; its images arrive through the webhook (or a later poll)."""
    settings = get_settings()
    user_id = authenticate(request, settings)
    generate_request = generate.GenerateRequest.parse(read_json(request))
    replicate = Replicate(settings)  # refuses a missing token before anything is written
    with database.connect(settings) as conn:
        generation = generate.generate(
            conn,
            user_id=user_id,
            request=generate_request,
            replicate=replicate,
            settings=settings,
        )
    return json_response({"generation": generation}, status=201)


app = endpoint(post, "POST", after=send_due_events)
