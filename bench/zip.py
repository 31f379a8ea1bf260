"""The training-ZIP pipeline against a naive baseline, measured in the same run.

20 phone-size JPEGs (4000×3000, q95, ~4 MB, realistic content, EXIF orientation 6 + GPS) are
served by the local Blob emulator with 50 ms added to every request. Each sample runs one
variant in a fresh interpreter, so peak memory is that variant's alone:

* ours  — lib.intake.dataset.zip_chunks: concurrent fetches (bounded pool), draft JPEG decoding,
          the ZIP streamed to Blob as a multipart upload (storage.put_stream);
* naive — sequential downloads, full decode + exif_transpose + resize, ZIP in memory, one PUT
          (the code this replaced).

Wall time is from the first fetch to the stored ZIP (imports excluded). Peak memory is the
process's VmHWM (peak RSS); "added" subtracts the RSS it had before the pipeline started (after
imports). Variants are interleaved and their order alternates each round. A last section times
per-image normalisation with and without draft mode, in process.

    .venv/bin/python -m bench.zip --runs 5
"""

import argparse
import io
import json
import random
import statistics
import subprocess
import sys
import time
import zipfile
from pathlib import Path

from dev.server import PROJECT_ROOT

IMAGES = 20
LATENCY = 0.05
PREFIX = "bench/selfies"
ZIP_KEY = "bench/training.zip"


def make_photo(seed: int) -> bytes:
    """A 12 MP JPEG that compresses like a real photo: gradients, shapes, blur, sensor noise."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    rng = random.Random(seed)
    width, height = 3000, 4000  # upright portrait; stored turned, as phones do
    channels = [
        Image.linear_gradient("L").rotate(rng.randrange(360)).resize((width, height))
        for _ in range(3)
    ]
    picture = Image.merge("RGB", channels)
    draw = ImageDraw.Draw(picture)
    for _ in range(40):
        x, y = rng.randrange(width), rng.randrange(height)
        size = rng.randrange(80, 900)
        colour = tuple(rng.randrange(256) for _ in range(3))
        shape = draw.ellipse if rng.random() < 0.5 else draw.rectangle
        shape((x, y, x + size, y + size), fill=colour)
    draw.rectangle((0, 0, 400, 400), fill=(230, 20, 20))  # markers: red top-left,
    draw.rectangle((width - 400, 0, width, 400), fill=(20, 20, 230))  # blue top-right
    picture = picture.filter(ImageFilter.GaussianBlur(3))
    luma = Image.effect_noise((width, height), 5)
    picture = ImageChops.add(picture, Image.merge("RGB", [luma] * 3), offset=-128)
    chroma = [Image.effect_noise((width, height), 2) for _ in range(3)]
    picture = ImageChops.add(picture, Image.merge("RGB", chroma), offset=-128)
    exif = Image.Exif()
    exif[0x0112] = 6
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 31.0, 12.34), 3: "E", 4: (13.0, 24.0, 56.78)})
    out = io.BytesIO()
    stored = picture.transpose(Image.Transpose.ROTATE_90)
    stored.save(out, format="JPEG", quality=95, subsampling=2, exif=exif)
    return out.getvalue()


def photos(cache: Path) -> list[bytes]:
    """The 20 bench photos, generated once into `cache`."""
    cache.mkdir(parents=True, exist_ok=True)
    files = []
    for index in range(IMAGES):
        path = cache / f"{index:02d}.jpg"
        if not path.exists():
            path.write_bytes(make_photo(index))
        files.append(path.read_bytes())
    return files


def run_variant(variant: str, api_url: str, token: str, workers: str) -> dict[str, float]:
    """One pipeline run in this process (called in a fresh interpreter)."""
    import PIL.Image  # noqa: F401 - imported before the baseline RSS, like every variant
    import pillow_heif  # noqa: F401
    import vercel.blob.sync  # noqa: F401

    from lib.adapters.storage.blob import BlobStorage
    from lib.intake import dataset

    storage = BlobStorage(token, api_url)
    sources = [dataset.SourceImage(f"{i:02d}.jpg", f"{PREFIX}/{i:02d}.jpg") for i in range(IMAGES)]
    base_kib = _status_kib("VmRSS")
    started, cpu = time.perf_counter(), time.process_time()
    if variant == "ours":
        # These pictures have no face; the face check's own cost is bench.facecheck's.
        chunks = dataset.zip_chunks(sources, storage, min_face_share=None, workers=int(workers))
        storage.put_stream(ZIP_KEY, chunks, "application/zip")
    else:
        storage.put(ZIP_KEY, naive_zip(sources, storage), "application/zip")
    return {
        "wall": time.perf_counter() - started,
        "cpu": time.process_time() - cpu,
        "peak_mib": _status_kib("VmHWM") / 1024,
        "added_mib": (_status_kib("VmHWM") - base_kib) / 1024,
    }


def naive_zip(sources, storage) -> bytes:
    """Sequential downloads, full-size decode, the whole ZIP in memory."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for index, source in enumerate(sources):
            archive.writestr(f"{index:02d}.jpg", naive_normalise(storage.read(source.key)))
    return buffer.getvalue()


