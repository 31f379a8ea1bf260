"""The training ZIP: clean, upright JPEGs with flat names, streamed to storage as it is built.

Each selfie is fetched and normalised in a small thread pool (Pillow releases the GIL while it
decodes, resizes and encodes), and the archive is yielded entry by entry, so memory holds a few
photos at a time rather than every photo plus the whole ZIP.
"""

import hashlib
import io
import logging
import struct
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from lib import face_check
from lib.errors import ApiError
from lib.images import ImageRefused, decode, orientation, turned

if TYPE_CHECKING:
    from concurrent.futures import Future
    from threading import Semaphore

    from PIL import Image

    from lib.storage import Storage

logger = logging.getLogger(__name__)

MAX_SHORT_SIDE = 1024
JPEG_QUALITY = 92
# Threads fetch photos (mostly waiting on the network) but at most DECODERS of them decode at
# once: a 12 MP JPEG needs ~25 MB while it is decoded and resized, a fetched one only its bytes,
# so downloads overlap the decoding of two cores without a third decode's memory (bench.zip).
WORKERS = 3
DECODERS = 2


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
    return _jpeg(_normalised(data, name, draft=draft))


def _normalised(data: bytes, name: str, *, draft: bool = True) -> "Image.Image":
    """The picture the ZIP gets, before encoding: upright, RGB, sRGB, at most 1024 px."""
    from PIL import Image

    image, _ = decode(data, name, short_side=MAX_SHORT_SIDE if draft else None)
    turn, icc = orientation(image), image.info.get("icc_profile")
    flat = _flatten(image)
    del image  # the decoded photo is freed as soon as its smaller copy exists
    scale = MAX_SHORT_SIDE / min(flat.size)
    if scale < 1:
        size = (round(flat.width * scale), round(flat.height * scale))
        flat = flat.resize(size, Image.Resampling.LANCZOS)
    # Rotating after the resize turns a small picture instead of a 12 MP one.
    return _in_srgb(turned(flat, turn), icc)


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
    from threading import BoundedSemaphore  # not on the progress function's path

    decoding = BoundedSemaphore(min(DECODERS, workers))
    prepare = partial(_prepare, storage=storage, min_face_share=min_face_share, decoding=decoding)
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
    decoding: "Semaphore",
) -> tuple[str, bytes] | ImageRefused:
    """Fetch, normalise and face-check one photo: (sha256 of the original, JPEG) or why it is
    refused."""
    try:
        digest, data = _fetch(storage, source.key)
    except ApiError as error:
        logger.warning("photo unreadable key=%s code=%s", source.key, error.code)
        return ImageRefused(source.name, "it could not be read from storage")
    with decoding:
        try:
            picture = _normalised(data, source.name)
        except ImageRefused as refusal:
            return refusal
        del data
        if min_face_share is not None:
            verdict = face_check.check(picture, min_face_share)
            if not verdict.usable:
                return ImageRefused(source.name, str(verdict.reason))
        return digest, _jpeg(picture)


def _fetch(storage: "Storage", key: str) -> tuple[str, bytes]:
    """(sha256, bytes) of a stored object, read once: no list of chunks joined into a copy."""
    digest, buffer = hashlib.sha256(), io.BytesIO()
    for chunk in storage.stream(key):
        digest.update(chunk)
        buffer.write(chunk)
    return digest.hexdigest(), buffer.getvalue()  # hands over BytesIO's own bytes, no copy


def _in_order[T, R](
    items: Iterable[T], work: Callable[[T], R], workers: int
) -> Iterator[tuple[T, R]]:
    """Results of `work` in input order, at most 2 × workers submitted ahead of the reader."""
    from concurrent.futures import ThreadPoolExecutor  # not on the progress function's path

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
