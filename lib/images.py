"""Is this really a photo we can train on? Decoding with Pillow (and pillow-heif for HEIC)."""

import io
from dataclasses import dataclass

from lib.errors import BadRequest

ALLOWED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
HEIF_FORMATS = {"HEIF": "image/heif", "HEIC": "image/heic"}


@dataclass(frozen=True)
class ImageInfo:
    content_type: str
    width: int
    height: int


def inspect_image(data: bytes, filename: str) -> ImageInfo:
    """Decode the picture fully; 400 invalid_image naming the file when it is not a usable image."""
    from PIL import Image, UnidentifiedImageError

    register_heif()
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format = image.format or ""
            image.load()
            width, height = image.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        raise BadRequest(f"{filename} is not a readable image", code="invalid_image") from None
    content_type = (ALLOWED_FORMATS | HEIF_FORMATS).get(image_format)
    if content_type is None:
        raise BadRequest(
            f"{filename} is a {image_format} image; use JPEG, PNG, WebP or HEIC",
            code="invalid_image",
        )
    return ImageInfo(content_type, width, height)


def register_heif() -> None:
    """Let Pillow open HEIC/HEIF (phone photos)."""
    from pillow_heif import register_heif_opener

    register_heif_opener()
