"""The local router matches paths the way Vercel routes api/**/*.py."""

from pathlib import Path

import pytest
from werkzeug.test import Client

from dev.server import VercelRouter, discover_routes


@pytest.fixture
def project(tmp_path: Path) -> Path:
    for name in [
        "api/index.py",
        "api/training/start.py",
        "api/models/[id].py",
        "api/users/[user]/photos.py",
        "api/_lib/helpers.py",
        "api/.hidden.py",
        "api/_private.py",
    ]:
        file = tmp_path / name
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("app = None\n")
    return tmp_path


def match(routes, path):
    for route in routes:
        found = route.pattern.match(path)
        if found:
            return route.module_name, {n: found.group(f"p{i}") for i, n in enumerate(route.params)}
    return None


def test_files_under_underscore_or_dot_segments_are_not_functions(project):
    names = {route.module_name for route in discover_routes(project)}

    assert names == {
        "api.index",
        "api.training.start",
        "api.models.[id]",
        "api.users.[user].photos",
    }


@pytest.mark.parametrize(
    "path", ["/api/training/start", "/api/training/start/", "/api/training/start.py"]
)
def test_a_static_file_answers_its_path_with_slash_and_extension(project, path):
    assert match(discover_routes(project), path) == ("api.training.start", {})


@pytest.mark.parametrize("path", ["/api", "/api/", "/api/index", "/api/index.py"])
def test_index_answers_its_folder(project, path):
    assert match(discover_routes(project), path) == ("api.index", {})


def test_a_bracket_segment_matches_one_segment_and_names_it(project):
    routes = discover_routes(project)

    assert match(routes, "/api/models/abc-123") == ("api.models.[id]", {"id": "abc-123"})
    assert match(routes, "/api/models/a/b") is None
    assert match(routes, "/api/users/u1/photos") == ("api.users.[user].photos", {"user": "u1"})


def test_static_routes_are_tried_before_dynamic_ones(project):
    (project / "api/models/recent.py").write_text("app = None\n")

    assert match(discover_routes(project), "/api/models/recent") == ("api.models.recent", {})


def test_the_router_adds_bracket_values_to_the_query(project):
    (project / "api/models/[id].py").write_text(
        "def app(environ, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [(environ['PATH_INFO'] + '?' + environ['QUERY_STRING']).encode()]\n"
    )
    router = VercelRouter(discover_routes(project), storage_dir=None, token_secret=None)

    response = Client(router).get("/api/models/m%201?view=full")

    assert response.text == "/api/models/m 1?view=full&id=m%201"


def test_an_unknown_path_is_a_json_404(api):
    response = api.get("/api/no/such/function")

    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
