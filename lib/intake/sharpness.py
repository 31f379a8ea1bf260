"""Is the face sharp and lit enough to learn from? Measured on the face alone, at upload.

The face's box (BlazeFace's, from the face check) is cut out, turned grey and box-averaged to
64×64, so a face is judged the same at any resolution the photo has or is decoded at. Then:
- sharpness: the spread of its Laplacian (the pixel-to-pixel detail) over the spread of its
  levels, which neither light nor contrast changes; a blurred face loses the first, not the
  second;
- light: the face's mean level (0–255), and the share of its pixels at 250 or more.
Thresholds were measured on real photos and on their blurred, darkened and brightened copies
(README, "Sharp and lit enough").
"""

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

SIDE = 64
MIN_SHARPNESS = 0.3  # sharp photos 0.53–1.01; a 4 px blur at 1024 px 0.13–0.43, 8 px ≤ 0.25
MIN_LEVEL = 30  # faces in ordinary photos 110–172; at a fifth of the light 22–34
MAX_CLIPPED = 0.3  # ordinary photos ≤ 0.03 of the face at 250+; overexposed 0.3–0.85
BLURRY = "blurry: the face is not sharp enough to learn from"
TOO_DARK = "too dark: the face is too dark to learn from"
BLOWN_OUT = "blown out: the face is too bright to learn from"


def problem(picture: "Image.Image", box: tuple[float, float, float, float]) -> str | None:
    """Why the face in `box` of an upright picture cannot teach a model, or None."""
    import numpy as np
    from PIL import Image

    x1, y1, x2, y2 = box
    region = (max(0, x1), max(0, y1), min(picture.width, x2), min(picture.height, y2))
    face = picture.crop(region).convert("L").resize((SIDE, SIDE), Image.Resampling.BOX)
    levels = np.asarray(face, dtype=np.float32)
    if levels.mean() < MIN_LEVEL:
        return TOO_DARK
    if (levels >= 250).mean() > MAX_CLIPPED:
        return BLOWN_OUT
    return BLURRY if sharpness(levels) < MIN_SHARPNESS else None


def sharpness(levels: Any) -> float:
    """The standard deviation of the 4-neighbour Laplacian over that of the levels."""
    inner = levels[1:-1, 1:-1]
    laplacian = (
        4 * inner - levels[:-2, 1:-1] - levels[2:, 1:-1] - levels[1:-1, :-2] - levels[1:-1, 2:]
    )
    spread = float(levels.std())
    return float(laplacian.std()) / spread if spread else 0.0
