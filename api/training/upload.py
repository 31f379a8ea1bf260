"""/api/training/upload — POST selfies (multipart `files`, or @vercel/blob client uploads)."""

from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.intake import client_uploads, uploads
from lib.settings import get_settings
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response

# Vercel itself stops bodies at 4.5 MB; this bounds what a local server will buffer.
REQUEST_LIMIT = 64 * 1024 * 1024


def upload(request: Request) -> Response:
    """Store checked selfies, or answer a client-upload event (a token, Blob's callback)."""
    settings = get_settings()
    if request.method == "GET":
        return json_response(client_uploads.upload_rules(authenticate(request, settings), settings))
    if request.mimetype == "application/json":
        event = client_uploads.read_event(request)
        with database.connect(settings) as conn:
            answer = client_uploads.handle_event(
                conn,
                event,
                caller=lambda: authenticate(request, settings),
                signature=request.headers.get("x-vercel-signature", ""),
                storage=get_storage(settings),
                settings=settings,
            )
        return json_response(answer)
    user_id = authenticate(request, settings)
    files = uploads.incoming_files(request)
    with database.connect(settings) as conn:
        saved = uploads.save_uploads(
            conn, user_id=user_id, files=files, storage=get_storage(settings), settings=settings
        )
    return json_response(uploads.as_json(saved))


app = endpoint(upload, "GET", "POST", max_body=REQUEST_LIMIT)
