"""What the likeness checks add: the same-person check to start, the sharpness and light check to
each upload, for 5, 20 and 50 photos, as ratios of the same work without them.

Photos: the dev console's sample selfies (real face photos) scaled to phone size (3024×4032,
JPEG q90, ~1–2 MB), kept in a temporary local store (no network: the checks' own cost shows).

* start: lib.training.start's photo work, the training ZIP built and stored
  (lib.intake.dataset.zip_chunks + put_stream, face check on), against the same preceded by
  lib.intake.identity.same_person (fetch, decode at 640 px, BlazeFace, dlib descriptor each,
  grouping);
* upload: lib.intake.images.check_image on every photo (decode at 384 px, face check) against
  the same without the sharpness and light judgement (lib.intake.sharpness.problem).

Warm: dlib's models are loaded before timing; their one-off load per instance is printed apart.
Variants are interleaved, their order alternating each round; medians of --runs (five times as
many for the cheaper upload checks).

    .venv/bin/python -m bench.identity --runs 3
"""

import argparse
import io
import statistics
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

SIZES = (5, 20, 50)
PHONE = (3024, 4032)
MIN_SHARE = 0.15


def phone_photos(count: int) -> list[bytes]:
    """`count` distinct sample selfies at phone size."""
    from PIL import Image

    from dev.samples import selfie

    photos = []
    for index in range(count):
        picture = Image.open(io.BytesIO(selfie(index))).convert("RGB").resize(PHONE)
        out = io.BytesIO()
        picture.save(out, format="JPEG", quality=90)
        photos.append(out.getvalue())
    return photos


def stored(photos: list[bytes], root: Path):
    """A local store holding the photos, and their selfie_uploads-like rows."""
    from lib.adapters.storage.local import LocalStorage

    storage = LocalStorage(root, "http://127.0.0.1/blob")
    rows = []
    for index, data in enumerate(photos):
        key = f"bench/selfies/{index:02d}.jpg"
        url = storage.put(key, data, "image/jpeg").url
        rows.append({"url": url, "filename": f"{index:02d}.jpg", "storage_key": key})
    return storage, rows


def start_work(storage, rows, *, identity_check: bool) -> None:
    """The photo work of a start: (the same-person check, then) the stored training ZIP."""
    from lib.intake import dataset, identity

    if identity_check:
        rows = identity.same_person(rows, storage=storage, min_images=5).kept
    sources = [dataset.SourceImage(row["filename"], row["storage_key"]) for row in rows]
    chunks = dataset.zip_chunks(sources, storage, min_face_share=MIN_SHARE)
    storage.put_stream("bench/training.zip", chunks, "application/zip")


def upload_work(photos: list[bytes], *, sharpness_check: bool) -> None:
    """Every photo through the upload's checks, as lib.intake.images.check_image runs them
    (decode at 384 px, upright, face check), with or without the sharpness and light judgement."""
    from lib.intake import face_check, images, sharpness

    for data in photos:
        image, _ = images.decode(io.BytesIO(data), "photo.jpg", short_side=images.FACE_CHECK_SIDE)
        picture = images.turned(image, images.orientation(image))
        verdict = face_check.check(picture, MIN_SHARE)
        if sharpness_check and verdict.box:
            sharpness.problem(picture, verdict.box)
        image.close()


def timed(work: Callable[[], None]) -> tuple[float, float]:
    """Wall and CPU seconds (every thread of the process) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    work()
    return time.perf_counter() - wall, time.process_time() - cpu


def compare(runs: int, variants: dict[str, Callable[[], None]]) -> dict[str, tuple[float, float]]:
    """Median wall and CPU seconds of each variant, interleaved, order alternating each round."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for round_number in range(runs):
        for name in names if round_number % 2 == 0 else reversed(names):
            times[name].append(timed(variants[name]))
    return {
        name: (statistics.median(t[0] for t in values), statistics.median(t[1] for t in values))
        for name, values in times.items()
    }


def row(label: str, count: int, measured: dict[str, tuple[float, float]]) -> str:
    (wall, cpu), (wall_with, cpu_with) = measured["without"], measured["with"]
    return (
        f"{label:<8}{count:>6}  {wall:>8.2f}  {wall_with:>8.2f}  {wall_with / wall:>5.2f}  "
        f"{cpu:>8.2f}  {cpu_with:>8.2f}  {cpu_with / cpu:>5.2f}"
    )


def model_load_seconds() -> float:
    """dlib imported and both models loaded (once per instance)."""
    from lib.intake import identity

    started = time.perf_counter()
    identity._models.update(identity._load())
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3, help="rounds per variant (default 3)")
    args = parser.parse_args()
    print(f"dlib import + model load (once per instance): {model_load_seconds():.3f} s")
    photos = phone_photos(max(SIZES))
    print("start: without / with the same-person check; upload: without / with sharpness")
    print(
        f"{'':<8}{'photos':>6}  {'wall s':>8}  {'with':>8}  {'ratio':>5}  "
        f"{'cpu s':>8}  {'with':>8}  {'ratio':>5}"
    )
    for count in SIZES:
        with tempfile.TemporaryDirectory() as root:
            storage, rows = stored(photos[:count], Path(root))
            start = compare(
                args.runs,
                {
                    "without": partial(start_work, storage, rows, identity_check=False),
                    "with": partial(start_work, storage, rows, identity_check=True),
                },
            )
        upload = compare(  # cheap and noisy: five times the rounds
            args.runs * 5,
            {
                "without": partial(upload_work, photos[:count], sharpness_check=False),
                "with": partial(upload_work, photos[:count], sharpness_check=True),
            },
        )
        print(row("start", count, start))
        print(row("upload", count, upload))


if __name__ == "__main__":
    main()
