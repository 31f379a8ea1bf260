"""What the face check costs: per image and at a cold start (its size in each function is what
tests/test_vercel_build.py measures on Vercel's own build).

1. Per image, in process: lib.intake.images.check_image (the upload path: JPEG decoded with draft at
   the smallest DCT scale keeping 384 px, EXIF orientation, detection) on a 12 MP and a
   1024-px JPEG of a real face, against the same check with a full-size decode (no draft),
   measured in the same run; plus detection alone on a decoded 1024-px picture.
2. Cold start: fresh interpreters import api/training/start.py by path (as Vercel does), then
   (or not) run the face check once (numpy + LiteRT imported, model loaded, first inference).

Medians and minimums of N, each as a ratio of the baseline measured in the same run.

    .venv/bin/python -m bench.facecheck --runs 15
"""

import argparse
import io
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from dev.server import PROJECT_ROOT

MIN_SHARE = 0.15
COLD_PROBE = """
import importlib.util, sys, time
sys.path.insert(0, sys.argv[1])
started = time.perf_counter()
spec = importlib.util.spec_from_file_location("api.training.start", sys.argv[2])
spec.loader.exec_module(importlib.util.module_from_spec(spec))
if sys.argv[3] == "check":
    from lib.intake.images import check_image
    check_image(open(sys.argv[4], "rb").read(), "selfie.jpg", min_face_share=0.15)
print(time.perf_counter() - started)
"""


def face_jpeg(size: tuple[int, int]) -> bytes:
    """A JPEG of `size` with the astronaut's portrait filling its height (one clear face)."""
    from PIL import Image

    from dev.samples import astronaut

    picture = Image.new("RGB", size, (96, 110, 124))
    side = min(size)
    picture.paste(
        astronaut().resize((side, side), Image.Resampling.LANCZOS), ((size[0] - side) // 2, 0)
    )
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=92)
    return out.getvalue()


def check_without_draft(data: bytes) -> None:
    """The same check with the JPEG decoded at full size."""
    from lib.intake import face_check
    from lib.intake.images import decode, orientation, turned

    image, _ = decode(io.BytesIO(data), "selfie.jpg", short_side=None)
    face_check.check(turned(image, orientation(image)), MIN_SHARE)


def timed(call: Callable[[], object], runs: int) -> list[float]:
    """Seconds per call, `runs` times (after one warm-up call)."""
    call()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        samples.append(time.perf_counter() - started)
    return samples


def per_image(runs: int) -> None:
    """Section 1."""
    from PIL import Image

    from lib.intake import face_check
    from lib.intake.images import check_image

    print(f"per image, in process, {runs} calls each after a warm-up (ms)")
    print(f"{'image':<22}{'variant':<26}{'median':>8}{'min':>8}{'vs no draft':>13}")
    for label, size in (("12 MP (4032×3024)", (4032, 3024)), ("1024 px (1024×768)", (1024, 768))):
        data = face_jpeg(size)
        ours = timed(lambda d=data: check_image(d, "selfie.jpg", min_face_share=MIN_SHARE), runs)
        full = timed(lambda d=data: check_without_draft(d), runs)
        baseline = statistics.median(full)
        for variant, values in (("draft (check_image)", ours), ("no draft", full)):
            median = statistics.median(values)
            print(
                f"{label:<22}{variant:<26}{median * 1000:>8.1f}{min(values) * 1000:>8.1f}"
                f"{median / baseline:>13.2f}"
            )
    picture = Image.open(io.BytesIO(face_jpeg((1024, 768)))).convert("RGB")
    detect = timed(lambda: face_check.detect(picture), runs)
    print(
        f"{'1024 px, decoded':<22}{'detection alone':<26}"
        f"{statistics.median(detect) * 1000:>8.1f}{min(detect) * 1000:>8.1f}"
    )


def cold_start(runs: int) -> None:
    """Section 2."""
    photo = PROJECT_ROOT / ".data" / "bench-face.jpg"
    photo.parent.mkdir(exist_ok=True)
    photo.write_bytes(face_jpeg((1024, 768)))
    start = PROJECT_ROOT / "api" / "training" / "start.py"
    samples: dict[str, list[float]] = {"import": [], "check": []}
    for _ in range(runs):  # interleaved, so drift in machine load hits both alike
        for variant, values in samples.items():
            command = [sys.executable, "-c", COLD_PROBE, str(PROJECT_ROOT), str(start), variant]
            output = subprocess.run(
                [*command, str(photo)], capture_output=True, text=True, check=True
            ).stdout
            values.append(float(output.strip()))
    baseline = statistics.median(samples["import"])
    print(f"\ncold start of the start function, {runs} fresh interpreters each (ms)")
    print(f"{'variant':<44}{'median':>8}{'min':>8}{'vs import':>11}")
    for variant, label in (
        ("import", "import start.py"),
        ("check", "import start.py + first face check"),
    ):
        values = samples[variant]
        median = statistics.median(values)
        print(
            f"{label:<44}{median * 1000:>8.1f}{min(values) * 1000:>8.1f}{median / baseline:>11.2f}"
        )


def main() -> None:
    """Run the two sections."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=11, help="samples per variant")
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}")
    per_image(args.runs)
    cold_start(args.runs)


if __name__ == "__main__":
    main()
