"""The photo checks, on real files of every kind a phone or a careless user sends."""

import pytest

from lib.errors import BadRequest
from lib.intake.images import ImageRefused, check_image, check_images
from tests import photos


@pytest.mark.parametrize(
    ("make", "content_type", "size"),
    [
        (photos.rotated_jpeg_with_gps, "image/jpeg", (900, 1200)),
        (photos.heic, "image/heic", (900, 1200)),
        (photos.png_with_alpha, "image/png", (900, 1200)),
        (photos.webp, "image/webp", (900, 1200)),
        (photos.phone_size_jpeg, "image/jpeg", (4000, 3000)),
        (photos.mpo, "image/jpeg", (900, 1200)),
    ],
)
def test_real_photos_pass_and_report_their_size_as_seen(make, content_type, size):
    info = check_image(make(), "photo", min_face_share=0.15)

    assert (info.content_type, info.width, info.height) == (content_type, *size)
    assert info.faces is not None and info.faces.usable


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (photos.TEXT_NAMED_JPG, "not an image we can read"),
        (photos.truncated_jpeg(), "damaged or incomplete"),
        (photos.tiny_jpeg(), "100×100 px; the short side must be at least 512 px"),
        (photos.animated("GIF"), "an animated image"),
        (photos.animated("WEBP"), "an animated image"),
        (photos.still_gif(), "a GIF image; use JPEG, PNG, WebP or HEIC"),
        (photos.bomb_png(), "more than 110 megapixels"),
    ],
)
def test_unusable_files_are_refused_with_their_reason(data, reason):
    with pytest.raises(ImageRefused, match=reason) as refused:
        check_image(data, "selfie.jpg", min_face_share=0.15)

    assert refused.value.name == "selfie.jpg"


def test_a_bomb_below_pillows_own_error_threshold_is_refused_not_warned_about():
    # 120 MP: Pillow itself only warns between its limit and twice its limit.
    with pytest.raises(ImageRefused, match="megapixels"):
        check_image(photos.bomb_png(12_000, 10_000), "bomb.png", min_face_share=0.15)


def test_one_error_names_every_refused_file_and_why():
    files = [
        ("good.jpg", photos.rotated_jpeg_with_gps()),
        ("notes.jpg", photos.TEXT_NAMED_JPG),
        ("small.jpg", photos.tiny_jpeg()),
    ]

    with pytest.raises(
        BadRequest, match=r"notes\.jpg \(not an image.*small\.jpg \(100×100"
    ) as error:
        check_images(files, min_face_share=0.15)

    assert error.value.code == "invalid_image"
    assert "good.jpg" not in error.value.message
