"""What many tests do: sign in, make real images, upload them, start a training."""

import io
from functools import cache

import httpx
from PIL import Image

from dev.server import OPENAPI_DOCUMENT
from dev.stack import DEV_JWT_SECRET
from lib.auth import issue_token


class User:
    def __init__(self, user_id: str) -> None:
        self.id = user_id
        self.headers = {"Authorization": f"Bearer {issue_token(DEV_JWT_SECRET, user_id)}"}


def jpeg(seed: int, size: tuple[int, int] = (640, 800)) -> bytes:
    """A distinct real JPEG per seed."""
    image = Image.new("RGB", size, ((seed * 53) % 256, (seed * 97) % 256, (seed * 31) % 256))
    image.paste((255 - seed % 256, 20, 90), (seed % 200, seed % 300, seed % 200 + 200, 500))
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=90)
    return out.getvalue()


def upload_selfies(api: httpx.Client, user: User, count: int = 5) -> list[str]:
    """Upload `count` distinct selfies for the user; return their URLs."""
    files = [("files", (f"selfie{i}.jpg", jpeg(i), "image/jpeg")) for i in range(count)]
    response = api.post("/api/training/upload", files=files, headers=user.headers)
    assert response.status_code == 200, response.text
    return response.json()["urls"]


def start_training(api: httpx.Client, user: User, urls: list[str], **extra) -> httpx.Response:
    """POST /api/training/start with a valid body."""
    body = {"modelName": "Me", "modelType": "flux", "gender": "woman", "imageUrls": urls, **extra}
    return api.post("/api/training/start", json=body, headers=user.headers)


@cache
def _openapi():
    import schemathesis

    return schemathesis.openapi.from_path(OPENAPI_DOCUMENT)


def conforms_to_openapi(response: httpx.Response) -> None:
    """Fail unless a documented operation's answer has a documented status and body."""
    request = response.request
    operation = _openapi().find_operation_by_path(request.method, request.url.path)
    if operation is None:
        return  # OPTIONS, an undocumented method (405), the dev pages
    request.read()  # schemathesis keeps the request with the response
    response.read()
    status = response.status_code
    assert operation.responses.find_by_status_code(status), f"{operation.label} answered {status}"
    operation.validate_response(response)