def naive_normalise(data: bytes) -> bytes:
    """The straightforward way: decode all 12 MP, rotate them, then resize."""
    from PIL import Image, ImageOps

    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    scale = 1024 / min(upright.size)
    upright = upright.resize(
        (round(upright.width * scale), round(upright.height * scale)), Image.Resampling.LANCZOS
    )
    upright.info = {}
    out = io.BytesIO()
    upright.save(out, format="JPEG", quality=92)
    return out.getvalue()


def _status_kib(field: str) -> int:
    # VmHWM, not ru_maxrss: Linux carries ru_maxrss across exec, so a child started by a big
    # parent would report the parent's peak.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def sample(variant: str, api_url: str, token: str, workers: int) -> dict[str, float]:
    """One run of a variant in a fresh interpreter."""
    output = subprocess.run(
        [sys.executable, "-m", "bench.zip", "--child", variant, api_url, token, str(workers)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(output)


def check_zip(data: bytes) -> None:
    """The stored ZIP holds 20 upright 1024-px JPEGs."""
    from PIL import Image

    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert archive.testzip() is None and len(archive.namelist()) == IMAGES
        image = Image.open(io.BytesIO(archive.read("00.jpg"))).convert("RGB")
        assert image.size == (1024, 1365), image.size
        assert image.getpixel((60, 60))[0] > 180 and image.getpixel((960, 60))[2] > 180


def normalisation_ms(files: list[bytes], runs: int) -> dict[str, list[float]]:
    """Per-image normalisation time, in process: with draft, without, and the naive code."""
    from lib.intake.dataset import normalise

    variants = {
        "draft": lambda data: normalise(data, "x"),
        "no draft": lambda data: normalise(data, "x", draft=False),
        "naive": naive_normalise,
    }
    times: dict[str, list[float]] = {name: [] for name in variants}
    for round_ in range(runs):
        for data in files:
            names = list(variants) if round_ % 2 == 0 else list(reversed(variants))
            for name in names:
                started = time.perf_counter()
                variants[name](data)
                times[name].append((time.perf_counter() - started) * 1000)
    return times


def report(results: dict[str, list[dict[str, float]]], norm: dict[str, list[float]]) -> None:
    """Print the tables: medians, the minimum wall, and ratios to the naive baseline."""
    medians = {
        name: {key: statistics.median(r[key] for r in runs) for key in runs[0]}
        for name, runs in results.items()
    }
    base = medians["naive"]
    print(f"{IMAGES} photos, {LATENCY * 1000:.0f} ms per request, Python {sys.version.split()[0]}")
    header = ("variant", "wall s", "min s", "cpu s", "peak MiB", "added MiB", "wall÷", "peak÷")
    print("".join(f"{h:>11}" for h in header), "  added÷")
    for name, med in medians.items():
        cells = [
            name,
            f"{med['wall']:.2f}",
            f"{min(r['wall'] for r in results[name]):.2f}",
            f"{med['cpu']:.2f}",
            f"{med['peak_mib']:.1f}",
            f"{med['added_mib']:.1f}",
            f"{med['wall'] / base['wall']:.2f}",
            f"{med['peak_mib'] / base['peak_mib']:.2f}",
            f"{med['added_mib'] / base['added_mib']:.2f}",
        ]
        print("".join(f"{c:>11}" for c in cells))
    print("\nper-image normalisation, 12 MP JPEG → 1024×1365, ms (median, min, ÷ no draft)")
    full = statistics.median(norm["no draft"])
    for name, values in norm.items():
        median = statistics.median(values)
        print(f"{name:>11}{median:>11.1f}{min(values):>11.1f}{median / full:>11.2f}")


def main() -> None:
    """Generate the photos, serve them with latency, run the variants, print the figures."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="fresh-process runs per variant")
    parser.add_argument("--norm-runs", type=int, default=2, help="passes over the 20 photos")
    parser.add_argument(
        "--cache", type=Path, default=PROJECT_ROOT / ".data" / "bench-zip", help="photo folder"
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help="our pool size (default: lib.intake.dataset.WORKERS)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_variant(*args.child)))
        return
    from dev.blob_emulator import BlobEmulator
    from lib.intake.dataset import WORKERS

    workers = args.workers or WORKERS
    files = photos(args.cache)
    sizes = [len(f) / 1e6 for f in files]
    print(f"photos: {min(sizes):.2f}–{max(sizes):.2f} MB, {sum(sizes):.1f} MB in total")
    results: dict[str, list[dict[str, float]]] = {"naive": [], "ours": []}
    with BlobEmulator() as emulator:
        for index, data in enumerate(files):
            emulator.add_object(f"{PREFIX}/{index:02d}.jpg", data, content_type="image/jpeg")
        emulator.latency = LATENCY
        for round_ in range(args.runs):
            order = list(results) if round_ % 2 == 0 else list(reversed(results))
            for variant in order:
                results[variant].append(sample(variant, emulator.url, emulator.token, workers))
                check_zip(emulator.objects()[ZIP_KEY])
    report(results, normalisation_ms(files, args.norm_runs))


if __name__ == "__main__":
    main()
