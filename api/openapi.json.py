"""GET /api/openapi.json — the API's OpenAPI 3.1 document, as committed (public)."""

from pathlib import Path

from lib.web.http import Request, Response, endpoint

DOCUMENT = (Path(__file__).resolve().parent.parent / "openapi.json").read_bytes()
HEADERS = {"Content-Type": "application/json", "Cache-Control": "public, max-age=300"}


def openapi_document(request: Request) -> Response:
    """The committed openapi.json, byte for byte (`python -m dev.openapi` writes it)."""
    return Response(DOCUMENT, 200, HEADERS)


app = endpoint(openapi_document, "GET")
