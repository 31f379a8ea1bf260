"""The training ZIP: clean, upright JPEGs with flat names, streamed to storage as it is built.

Each selfie is fetched into a temporary file and normalised in a small thread pool (Pillow
releases the GIL while it decodes, resizes and encodes), and the archive is yielded entry by
entry, so memory holds at most two decoded photos rather than every photo plus the whole ZIP.
"""

import hashlib
import io
import logging
import struct
import tempfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from functools import partial
from threading import BoundedSemaphore, Lock
from typing import IO, TYPE_CHECKING, Self

from lib.errors import ApiError
from lib.intake import face_check
from lib.intake.images import ImageRefused, decode, orientation, turned

if TYPE_CHECKING:
    from PIL import Image

    from lib.adapters.storage.base import Storage

logger = logging.getLogger(__name__)

MAX_SHORT_SIDE = 1024
JPEG_QUALITY = 92
# Threads fetch photos (mostly waiting on the network) into temporary files, and at most
# DECODERS of them hold decoded pixels at once (see _Stages), so downloads overlap the decoding
# on two cores while the photos waiting for it cost no memory (bench.zip).
WORKERS = 3
DECODERS = 2
BAND_ROWS = 64  # output rows resized at once: ~0.5 MB of first pass instead of 8 MB


@dataclass(frozen=True)
class _Stages:
    """Which photos may hold decoded pixels, and when (bench.zip measured each bound).

    At most DECODERS photos are between the start of their decoding and their finished JPEG
    (`photos`). Of those, one decodes (`decoder`) while another is resized (`resizer`): a
    two-step pipeline that keeps two cores busy but never holds two draft frames and two
    resize outputs at once (a 12 MP photo: a 12 MB frame, then 6 MB of output beside it)."""

    photos: AbstractContextManager[object]
    decoder: AbstractContextManager[object]
    resizer: AbstractContextManager[object]

    @classmethod
    def shared(cls, workers: int) -> Self:
        """The bounds for one ZIP's worker threads."""
        return cls(BoundedSemaphore(min(DECODERS, workers)), Lock(), Lock())


_ALONE = _Stages(nullcontext(), nullcontext(), nullcontext())  # one photo, on its own


@dataclass(frozen=True)
class SourceImage:
    name: str  # what the user called it, for error messages
    key: str  # its storage key


class DatasetError(Exception):
    """Some photos could not go into the ZIP; names each one and why."""

    def __init__(self, refused: list[ImageRefused]) -> None:
        super().__init__("; ".join(str(refusal) for refusal in refused))
        self.refused = refused


def normalise(data: bytes, name: str, *, draft: bool = True) -> bytes:
    """Upright RGB JPEG, short side at most 1024 px, no EXIF/GPS/XMP/ICC/comment. ImageRefused
    when the photo fails the upload checks. `draft=False` decodes JPEGs at full size (bench)."""
    return _jpeg(_normalised(io.BytesIO(data), name, draft=draft))


def _normalised(
    photo: IO[bytes], name: str, *, stages: _Stages = _ALONE, draft: bool = True
) -> "Image.Image":
    """The picture the ZIP gets, before encoding: upright, RGB, sRGB, at most 1024 px."""
    with stages.decoder:
        image, _ = decode(photo, name, short_side=MAX_SHORT_SIDE if draft else None)
    with stages.resizer:
        turn, icc = orientation(image), image.info.get("icc_profile")
        flat = _flatten(image)
        del image  # the decoded photo is freed as soon as its smaller copy exists
        scale = MAX_SHORT_SIDE / min(flat.size)
        if scale < 1:
            flat = _shrunk(flat, (round(flat.width * scale), round(flat.height * scale)))
        # Rotating after the resize turns a small picture instead of a 12 MP one.
        return _in_srgb(turned(flat, turn), icc)


def _shrunk(picture: "Image.Image", size: tuple[int, int]) -> "Image.Image":
    """LANCZOS-resized a band of rows at a time: Pillow resamples in two passes, and a whole
    picture's first pass (8 MB for a 12 MP photo's draft frame) would be held beside the frame
    and the result. Each band's source box starts where the one before ended, so every row is
    filtered from the same source rows (Pillow's rounding may differ by a few levels)."""
    from PIL import Image

    out = Image.new(picture.mode, size)
    rows_per_row = picture.height / size[1]
    for top in range(0, size[1], BAND_ROWS):
        bottom = min(top + BAND_ROWS, size[1])
        box = (0, top * rows_per_row, picture.width, bottom * rows_per_row)
        band = picture.resize((size[0], bottom - top), Image.Resampling.LANCZOS, box=box)
        out.paste(band, (0, top))
    return out


def _jpeg(picture: "Image.Image") -> bytes:
    picture.info = {}  # Pillow would otherwise copy a JPEG comment (often GPS) into the output
    out = io.BytesIO()
    picture.save(out, format="JPEG", quality=JPEG_QUALITY)
    return out.getvalue()


def _in_srgb(picture: "Image.Image", icc: bytes | None) -> "Image.Image":
    """Colours moved into sRGB when the photo has another profile (iPhones shoot Display P3):
    the ZIP's JPEGs carry no profile, so trainers read them as sRGB."""
    from PIL import ImageCms

    if not icc:
        return picture
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        srgb = ImageCms.createProfile("sRGB")
        return ImageCms.profileToProfile(picture, source, srgb, outputMode="RGB")
    except (ImageCms.PyCMSError, OSError, ValueError):
        logger.info("colour profile unusable, colours kept as they are")
        return picture


