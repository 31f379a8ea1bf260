"""The dev server's own routes, which exist only in `make dev` (never on Vercel)."""

import uuid

from lib.adapters.clients import get_storage
from lib.intake.images import check_image
from lib.settings import get_settings


def test_the_stack_route_says_what_is_simulated_and_where_blobs_are_served(api):
    body = api.get("/_dev/stack").json()

    assert body["parts"]["Storage"].startswith("simulated Vercel Blob")
    assert body["parts"]["Replicate"].startswith("simulated")
    assert body["blobProxy"] == "/_dev/blob/"


def test_an_object_of_the_simulated_blob_store_is_served_to_the_browser(api):
    key = f"dev-routes/{uuid.uuid4().hex}/picture.webp"
    stored = get_storage(get_settings()).put(key, b"RIFF-not-really", "image/webp")

    response = api.get(f"/_dev/blob/{key}")

    assert stored.url.endswith(f".public.blob.vercel-storage.com/{key}")
    assert response.status_code == 200
    assert response.content == b"RIFF-not-really"
    assert response.headers["content-type"] == "image/webp"


def test_a_missing_blob_is_404(api):
    assert api.get(f"/_dev/blob/dev-routes/{uuid.uuid4().hex}.webp").status_code == 404


def test_sample_selfies_are_distinct_real_face_photos(api):
    samples = [api.get(f"/_dev/samples/{n}.jpg") for n in range(5)]

    assert all(s.status_code == 200 and s.headers["content-type"] == "image/jpeg" for s in samples)
    assert len({s.content for s in samples}) == 5
    for sample in samples:
        info = check_image(sample.content, "sample.jpg", min_face_share=0.15)
        assert info.faces is not None and info.faces.usable


def test_a_sample_beyond_the_last_is_404(api):
    assert api.get("/_dev/samples/50.jpg").status_code == 404
