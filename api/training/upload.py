"""POST /api/training/upload — selfies as multipart parts named `files`, or the @vercel/blob
client-upload protocol (JSON) on the same URL; GET answers what a client upload must respect."""

from lib.adapters import database
from lib.adapters.clients import get_storage
from lib.errors import UnsupportedMediaType
from lib.intake import client_uploads, uploads
from lib.settings import Settings, get_settings
from lib.web.auth import authenticate
from lib.web.http import Request, Response, endpoint, json_response

# Vercel itself stops bodies at 4.5 MB; this bounds what a local server will buffer.
REQUEST_LIMIT = 64 * 1024 * 1024


def upload(request: Request) -> Response:
    """Check each file is a real image, store it, and answer its URL, size and face verdict."""
    settings = get_settings()
    if request.method == "GET":
        user_id = authenticate(request, settings)
        return json_response(client_uploads.upload_rules(user_id, settings))
    if request.mimetype == "application/json":
        return json_response(_client_upload(request, settings))
    user_id = authenticate(request, settings)
    if request.mimetype != "multipart/form-data":
        raise UnsupportedMediaType("Send multipart/form-data with parts named files")
    files = [uploads.IncomingFile(name, data) for name, data in request.files("files")]
    with database.connect(settings) as conn:
        saved = uploads.save_uploads(
            conn,
            user_id=user_id,
            files=files,
            storage=get_storage(settings),
            max_bytes=settings.upload_max_bytes,
            min_face_share=settings.face_min_share,
        )
    return json_response(uploads.as_json(saved))


def _client_upload(request: Request, settings: Settings) -> dict[str, str]:
    """A token request (the user's JWT) or Blob's completion callback (its signature)."""
    event = client_uploads.read_event(request)
    if event.type == client_uploads.TOKEN_REQUEST:
        user_id = authenticate(request, settings)
        return client_uploads.issue_token(event, user_id=user_id, settings=settings)
    with database.connect(settings) as conn:
        return client_uploads.record_completed(
            conn,
            event,
            signature=request.headers.get("x-vercel-signature", ""),
            storage=get_storage(settings),
            settings=settings,
        )


app = endpoint(upload, "GET", "POST", max_body=REQUEST_LIMIT)
