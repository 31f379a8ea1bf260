"""Real photo files for intake tests, made with Pillow and pillow-heif, and ways to inspect them.

Every good photo is an upright portrait with a red marker at its top-left corner and a blue one
at its top-right corner, so a wrong or missing EXIF rotation shows in the pixels. The face
check's own cases (two faces, a small face, a cat, a landscape) are built from scikit-image's
sample photos.
"""

import io
import os
import struct
import subprocess
import sys
import tarfile
import zlib
from functools import cache
from pathlib import Path

import pytest
from PIL import ExifTags, Image, ImageCms, ImageDraw
from pillow_heif import register_heif_opener

from dev.samples import astronaut, selfie

register_heif_opener()

RED, BLUE = (230, 20, 20), (20, 20, 230)
SECRET_COMMENT = b"GPS 52.5201N 13.4157E secret"
XMP = (
    b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-'
    b'syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude='
    b'"52,31.2N"/></rdf:RDF></x:xmpmeta>'
)


def upright(size: tuple[int, int] = (900, 1200), seed: int = 0) -> Image.Image:
    """An upright portrait (one face, big enough for the face check) on a textured background,
    with the corner markers above it (textured: flat colour is unrealistic)."""
    noise = Image.effect_noise(size, 40).point(lambda v: v // 2 + seed % 64)
    picture = Image.merge("RGB", (noise, noise.rotate(90, expand=False), noise)).convert("RGB")
    portrait = min(size) * 9 // 10
    picture.paste(
        astronaut().resize((portrait, portrait)),
        ((size[0] - portrait) // 2, size[1] - portrait - min(size) // 20),
    )
    side = min(size) // 6
    draw = ImageDraw.Draw(picture)
    draw.rectangle((0, 0, side, side), fill=RED)
    draw.rectangle((size[0] - side, 0, size[0], side), fill=BLUE)
    return picture


def encode(image: Image.Image, image_format: str, **options) -> bytes:
    """The image saved in a format."""
    out = io.BytesIO()
    image.save(out, format=image_format, **options)
    return out.getvalue()


def phone_exif(orientation: int = 6) -> Image.Exif:
    """EXIF as a phone writes it: orientation, make/model and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "Phone"
    exif[ExifTags.Base.Model] = "Phone 15"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 31.0, 12.34)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (13.0, 24.0, 56.78)
    return exif


def rotated_jpeg_with_gps(seed: int = 0, size: tuple[int, int] = (900, 1200)) -> bytes:
    """Stored turned 90° counter-clockwise with Orientation 6; GPS in EXIF, XMP, comment; ICC."""
    stored = upright(size, seed).transpose(Image.Transpose.ROTATE_90)
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    return encode(
        stored,
        "JPEG",
        quality=90,
        exif=phone_exif(6),
        xmp=XMP,
        comment=SECRET_COMMENT,
        icc_profile=icc,
    )


def heic(seed: int = 1) -> bytes:
    """A HEIC stored turned, with Orientation 6 and GPS (pillow-heif writes it as a rotation)."""
    stored = upright(seed=seed).transpose(Image.Transpose.ROTATE_90)
    return encode(stored, "HEIF", quality=70, exif=phone_exif(6).tobytes())


def png_with_alpha(seed: int = 2) -> bytes:
    """An RGBA PNG with a fully transparent patch (hiding black pixels) below the face, around
    the point ALPHA_HOLE (fractions of the width and height)."""
    picture = upright(seed=seed).convert("RGBA")
    width, height = picture.size
    x, y = ALPHA_HOLE
    box = (width * (x - 0.15), height * (y - 0.08), width * (x + 0.15), height * (y + 0.08))
    ImageDraw.Draw(picture).rectangle(box, fill=(0, 0, 0, 0))
    return encode(picture, "PNG")


ALPHA_HOLE = (0.5, 0.85)


def webp(seed: int = 3) -> bytes:
    """A still WebP."""
    return encode(upright(seed=seed), "WEBP", quality=85)


def phone_size_jpeg(seed: int = 4) -> bytes:
    """A 4000×3000 (12 MP) JPEG, as a phone's main camera takes it."""
    return encode(upright((4000, 3000), seed), "JPEG", quality=90)


def mpo(seed: int = 5) -> bytes:
    """A JPEG with a second (preview) picture in MPF, as many Android phones write."""
    picture = upright(seed=seed)
    preview = picture.resize((300, 400))
    return encode(picture, "MPO", save_all=True, append_images=[preview], quality=90)


def truncated_jpeg() -> bytes:
    """The first 60% of a real JPEG."""
    data = encode(upright(seed=6), "JPEG", quality=90)
    return data[: len(data) * 6 // 10]


def tiny_jpeg() -> bytes:
    """A 100×100 picture."""
    return encode(upright((100, 100), 7), "JPEG")


def animated(image_format: str) -> bytes:
    """A three-frame animated GIF or WebP at a size that would otherwise pass."""
    frames = [upright((600, 600), seed) for seed in (8, 9, 10)]
    return encode(frames[0], image_format, save_all=True, append_images=frames[1:], duration=100)


def still_gif() -> bytes:
    """A single-frame GIF."""
    return encode(upright((600, 600), 11), "GIF")


def bomb_png(width: int = 20_000, height: int = 10_000) -> bytes:
    """A tiny PNG whose header claims 200 megapixels."""
    data = encode(Image.new("L", (8, 8)), "PNG")
    ihdr = struct.pack(">2I5B", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    patched = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return data[:8] + patched + data[8 + len(patched) :]


TEXT_NAMED_JPG = b"This is a text file that someone named selfie.jpg\n" * 20


def jpeg_markers(data: bytes) -> list[str]:
    """The JPEG segments up to the image data: APP0, APP1 (EXIF/XMP), APP2 (ICC), COM…"""
    names, position = [], 2
    while position < len(data):
        marker = data[position + 1]
        if marker == 0xDA:
            return [*names, "SOS"]
        length = struct.unpack(">H", data[position + 2 : position + 4])[0]
        if 0xE0 <= marker <= 0xEF:
            names.append(f"APP{marker - 0xE0}")
        elif marker == 0xFE:
            names.append("COM")
        position += 2 + length
    return names


def is_upright(data: bytes) -> bool:
    """Red marker at the top-left, blue at the top-right of the decoded picture."""
    with Image.open(io.BytesIO(data)) as image:
        picture = image.convert("RGB")
    width, height = picture.size
    inset = min(width, height) // 20
    left, right = picture.getpixel((inset, inset)), picture.getpixel((width - inset, inset))
    return _near(left, RED) and _near(right, BLUE)


def _near(pixel: tuple[int, ...], colour: tuple[int, int, int]) -> bool:
    return all(abs(a - b) < 60 for a, b in zip(pixel, colour, strict=False))


# --- the face check's cases, from scikit-image's sample photos ---------------------------------


def sample_photo(name: str, scale: float = 1.0) -> Image.Image:
    """A scikit-image sample photo (shipped in its wheel), scaled."""
    from skimage import data

    picture = Image.fromarray(getattr(data, name)()).convert("RGB")
    size = (round(picture.width * scale), round(picture.height * scale))
    return picture.resize(size, Image.Resampling.LANCZOS)


def one_face() -> bytes:
    """The astronaut's head-and-shoulders portrait: one face, about a fifth of the picture."""
    return encode(astronaut(), "JPEG", quality=90)


def two_faces() -> bytes:
    """Two astronauts side by side (the second mirrored): two faces of the same size."""
    picture = Image.new("RGB", (1024, 512))
    picture.paste(astronaut(), (0, 0))
    picture.paste(astronaut().transpose(Image.Transpose.FLIP_LEFT_RIGHT), (512, 0))
    return encode(picture, "JPEG", quality=90)


def small_face() -> bytes:
    """The astronaut shrunk into a corner of a big grey canvas: a face of about 6 %."""
    picture = Image.new("RGB", (1024, 1024), (120, 140, 160))
    picture.paste(astronaut().resize((410, 410)), (300, 300))
    return encode(picture, "JPEG", quality=90)


def sideways_face() -> bytes:
    """A portrait stored turned 90° counter-clockwise with EXIF Orientation 6, as phones do."""
    stored = Image.open(io.BytesIO(selfie(3))).transpose(Image.Transpose.ROTATE_90)
    return encode(stored, "JPEG", quality=90, exif=phone_exif(6))


def upside_down_face(orientation: int | None = 3) -> bytes:
    """A portrait stored upside down, with EXIF Orientation 3 (or none: then it is seen upside
    down, and BlazeFace finds no face in it)."""
    stored = Image.open(io.BytesIO(selfie(4))).transpose(Image.Transpose.ROTATE_180)
    exif = phone_exif(orientation) if orientation else Image.Exif()
    return encode(stored, "JPEG", quality=90, exif=exif)


def cat() -> bytes:
    """Chelsea the cat, scaled to 902×600: no human face."""
    return encode(sample_photo("chelsea", 2), "JPEG", quality=90)


def landscape() -> bytes:
    """A cup of coffee on a table, scaled to 900×600: no face at all."""
    return encode(sample_photo("coffee", 1.5), "JPEG", quality=90)


# --- real photos of other people, from a package on PyPI ---------------------------------------

# The face-recognition 1.3.0 source package's tests/test_images: three photos of Barack Obama
# (obama.jpg, obama2.jpg, obama3.jpg) and one of Joe Biden (biden.jpg). Fetched with pip into a
# cache outside the repository; never committed.
PACKAGE = "face-recognition==1.3.0"
PACKAGE_CACHE = Path(
    os.environ.get("SSELFIE_PHOTO_CACHE", Path.home() / ".cache" / "sselfie" / "photos")
)


def package_photo(name: str) -> bytes:
    """A real face photo from the package (the test is skipped, saying why, without PyPI)."""
    with tarfile.open(_package_archive()) as archive:
        member = archive.extractfile(f"face_recognition-1.3.0/tests/test_images/{name}")
        assert member is not None
        return member.read()


@cache
def _package_archive() -> Path:
    found = sorted(PACKAGE_CACHE.glob("face_recognition-1.3.0.tar.gz"))
    if found:
        return found[0]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps"]
    command += ["--no-binary", ":all:", PACKAGE, "-d", str(PACKAGE_CACHE)]
    try:
        subprocess.run(command, check=True, capture_output=True, timeout=300)
    except (subprocess.SubprocessError, OSError) as error:
        pytest.skip(f"the real face photos of {PACKAGE} could not be downloaded: {error}")
    return PACKAGE_CACHE / "face_recognition-1.3.0.tar.gz"


def variant(data: bytes, change: str) -> bytes:
    """A photo as a phone might spoil it, re-encoded as a JPEG: `blurred` (a Gaussian blur of
    radius 8 at 1024 px), `dark` (15 % of the light) or `overexposed` (1.8× the light)."""
    from PIL import ImageEnhance, ImageFilter

    picture = Image.open(io.BytesIO(data)).convert("RGB")
    if change == "blurred":
        scale = 1024 / min(picture.size)
        picture = picture.resize((round(picture.width * scale), round(picture.height * scale)))
        picture = picture.filter(ImageFilter.GaussianBlur(8))
    elif change == "dark":
        picture = ImageEnhance.Brightness(picture).enhance(0.15)
    else:
        picture = ImageEnhance.Brightness(picture).enhance(1.8)
    return encode(picture, "JPEG", quality=90)
