"""The same-person check on real photos: distances between dlib's descriptors, the grouping,
and the majority rule."""

import io
import itertools

import numpy as np
import pytest
from PIL import Image, ImageEnhance, ImageFilter

from dev.samples import astronaut, selfie
from lib.errors import BadRequest
from lib.intake import face_check, identity
from tests.photos import encode, package_photo

OBAMA = ("obama.jpg", "obama2.jpg", "obama3.jpg")


def described(picture: Image.Image):
    face = max(face_check.detect(picture), key=lambda found: found.side)
    return identity.descriptor(picture, face.box)


def opened(data: bytes) -> Image.Image:
    return Image.open(io.BytesIO(data)).convert("RGB")


def spoiled(picture: Image.Image) -> list[Image.Image]:
    """The same photo mirrored, blurred, darkened, greyed, at JPEG quality 15 and turned 15°."""
    return [
        picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        picture.filter(ImageFilter.GaussianBlur(2)),
        ImageEnhance.Brightness(picture).enhance(0.5),
        picture.convert("L").convert("RGB"),
        opened(encode(picture, "JPEG", quality=15)),
        picture.rotate(15, expand=True),
    ]


def distance(a, b) -> float:
    return float(np.linalg.norm(a - b))


def test_photos_of_one_person_lie_closer_than_the_threshold_and_others_further():
    obama = [described(opened(package_photo(name))) for name in OBAMA]
    biden = described(opened(package_photo("biden.jpg")))
    eileen = described(astronaut())

    same = [distance(a, b) for a, b in itertools.combinations(obama, 2)]
    different = [distance(a, b) for a in [*obama, eileen] for b in (biden,)]
    different += [distance(a, eileen) for a in obama]
    assert max(same) < 0.5 < identity.SAME_PERSON
    assert min(different) > 0.65 > identity.SAME_PERSON


def test_a_spoiled_copy_is_still_the_same_person():
    original = opened(package_photo("obama2.jpg"))
    reference = described(original)

    distances = [distance(reference, described(copy)) for copy in spoiled(original)]

    assert max(distances) < 0.5


def test_the_dev_consoles_samples_are_all_one_person():
    descriptors = [described(opened(selfie(index))) for index in range(0, 50, 7)]

    assert identity.group(descriptors) == [list(range(len(descriptors)))]


def test_a_stranger_among_ten_photos_is_a_group_of_one():
    descriptors = [described(opened(selfie(index))) for index in range(9)]
    descriptors.insert(4, described(opened(package_photo("biden.jpg"))))

    groups = identity.group(descriptors)

    assert groups == [[0, 1, 2, 3, 5, 6, 7, 8, 9], [4]]
    assert identity.majority(groups, [f"{i}.jpg" for i in range(10)]) == groups[0]


def test_three_and_two_photos_of_two_people_have_no_clear_majority():
    descriptors = [described(opened(selfie(index))) for index in range(3)]
    descriptors += [described(opened(package_photo(name))) for name in OBAMA[:2]]
    names = ["a.jpg", "b.jpg", "c.jpg", "o1.jpg", "o2.jpg"]

    groups = identity.group(descriptors)
    with pytest.raises(BadRequest) as refused:
        identity.majority(groups, names)

    assert groups == [[0, 1, 2], [3, 4]]
    assert refused.value.code == "mixed_identities"
    assert "person 1: a.jpg, b.jpg, c.jpg; person 2: o1.jpg, o2.jpg" in refused.value.message


def test_three_different_people_make_three_groups_and_no_majority():
    people = [astronaut(), *(opened(package_photo(name)) for name in ("obama.jpg", "biden.jpg"))]

    groups = identity.group([described(picture) for picture in people])

    assert groups == [[0], [1], [2]]
    with pytest.raises(BadRequest):
        identity.majority(groups, ["e.jpg", "o.jpg", "b.jpg"])
