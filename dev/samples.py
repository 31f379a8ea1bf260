"""Sample selfies for the dev console and the tests: real face photos, made at run time from
scikit-image's astronaut (Eileen Collins, a public-domain NASA portrait shipped in its wheel).

Every index gives a distinct picture (its own crop, mirror, colour and size) with one big face,
so each passes the face check and counts as a different photo. Dev and tests only.
"""

import io
from functools import cache

from PIL import Image, ImageEnhance

COUNT = 50  # distinct samples on offer


@cache
def astronaut() -> Image.Image:
    """The 512×512 RGB portrait (the face is about a fifth of the picture)."""
    from skimage import data

    return Image.fromarray(data.astronaut()).convert("RGB")


def selfie(index: int) -> bytes:
    """Sample selfie `index` (0 ≤ index < COUNT) as a JPEG, at least 640 px on its short side."""
    if not 0 <= index < COUNT:
        raise ValueError(f"sample {index} does not exist; there are {COUNT}")
    # A 4:5 crop sliding across the portrait keeps the face whole and about a quarter of the width.
    left = 20 + (index * 37) % 120
    picture = (
        astronaut().crop((left, 0, left + 400, 500)).resize((640 + index * 8, 800 + index * 10))
    )
    if index % 2:
        picture = picture.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    picture = ImageEnhance.Brightness(picture).enhance(0.85 + (index % 7) * 0.05)
    picture = ImageEnhance.Color(picture).enhance(0.7 + (index % 5) * 0.15)
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=90)
    return out.getvalue()