def _flatten(image: "Image.Image") -> "Image.Image":
    """RGB; transparent areas become white rather than whatever colour they hide."""
    from PIL import Image

    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB") if image.mode != "RGB" else image


def zip_chunks(
    images: Sequence[SourceImage],
    storage: "Storage",
    *,
    min_face_share: float | None,
    workers: int = WORKERS,
) -> Iterator[bytes]:
    """The training ZIP as a stream: 00.jpg, 01.jpg … in order, identical photos once.
    Raises DatasetError, after every photo was tried, when any of them is unusable; each photo
    passes the face check again (None: no face check, for the pipeline's own tests and bench)."""
    archive = StoredZip()
    refused: list[ImageRefused] = []
    seen: set[str] = set()
    stages = _Stages.shared(workers)
    prepare = partial(_prepare, storage=storage, min_face_share=min_face_share, stages=stages)
    for source, result in _in_order(images, prepare, workers):
        if isinstance(result, ImageRefused):
            refused.append(result)
            continue
        digest, jpeg = result
        if digest in seen:
            logger.info("duplicate photo skipped name=%s", source.name)
            continue
        seen.add(digest)
        if not refused:  # once one photo failed, the rest are only checked, not written
            yield archive.entry(f"{len(seen) - 1:02d}.jpg", jpeg)
    if refused:
        raise DatasetError(refused)
    yield archive.close()


def _prepare(
    source: SourceImage,
    *,
    storage: "Storage",
    min_face_share: float | None,
    stages: _Stages,
) -> tuple[str, bytes] | ImageRefused:
    """Fetch, normalise and face-check one photo: (sha256 of the original, JPEG) or why it is
    refused."""
    # The photo waits and is decoded from a file, not memory. TemporaryFile has no name in the
    # folder (or loses it at once), so closing it, or the process ending, frees the space.
    with tempfile.TemporaryFile() as photo:
        try:
            digest = _fetch(storage, source.key, photo)
        except ApiError as error:
            logger.warning("photo unreadable key=%s code=%s", source.key, error.code)
            return ImageRefused(source.name, "it could not be read from storage")
        # Released only after _training_jpeg returned, so its pixels are freed by then.
        with stages.photos:
            made = _training_jpeg(photo, source.name, min_face_share=min_face_share, stages=stages)
        return made if isinstance(made, ImageRefused) else (digest, made)


def _training_jpeg(
    photo: IO[bytes], name: str, *, min_face_share: float | None, stages: _Stages
) -> bytes | ImageRefused:
    """The photo as the ZIP's JPEG, or why it cannot be one (the checks, then the face check)."""
    try:
        picture = _normalised(photo, name, stages=stages)
    except ImageRefused as refusal:
        return refusal
    if min_face_share is not None:
        verdict = face_check.check(picture, min_face_share)
        if not verdict.usable:
            return ImageRefused(name, str(verdict.reason))
    return _jpeg(picture)


def _fetch(storage: "Storage", key: str, into: IO[bytes]) -> str:
    """Copy a stored object into a file, rewound; its sha256, taken as it streams."""
    digest = hashlib.sha256()
    for chunk in storage.stream(key):
        digest.update(chunk)
        into.write(chunk)
    into.seek(0)
    return digest.hexdigest()


def _in_order[T, R](
    items: Iterable[T], work: Callable[[T], R], workers: int
) -> Iterator[tuple[T, R]]:
    """Results of `work` in input order, at most 2 × workers submitted ahead of the reader."""
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dataset")
    pending: deque[tuple[T, Future[R]]] = deque()
    try:
        for item in items:
            if len(pending) == 2 * workers:
                done, future = pending.popleft()
                yield done, future.result()
            pending.append((item, pool.submit(work, item)))
        while pending:
            done, future = pending.popleft()
            yield done, future.result()
    finally:  # also when the reader stops early: drop what has not started
        pool.shutdown(wait=True, cancel_futures=True)


class StoredZip:
    """A ZIP written front to back with no compression.

    Each entry's CRC and sizes go into its local header (the data is in hand before it is
    written), so streaming readers accept it too; stdlib zipfile writing to an unseekable stream
    would use data descriptors, which some readers refuse for stored entries. No ZIP64: a
    training set is at most 50 photos of well under 4 GB.
    """

    # 1980-01-01 00:00 in MS-DOS format: fixed, so the same photos give the same archive.
    _DOS_TIME, _DOS_DATE = 0, (1 << 5) | 1

    def __init__(self) -> None:
        self._offset = 0
        self._directory: list[bytes] = []

    def entry(self, name: str, data: bytes) -> bytes:
        """The local header and data of one file."""
        encoded = name.encode("ascii")
        crc = zlib.crc32(data)
        fields = (20, 0, 0, self._DOS_TIME, self._DOS_DATE, crc, len(data), len(data))
        header = struct.pack("<I5H3I2H", 0x04034B50, *fields, len(encoded), 0) + encoded
        self._directory.append(
            struct.pack(
                "<I6H3I5H2I", 0x02014B50, 20, *fields, len(encoded), 0, 0, 0, 0, 0, self._offset
            )
            + encoded
        )
        self._offset += len(header) + len(data)
        return header + data

    def close(self) -> bytes:
        """The central directory and its end record."""
        directory, count = b"".join(self._directory), len(self._directory)
        sizes = (count, count, len(directory), self._offset)
        return directory + struct.pack("<I4H2IH", 0x06054B50, 0, 0, *sizes, 0)
