"""Does every photo of a training set show the same person? dlib's face descriptor, compared.

Each photo's face (BlazeFace's box, from the face check; no second detector) is aligned on
dlib's 5 landmarks into a 150-px chip, which dlib's ResNet turns into 128 numbers. Two photos of
one person lie less than SAME_PERSON apart (Euclidean); different people lie further (README,
"Same person across the set"). The photos are grouped by average linkage, never around one
median (with several people in a set the median sits between all of them), and the largest
group is the person when it holds at least MAJORITY of the compared photos.

Descriptors are biometric data: they live in memory for one request and are never stored or
logged. dlib and numpy are imported on first use, and the two models load once per process
(only the start and retry functions ship them); one lock serves every thread.
"""

import io
import itertools
import logging
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lib.errors import ApiError, BadRequest
from lib.intake import face_check
from lib.intake.images import ImageRefused, decode, orientation, turned

if TYPE_CHECKING:
    from PIL import Image

    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

MODEL_DIR = Path(__file__).resolve().parent.parent / "identity_model"
LANDMARKS = MODEL_DIR / "shape_predictor_5_face_landmarks.dat"
DESCRIPTOR = MODEL_DIR / "dlib_face_recognition_resnet_model_v1.dat"
# Measured (README): the same person ≤ 0.48 apart across photos and under mirror, blur, light,
# greyscale, JPEG quality 15 and ±15°; different people ≥ 0.77. dlib's own threshold sits between.
SAME_PERSON = 0.6
MAJORITY = 2 / 3  # the largest group's share of the compared photos that makes it the person
# Photos are decoded for the check at the smallest JPEG scale keeping this short side: a face
# passing the face gate (≥ 15 % of it) is then ≥ 96 px, which dlib describes well.
DECODE_SIDE = 640
FACE_SIDE = 300  # the face's box is scaled to at most this many pixels before dlib sees it
WORKERS = 3  # photos fetched and decoded at once while one descriptor is computed
NOT_THE_PERSON = "not the same person as the other photos"

_lock = threading.Lock()
_models: dict[str, Any] = {}


@dataclass(frozen=True)
class SamePerson:
    """The photos to train on, and those left out (each a dict: url, filename, reason)."""

    kept: list[dict[str, Any]]
    left_out: list[dict[str, str]]


