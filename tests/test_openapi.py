"""openapi.json stays true to the code: same routes and methods, same limits, one error shape."""

import json

import pytest

from dev import openapi
from dev.server import OPENAPI_DOCUMENT
from lib.accounts import user_models
from lib.training import start

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}


@pytest.fixture(scope="module")
def document():
    return json.loads(OPENAPI_DOCUMENT.read_text())


def operations(document):
    for path, item in document["paths"].items():
        for method in item.keys() & HTTP_METHODS:
            yield path, method, item[method]


def test_the_committed_document_is_the_one_the_code_generates():
    assert OPENAPI_DOCUMENT.read_text() == openapi.render(), "run: .venv/bin/python -m dev.openapi"


def test_it_documents_exactly_the_routes_and_methods_the_functions_serve(document):
    served = {
        (path, method.lower())
        for path, (_, app) in openapi.route_paths().items()
        for method in app.methods
    }

    assert {(path, method) for path, method, _ in operations(document)} == served


def test_every_error_response_is_the_error_schema(document):
    responses = document["components"]["responses"]
    for path, method, operation in operations(document):
        for status, response in operation["responses"].items():
            if int(status) >= 400:
                body = responses[response["$ref"].rsplit("/", 1)[-1]]
                schema = body["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (path, method, status)


def test_user_endpoints_require_the_bearer_token_and_only_the_webhook_and_document_do_not(document):
    unsecured = {(p, m) for p, m, op in operations(document) if not op["security"]}

    assert unsecured == {("/api/webhooks/replicate", "post"), ("/api/openapi.json", "get")}


def test_the_start_body_carries_the_limits_the_code_enforces(document):
    body = document["components"]["schemas"]["StartRequest"]["properties"]

    assert body["imageUrls"]["minItems"] == start.MIN_IMAGES == 5
    assert body["imageUrls"]["maxItems"] == start.MAX_IMAGES == 50
    assert body["imageUrls"]["items"]["maxLength"] == start.MAX_URL_LENGTH
    assert body["modelName"]["maxLength"] == start.TEXT_LIMITS["modelName"]


def test_the_page_size_is_the_one_the_list_enforces(document):
    parameters = document["paths"]["/api/models"]["get"]["parameters"]
    limit = next(p for p in parameters if p["name"] == "limit")

    assert limit["schema"]["maximum"] == user_models.MAX_PAGE_SIZE


def test_make_dev_serves_the_document(api, document):
    response = api.get("/openapi.json")

    assert response.status_code == 200
    assert response.json() == document


def test_a_function_serves_the_document_at_api_openapi_json(api, document):
    response = api.get("/api/openapi.json")

    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.json() == document
