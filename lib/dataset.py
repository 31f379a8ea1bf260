"""The training ZIP: clean, upright JPEGs with flat names, as the trainer expects."""

import io
import zipfile
from collections.abc import Iterable

from lib.images import register_heif

MAX_SHORT_SIDE = 1024
JPEG_QUALITY = 92


class DatasetImageError(Exception):
    """One image could not be normalised; carries its name."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(f"{name}: {reason}")
        self.name = name
        self.reason = reason


def normalise(data: bytes) -> bytes:
    """EXIF orientation applied, metadata dropped, RGB JPEG, short side at most 1024 px."""
    from PIL import Image, ImageOps

    register_heif()
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    scale = MAX_SHORT_SIDE / min(upright.size)
    if scale < 1:
        size = (round(upright.width * scale), round(upright.height * scale))
        upright = upright.resize(size, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    # A fresh RGB image carries no EXIF, GPS or XMP: nothing is copied across.
    upright.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def build_zip(images: Iterable[tuple[str, bytes]]) -> bytes:
    """A stored (uncompressed) ZIP of normalised images named 00.jpg, 01.jpg …"""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, (name, data) in enumerate(images):
            try:  # any decoder failure means this one image is unusable
                jpeg = normalise(data)
            except Exception as exc:
                raise DatasetImageError(name, "not a readable image") from exc
            archive.writestr(f"{index:02d}.jpg", jpeg)
    return buffer.getvalue()
