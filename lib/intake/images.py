"""Is this really a photo we can train on? Decoded with Pillow (and pi-heif for HEIC/HEIF).

The same checks run when a selfie is uploaded and again when the training ZIP is built: a file
that is not a usable image is refused; one that is an image gets the face check's verdict.
"""

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import IO, TYPE_CHECKING

from lib.errors import BadRequest
from lib.intake import face_check, sharpness
from lib.intake.face_check import FaceVerdict

if TYPE_CHECKING:  # Pillow is imported only by the functions that decode
    from PIL import Image

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "MPO": "image/jpeg",  # a phone JPEG with an extra preview/depth picture (MPF) appended
    "PNG": "image/png",
    "WEBP": "image/webp",
    "HEIF": "image/heic",
}
MIN_SHORT_SIDE = 512
# The face model sees 192 px; JPEGs are decoded at the smallest DCT scale keeping twice that.
FACE_CHECK_SIDE = 384
# Phones' largest modes are 50–108 MP; beyond this a small file decoding to gigabytes is a bomb.
MAX_PIXELS = 110_000_000
_ORIENTATION = 0x0112  # the EXIF tag
_QUARTER_TURNS = {5, 6, 7, 8}  # orientations that swap width and height
# EXIF orientation → the Image.Transpose that makes the picture upright (as ImageOps does).
_TRANSPOSES = {
    2: "FLIP_LEFT_RIGHT",
    3: "ROTATE_180",
    4: "FLIP_TOP_BOTTOM",
    5: "TRANSPOSE",
    6: "ROTATE_270",
    7: "TRANSVERSE",
    8: "ROTATE_90",
}
_TOO_MANY_PIXELS = f"more than {MAX_PIXELS // 1_000_000} megapixels"
NOT_AN_IMAGE = "not an image we can read; use JPEG, PNG, WebP or HEIC"


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int
    height: int
    faces: FaceVerdict | None = None  # the face check's verdict (check_image gives one)


class ImageRefused(Exception):
    """One file that cannot be a training photo, and why (said to the user as is)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name} ({reason})")
        self.name = name
        self.reason = reason


def check_images(files: Iterable[tuple[str, bytes]], *, min_face_share: float) -> list[ImageInfo]:
    """Check every (name, data); one 400 invalid_image naming each refused file and why.
    A photo the face check finds unusable is not refused: its verdict says why."""
    checked: list[ImageInfo] = []
    refused: list[ImageRefused] = []
    for name, data in files:
        try:
            checked.append(check_image(data, name, min_face_share=min_face_share))
        except ImageRefused as refusal:
            refused.append(refusal)
    if refused:
        raise refusal_error(refused)
    return checked


def refusal_error(refused: list[ImageRefused]) -> BadRequest:
    """The 400 that lists every refused file."""
    listed = "; ".join(str(refusal) for refusal in refused)
    return BadRequest(f"Not usable as training photos: {listed}", code="invalid_image")


def check_image(data: bytes, name: str, *, min_face_share: float) -> ImageInfo:
    """Decode the whole file to prove it (JPEGs at a reduced DCT scale, which still reads every
    byte), then run the face check on the picture as it is seen, and judge its face's focus and
    light."""
    image, info = decode(io.BytesIO(data), name, short_side=FACE_CHECK_SIDE)
    try:
        picture = turned(image, orientation(image))
        verdict = face_check.check(picture, min_face_share)
        if verdict.usable and verdict.box:
            verdict = replace(verdict, reason=sharpness.problem(picture, verdict.box))
    finally:
        image.close()
    return replace(info, faces=verdict)


def decode(
    photo: IO[bytes], name: str, *, short_side: int | None
) -> tuple["Image.Image", ImageInfo]:
    """Check and decode one photo (an open file or BytesIO); a JPEG is decoded at the smallest
    DCT scale (draft) whose short side is still at least `short_side` (None: full size).
    Raises ImageRefused."""
    from PIL import Image

    _configure_pillow()
    try:
        image = Image.open(photo)
    except Image.DecompressionBombError:
        raise ImageRefused(name, _TOO_MANY_PIXELS) from None
    except Exception:  # every decoder has its own errors; any of them means "not an image"
        raise ImageRefused(name, NOT_AN_IMAGE) from None
    try:
        info = _check_header(image, name)
        if short_side and image.format in ("JPEG", "MPO"):
            image.draft("RGB", _draft_size(image.size, short_side))
        image.load()
    except ImageRefused:
        image.close()
        raise
    except Exception:
        image.close()
        raise ImageRefused(name, "damaged or incomplete: it cannot be fully decoded") from None
    return image, info


def _check_header(image: "Image.Image", name: str) -> ImageInfo:
    # Pillow only warns between MAX_IMAGE_PIXELS and twice that; the warning is refused here
    # (not through a warnings filter, which any catch_warnings elsewhere would undo).
    if image.width * image.height > MAX_PIXELS:
        raise ImageRefused(name, _TOO_MANY_PIXELS)
    # MPO is a still JPEG whose second "frame" is a preview or depth map, not an animation.
    if getattr(image, "is_animated", False) and image.format != "MPO":
        raise ImageRefused(name, "an animated image; upload a still photo")
    content_type = CONTENT_TYPES.get(image.format or "")
    if content_type is None:
        raise ImageRefused(name, f"a {image.format} image; use JPEG, PNG, WebP or HEIC")
    width, height = image.size
    if min(width, height) < MIN_SHORT_SIDE:
        raise ImageRefused(
            name, f"{width}×{height} px; the short side must be at least {MIN_SHORT_SIDE} px"
        )
    if orientation(image) in _QUARTER_TURNS:  # shown turned a quarter: report it as seen
        width, height = height, width
    return ImageInfo(content_type, width, height)


def orientation(image: "Image.Image") -> int:
    """The EXIF orientation (1 = upright as stored); HEIF decoders have already applied it."""
    return image.getexif().get(_ORIENTATION, 1)


def turned(picture: "Image.Image", exif_orientation: int) -> "Image.Image":
    """The picture turned (or mirrored) the way an EXIF orientation says it is seen."""
    from PIL import Image

    turn = _TRANSPOSES.get(exif_orientation)
    return picture.transpose(Image.Transpose[turn]) if turn else picture


def _draft_size(size: tuple[int, int], short_side: int) -> tuple[int, int]:
    # draft() picks the largest 1/1–1/8 scale that keeps the image at least this big.
    scale = short_side / min(size)
    return max(1, math.ceil(size[0] * scale)), max(1, math.ceil(size[1] * scale))


@cache
def _configure_pillow() -> None:
    """HEIC/HEIF support, Pillow's bomb limit at ours (beyond twice it, open() raises), and
    its memory in small recycled blocks."""
    from pi_heif import register_heif_opener
    from PIL import Image

    register_heif_opener(thumbnails=False)
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    # Pictures in 1 MiB blocks that Pillow recycles (what its PILLOW_BLOCK_SIZE and
    # PILLOW_BLOCKS_MAX variables set, when they are there before Pillow loads): with one malloc
    # per 12 MB frame, glibc raised its mmap threshold and carved later frames from per-thread
    # heaps that keep their pages (bench.zip: 25–30 MiB more peak). At most 64 stay cached.
    Image.core.set_block_size(1024 * 1024)
    Image.core.set_blocks_max(64)
