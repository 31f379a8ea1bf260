"""CORS for the configured frontend origins only; every function answers the preflight."""

import pytest

from dev.openapi import route_paths
from lib.errors import ConfigError
from lib.settings import load_settings

FRONTEND = "https://app.sselfie.test"
PATHS = sorted(
    path.replace("{id}", "00000000-0000-0000-0000-000000000000") for path in route_paths()
)


@pytest.fixture
def cors(configure):
    configure(CORS_ALLOWED_ORIGINS=f"{FRONTEND}, https://preview.sselfie.test/")


def preflight(api, path, origin=FRONTEND):
    headers = {
        "Origin": origin,
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    }
    return api.options(path, headers=headers)


@pytest.mark.parametrize("path", PATHS)
def test_every_function_answers_the_preflight_of_an_allowed_origin(api, cors, path):
    response = preflight(api, path)

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert "Authorization" in response.headers["access-control-allow-headers"]
    assert response.headers["access-control-allow-methods"]
    assert response.headers["vary"] == "Origin"


def test_the_preflight_names_the_functions_own_methods(api, cors):
    response = preflight(api, "/api/models/00000000-0000-0000-0000-000000000000")

    assert response.headers["access-control-allow-methods"] == "DELETE, GET"
    assert response.headers["allow"] == "DELETE, GET, OPTIONS"


def test_an_error_answer_is_readable_by_the_frontend(api, cors):
    response = api.get("/api/models", headers={"Origin": FRONTEND})

    assert response.status_code == 401
    assert response.headers["access-control-allow-origin"] == FRONTEND
    assert response.headers["access-control-expose-headers"] == "Retry-After"


def test_a_second_configured_origin_is_allowed_too(api, cors):
    response = preflight(api, "/api/models", origin="https://preview.sselfie.test")

    assert response.headers["access-control-allow-origin"] == "https://preview.sselfie.test"


def test_another_origin_gets_no_cors_headers(api, cors):
    response = api.get("/api/models", headers={"Origin": "https://evil.test"})

    assert "access-control-allow-origin" not in response.headers
    assert response.headers["vary"] == "Origin"  # caches must not reuse an allowed answer


def test_without_configured_origins_no_cors_header_is_sent(api):
    response = preflight(api, "/api/training/start")

    assert response.status_code == 204
    assert not [name for name in response.headers if name.startswith("access-control-")]
    assert "vary" not in response.headers


@pytest.mark.parametrize("value", ["app.sselfie.test", "https://app.test/path", "*", "ftp://x"])
def test_a_malformed_origin_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
        load_settings({"CORS_ALLOWED_ORIGINS": value})
