"""Which stored files Blob could have made from a token's pathname (its random suffix)."""

import pytest

from lib.intake.pending_uploads import made_from


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        ("selfie.jpg", "selfie-oYnXSVczoLa9yBYMFJOSNdaiiervF5.jpg"),
        ("my-photo.jpg", "my-photo-Q1w2.jpg"),
        ("archive.tar.gz", "archive-Q1w2.tar.gz"),
        ("archive.tar.gz", "archive.tar-Q1w2.gz"),
        ("users/ab/selfies/me.heic", "users/ab/selfies/me-Q1w2.heic"),
        ("selfie", "selfie-Q1w2"),
        ("selfie.jpg", "selfie.jpg"),
    ],
)
def test_a_file_blob_stored_from_the_pathname_is_made_from_it(requested, stored):
    assert made_from(requested, stored)


@pytest.mark.parametrize(
    ("requested", "stored"),
    [
        ("selfie.jpg", "selfie.png"),
        ("selfie.jpg", "selfies-Q1w2.jpg"),
        ("selfie.jpg", "selfie-Q1w2-R3.jpg"),
        ("selfie.jpg", "selfie-Q1_w2.jpg"),
        ("selfie.jpg", "users/ab/selfies/selfie-Q1w2.jpg"),
        ("users/ab/selfies/me.jpg", "users/cd/selfies/me-Q1w2.jpg"),
        ("me.jpg", "home-Q1w2.jpg"),
    ],
)
def test_any_other_file_is_not(requested, stored):
    assert not made_from(requested, stored)
