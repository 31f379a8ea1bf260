"""POST /api/training/upload — store selfies sent as multipart parts named `files`."""

from lib import database, uploads
from lib.auth import authenticate
from lib.errors import UnsupportedMediaType
from lib.http import Request, Response, endpoint, json_response
from lib.settings import get_settings
from lib.storage import get_storage

# Vercel itself stops bodies at 4.5 MB; this bounds what a local server will buffer.
REQUEST_LIMIT = 64 * 1024 * 1024


def upload(request: Request) -> Response:
    """Check each file is a real image, store it, and answer its URL and size."""
    settings = get_settings()
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
        )
    return json_response(uploads.as_json(saved))


app = endpoint(upload, "POST", max_body=REQUEST_LIMIT)