def same_person(
    uploads: Sequence[dict[str, Any]],
    *,
    storage: "Storage",
    min_images: int,
    unusable: Sequence[dict[str, str]] = (),
    workers: int = WORKERS,
) -> SamePerson:
    """Leave out the photos not showing the person most of the set shows; 400 mixed_identities
    when no group is a clear majority, 400 not_enough_images when fewer than `min_images`
    photos of that person remain (naming them after the `unusable` photos already left out).
    Photos without one readable face are kept untouched (the ZIP builder decides on them)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="identity") as pool:
        described = list(pool.map(lambda row: _described(row, storage), uploads))
    compared = [i for i, vector in enumerate(described) if vector is not None]
    groups = group([described[i] for i in compared])
    if len(groups) < 2:
        return SamePerson(list(uploads), [])
    names = [uploads[i]["filename"] for i in compared]
    person = majority(groups, names)
    strangers = {compared[i] for members in groups if members is not person for i in members}
    kept = [row for i, row in enumerate(uploads) if i not in strangers]
    left_out = [_left_out(uploads[i]) for i in sorted(strangers)]
    logger.info("photos of another person left out count=%s", len(left_out))
    if len(kept) < min_images:
        named = [*unusable, *left_out]
        listed = "; ".join(f"{item['filename']}: {item['reason']}" for item in named)
        raise BadRequest(
            f"At least {min_images} training images are required ({listed})",
            code="not_enough_images",
        )
    return SamePerson(kept, left_out)


def group(descriptors: Sequence[Any], threshold: float = SAME_PERSON) -> list[list[int]]:
    """Indexes of the descriptors grouped by average linkage: the two groups whose members lie
    closest on average merge while that average is under `threshold`. Largest group first."""
    import numpy as np

    if not descriptors:
        return []
    vectors = np.asarray(descriptors)
    distances = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    groups = [[i] for i in range(len(vectors))]

    def apart(pair: tuple[int, int]) -> float:
        return float(distances[np.ix_(groups[pair[0]], groups[pair[1]])].mean())

    while len(groups) > 1:
        closest = min(itertools.combinations(range(len(groups)), 2), key=apart)
        if apart(closest) >= threshold:
            break
        groups[closest[0]] += groups.pop(closest[1])
    return sorted((sorted(members) for members in groups), key=len, reverse=True)


def majority(groups: list[list[int]], names: Sequence[str]) -> list[int]:
    """The largest group when it holds at least MAJORITY of the photos; 400 mixed_identities
    naming every group otherwise (which person is the user is not ours to guess)."""
    largest = groups[0]
    if len(largest) >= MAJORITY * sum(len(members) for members in groups):
        return largest
    listed = "; ".join(
        f"person {number}: {', '.join(names[i] for i in members)}"
        for number, members in enumerate(groups, start=1)
    )
    raise BadRequest(
        f"These photos show different people ({listed}); keep only photos of yourself",
        code="mixed_identities",
    )


def descriptor(picture: "Image.Image", box: tuple[float, float, float, float]) -> Any:
    """The 128-number descriptor of the face in `box` of an upright RGB picture."""
    import dlib
    import numpy as np

    crop, face = _face_region(picture, box)
    pixels = np.ascontiguousarray(np.asarray(crop.convert("RGB"), dtype=np.uint8))
    with _lock:
        if not _models:
            _models.update(_load())
        shape = _models["landmarks"](pixels, dlib.rectangle(*face))
        return np.asarray(_models["descriptor"].compute_face_descriptor(pixels, shape))


def _described(row: dict[str, Any], storage: "Storage") -> Any | None:
    """The descriptor of one upload's face, or None when it has no single face to compare."""
    try:
        data = b"".join(storage.stream(row["storage_key"]))
        image, _ = decode(io.BytesIO(data), row["filename"], short_side=DECODE_SIDE)
    except (ApiError, ImageRefused):
        return None  # the ZIP builder names it when it fails there too
    with image:
        picture = turned(image, orientation(image))
        faces = face_check.detect(picture)
        if not faces:
            return None
        face = max(faces, key=lambda found: found.side)
        return descriptor(picture, face.box)


def _face_region(
    picture: "Image.Image", box: tuple[float, float, float, float]
) -> tuple["Image.Image", tuple[int, int, int, int]]:
    """The face with half its size around it, scaled so the face is at most FACE_SIDE pixels
    (dlib's chip is 150 px: more pixels cost time, not accuracy); the face's box in it."""
    x1, y1, x2, y2 = box
    margin = max(x2 - x1, y2 - y1) / 2
    left, top = max(0, int(x1 - margin)), max(0, int(y1 - margin))
    right = min(picture.width, int(x2 + margin))
    bottom = min(picture.height, int(y2 + margin))
    crop = picture.crop((left, top, right, bottom))
    scale = min(1.0, FACE_SIDE / max(x2 - x1, y2 - y1, 1))
    if scale < 1:
        crop = crop.resize((max(1, round(crop.width * scale)), max(1, round(crop.height * scale))))
    return crop, (
        round((x1 - left) * scale),
        round((y1 - top) * scale),
        round((x2 - left) * scale),
        round((y2 - top) * scale),
    )


def _left_out(row: dict[str, Any]) -> dict[str, str]:
    return {"url": row["url"], "filename": row["filename"], "reason": NOT_THE_PERSON}


def _load() -> dict[str, Any]:
    import dlib

    return {
        "landmarks": dlib.shape_predictor(str(LANDMARKS)),
        "descriptor": dlib.face_recognition_model_v1(str(DESCRIPTOR)),
    }
