"""What Vercel's own builder makes of the committed tree, and how its functions start.

One `vercel build` per test session (the CLI and uv are cached outside the repository); each
function is then laid out from its file map and started through the bundle's own launcher in an
empty Python 3.12 whose only packages are the bundle's `_vendor`.
"""

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path

import pytest

from dev import vercel_build
from dev.server import PROJECT_ROOT, _load_entrypoint, discover_routes
from lib.intake.images import check_image
from tests import photos

MIB = 1024 * 1024
SIZE_LIMIT = 180 * MIB  # @vercel/python installs packages at cold start above 225 MiB
ROUTES = {
    route.path.relative_to(PROJECT_ROOT).with_suffix("").as_posix(): route
    for route in discover_routes()
}
FACE_GATE = {"api/training/upload", "api/training/start", "api/training/retry"}
IDENTITY_CHECK = {"api/training/start", "api/training/retry"}
LIGHT = {
    "api/training/progress",
    "api/webhooks/replicate",
    "api/cron/reconcile",
    "api/models/index",
    "api/models/[id]",
    "api/account",
    "api/studio/generations",
    "api/openapi.json",
}
PUBLIC_DOCUMENT = "api/openapi.json"
SOURCE_SUFFIXES = {".py", ".sql", ".toml", ".lock", ".ini", ".cfg", ".sh", ".json"}
UNSET = "00000000-0000-0000-0000-000000000000"
ENV = {
    "AUTH_JWT_SECRET": "a-secret-for-the-build-test-only-32by",
    "REPLICATE_WEBHOOK_SECRET": "whsec_" + "QUJD" * 8,
    "CRON_SECRET": "cron-secret-for-the-build-test",
}
HEIC_PROBE = """
import sys
from lib.intake.images import check_image
info = check_image(open(sys.argv[1], "rb").read(), "IMG_0001.HEIC", min_face_share=0.15)
print(info.content_type, info.width, info.height, info.faces)
"""


@pytest.fixture(scope="session")
def output(tmp_path_factory):
    """`vercel build` of a clean copy of HEAD."""
    reason = vercel_build.missing_tools()
    if reason:
        pytest.skip(reason)
    if not (PROJECT_ROOT / ".git").exists():
        pytest.skip("not a git checkout: the build copies the committed tree")
    project = vercel_build.committed_tree(PROJECT_ROOT, tmp_path_factory.mktemp("vb") / "p")
    return vercel_build.build(project)


@pytest.fixture(scope="session")
def built(output):
    return {function.name: function for function in vercel_build.functions(output)}


@pytest.fixture(scope="session")
def python(tmp_path_factory):
    return vercel_build.empty_python(tmp_path_factory.mktemp("py") / "venv")


@pytest.fixture(scope="session")
def bundles(built, tmp_path_factory):
    root = tmp_path_factory.mktemp("bundles")
    return {name: function.lay_out(root / name) for name, function in built.items()}


@pytest.fixture(scope="session")
def answers(built, bundles, python):
    """One request without credentials to each function, each in a fresh process."""

    def one(name):
        route = ROUTES[name]
        method = sorted(_load_entrypoint(route.module_name, route.path).methods)[0]
        path = "/" + name.replace("[id]", UNSET).removesuffix("/index")
        request = {"method": method, "path": path}
        return name, vercel_build.launch(bundles[name], python, request, ENV, built[name].config)

    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(pool.map(one, built))


def test_every_function_of_api_is_built(built):
    assert set(built) == set(ROUTES)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_each_function_is_at_most_180_mib_unzipped(built, name):
    size = built[name].size_bytes()

    assert size <= SIZE_LIMIT, f"{name}: {size / MIB:.1f} MiB"


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_the_models_ship_only_in_the_functions_that_run_them(built, name):
    shipped = {path.rsplit("/", 1)[0] for path in built[name].files if path.startswith("lib/")}

    assert ("lib/face_model" in shipped) == (name in FACE_GATE)
    assert ("lib/identity_model" in shipped) == (name in IDENTITY_CHECK)


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_no_function_ships_the_tests_or_the_dev_tools(built, name):
    shipped = {path.split("/")[0] for path in built[name].files}

    assert not shipped & {"tests", "dev", "bench", ".ci", "docs", "public", "README.md"}


@pytest.mark.parametrize("name", sorted(ROUTES))
def test_a_function_started_by_its_launcher_answers_a_request_without_credentials(answers, name):
    answer = answers[name]["answer"]
    headers = {key.lower(): value for key, value in answer["headers"].items()}
    body = json.loads(answer["body"])

    assert headers["content-type"] == ["application/json"]
    if name == PUBLIC_DOCUMENT:
        assert answer["statusCode"] == 200
        assert body == json.loads((PROJECT_ROOT / "openapi.json").read_text())
    else:
        assert answer["statusCode"] == 401, answer
        assert set(body) == {"error", "code"}


@pytest.mark.parametrize("name", sorted(LIGHT))
def test_the_light_functions_import_no_heavy_package(answers, name):
    assert answers[name]["heavy"] == []


def test_the_static_output_holds_only_the_public_folder(output):
    static = output / "static"
    published = {path.relative_to(static).as_posix() for path in static.rglob("*")}
    public = PROJECT_ROOT / "public"

    assert published == {path.relative_to(public).as_posix() for path in public.rglob("*")}
    assert not [
        path
        for path in published
        if Path(path).suffix in SOURCE_SUFFIXES
        or Path(path).name.startswith("requirements")
        or path.split("/")[0] in {"tests", ".ci", "dev", "lib", "api", "bench"}
    ]


def test_the_builder_injects_the_vercel_runtime_the_tests_use(built):
    injected = {
        path.split("/")[1]
        for path in built["api/training/progress"].files
        if path.startswith("_vendor/vercel_runtime-")
    }

    assert injected == {f"vercel_runtime-{metadata.version('vercel-runtime')}.dist-info"}


def test_the_upload_bundle_decodes_a_phone_heic(bundles, built, python, tmp_path):
    photo = tmp_path / "IMG_0001.HEIC"
    photo.write_bytes(photos.heic())
    config = built["api/training/upload"].config

    result = subprocess.run(
        [str(python), "-c", HEIC_PROBE, str(photo)],
        cwd=bundles["api/training/upload"],
        env={"PATH": "/usr/bin:/bin", **config["environment"], "PYTHONPATH": ".:_vendor"},
        capture_output=True,
        text=True,
        check=True,
    )

    info = check_image(photo.read_bytes(), photo.name, min_face_share=0.15)
    assert result.stdout.strip() == f"{info.content_type} {info.width} {info.height} {info.faces}"
    assert info.content_type == "image/heic" and info.faces.faces == 1
