"""Every route that takes an id: another user's id answers exactly like an id that does not exist.

Adding a route that takes a model id? Add one line to ID_ROUTES (`{id}` marks where the id
goes, in the path, the query or the JSON body); test_every_route_taking_an_id_is_in_the_table
fails until you do.
"""

import json
from dataclasses import dataclass, field

import pytest

from dev.server import OPENAPI_DOCUMENT
from tests.helpers import User, start_training, upload_selfies

MISSING_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class IdRoute:
    method: str
    path: str  # "{id}" is replaced by the id under test
    body: dict = field(default_factory=dict)  # "{id}" in a value is replaced too

    def call(self, api, user: User, model_id: str):
        body = json.loads(json.dumps(self.body).replace("{id}", model_id))
        return api.request(
            self.method,
            self.path.replace("{id}", model_id),
            json=body or None,
            headers=user.headers,
        )

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ID_ROUTES = [
    IdRoute("GET", "/api/training/progress?modelId={id}"),
    IdRoute("GET", "/api/models/{id}"),
    IdRoute("DELETE", "/api/models/{id}"),
    IdRoute("POST", "/api/training/cancel", {"modelId": "{id}"}),
    IdRoute("POST", "/api/training/retry", {"modelId": "{id}"}),
    IdRoute("POST", "/api/studio/generate", {"modelId": "{id}", "prompt": "a portrait"}),
    IdRoute("GET", "/api/studio/generations?modelId={id}"),
    IdRoute("GET", "/api/studio/packs?modelId={id}"),
    IdRoute("POST", "/api/studio/packs", {"modelId": "{id}", "packId": "studio-portrait"}),
]


@pytest.fixture
def owned_model(api, user):
    response = start_training(api, user, upload_selfies(api, user, 5))
    assert response.status_code == 201, response.text
    return response.json()["modelId"]


@pytest.mark.parametrize("route", ID_ROUTES, ids=str)
def test_another_users_id_is_404_exactly_like_a_missing_one(api, user, owned_model, route):
    stranger = User("stranger-" + user.id)

    foreign = route.call(api, stranger, owned_model)
    missing = route.call(api, stranger, MISSING_ID)

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json()
    assert api.get(f"/api/models/{owned_model}", headers=user.headers).status_code == 200


def test_every_route_taking_an_id_is_in_the_table():
    document = json.loads(OPENAPI_DOCUMENT.read_text())
    taking_an_id = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters" or not operation["security"]:
                continue  # ids of a caller who is not a user (webhooks) are not the question
            names = {
                p["name"] for p in item.get("parameters", []) + operation.get("parameters", [])
            }
            body = operation.get("requestBody", {}).get("content", {})
            schema = body.get("application/json", {}).get("schema", {})
            names |= set(_properties(document, schema))
            if any(name == "id" or name.endswith("Id") for name in names):
                taking_an_id.add((method.upper(), path))

    assert taking_an_id == {(route.method, route.path.split("?")[0]) for route in ID_ROUTES}


def _properties(document: dict, schema: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        schema = document["components"]["schemas"][name]
    return schema.get("properties", {})
