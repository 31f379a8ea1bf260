"""The training ZIP: normalised photos, the archive format, and the streamed pipeline."""

import io
import struct
import zipfile

import pytest
from PIL import Image, ImageChops

from lib.adapters.storage.local import LocalStorage
from lib.intake.dataset import DatasetError, SourceImage, StoredZip, _shrunk, normalise, zip_chunks
from lib.intake.images import decode
from tests import photos
from tests.helpers import open_files_under

GOOD_PHOTOS = [
    photos.rotated_jpeg_with_gps,
    photos.heic,
    photos.png_with_alpha,
    photos.webp,
    photos.phone_size_jpeg,
    photos.mpo,
]


@pytest.mark.parametrize("make", GOOD_PHOTOS)
def test_every_kind_of_photo_comes_out_upright_clean_and_small(make):
    out = normalise(make(), "photo")

    with Image.open(io.BytesIO(out)) as image:
        assert image.format == "JPEG" and image.mode == "RGB"
        assert min(image.size) <= 1024
        assert dict(image.getexif()) == {}
    assert photos.is_upright(out)
    assert photos.jpeg_markers(out) == ["APP0", "SOS"]  # no EXIF/XMP (APP1), ICC (APP2), COM


def test_a_twelve_megapixel_photo_is_brought_to_a_short_side_of_1024():
    with Image.open(io.BytesIO(normalise(photos.phone_size_jpeg(), "big.jpg"))) as image:
        assert image.size == (1365, 1024)


def test_the_gps_comment_does_not_leak_into_the_output():
    out = normalise(photos.rotated_jpeg_with_gps(), "gps.jpg")

    assert photos.SECRET_COMMENT not in out
    assert b"52,31.2N" not in out


def test_transparent_areas_become_white():
    with Image.open(io.BytesIO(normalise(photos.png_with_alpha(), "alpha.png"))) as image:
        x, y = photos.ALPHA_HOLE
        hole = image.getpixel((int(image.width * x), int(image.height * y)))

    assert min(hole) > 240


def test_draft_and_full_decoding_give_the_same_picture_size():
    data = photos.phone_size_jpeg()
    sizes = [Image.open(io.BytesIO(normalise(data, "x", draft=d))).size for d in (True, False)]

    assert sizes[0] == sizes[1] == (1365, 1024)


def test_resizing_in_bands_gives_the_picture_a_whole_resize_gives():
    frame, _ = decode(io.BytesIO(photos.phone_size_jpeg()), "big.jpg", short_side=1024)
    whole = frame.resize((1365, 1024), Image.Resampling.LANCZOS)

    banded = _shrunk(frame, (1365, 1024))

    # Pillow picks the fixed-point precision of its weights per resize: a band may round a
    # value a few levels differently.
    assert max(high for _, high in ImageChops.difference(whole, banded).getextrema()) <= 3


def test_a_stored_zip_has_sizes_and_crc_in_its_local_headers():
    archive = StoredZip()
    data = archive.entry("00.jpg", b"first") + archive.entry("01.jpg", b"second") + archive.close()

    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        assert reader.testzip() is None
        assert [(i.filename, i.compress_type, i.flag_bits) for i in reader.infolist()] == [
            ("00.jpg", zipfile.ZIP_STORED, 0),
            ("01.jpg", zipfile.ZIP_STORED, 0),
        ]
        assert reader.read("01.jpg") == b"second"
    crc, compressed, size = struct.unpack("<3I", data[14:26])
    assert (compressed, size) == (5, 5) and crc != 0


@pytest.fixture
def storage(tmp_path):
    return LocalStorage(tmp_path, "http://127.0.0.1:1/_local_storage")


def stored(storage, files):
    sources = []
    for index, (name, data) in enumerate(files):
        storage.put(f"u/{index}", data, "application/octet-stream")
        sources.append(SourceImage(name, f"u/{index}"))
    return sources


def test_the_zip_holds_flat_names_in_order_and_nothing_else(storage):
    files = [(f"p{i}.jpg", photos.rotated_jpeg_with_gps(seed=i)) for i in range(5)]

    data = b"".join(zip_chunks(stored(storage, files), storage, min_face_share=0.15, workers=2))

    with zipfile.ZipFile(io.BytesIO(data)) as reader:
        assert reader.namelist() == ["00.jpg", "01.jpg", "02.jpg", "03.jpg", "04.jpg"]
        assert all(photos.is_upright(reader.read(name)) for name in reader.namelist())
        assert reader.read("03.jpg") == normalise(files[3][1], "p3")


def test_identical_photos_go_into_the_zip_once(storage):
    same = photos.webp()
    files = [("a.webp", same), ("b.jpg", photos.rotated_jpeg_with_gps()), ("c.webp", same)]

    data = b"".join(zip_chunks(stored(storage, files), storage, min_face_share=0.15))

    assert zipfile.ZipFile(io.BytesIO(data)).namelist() == ["00.jpg", "01.jpg"]


def test_every_unusable_photo_is_named_after_all_were_tried(storage):
    files = [
        ("notes.jpg", photos.TEXT_NAMED_JPG),
        ("ok.jpg", photos.rotated_jpeg_with_gps()),
        ("cut.jpg", photos.truncated_jpeg()),
    ]

    with pytest.raises(DatasetError, match=r"notes\.jpg \(not an image.*cut\.jpg \(damaged"):
        b"".join(zip_chunks(stored(storage, files), storage, min_face_share=0.15))


def test_a_photo_missing_from_storage_is_named(storage):
    sources = [SourceImage("gone.jpg", "u/never-stored")]

    with pytest.raises(DatasetError, match=r"gone\.jpg \(it could not be read from storage\)"):
        b"".join(zip_chunks(sources, storage, min_face_share=0.15))


def test_the_face_check_runs_again_on_every_photo_of_the_zip(storage):
    files = [
        ("me.jpg", photos.one_face()),
        ("cat.jpg", photos.cat()),
        ("two.jpg", photos.two_faces()),
    ]

    with pytest.raises(DatasetError, match=r"^cat\.jpg \(no face found\); two\.jpg \(2 faces\)$"):
        b"".join(zip_chunks(stored(storage, files), storage, min_face_share=0.15))


def test_downloaded_photos_are_closed_even_while_a_failure_is_still_being_handled(storage, spool):
    files = [(f"p{i}.jpg", photos.rotated_jpeg_with_gps(seed=i)) for i in range(4)]
    sources = stored(storage, [*files, ("cut.jpg", photos.truncated_jpeg())])
    folder = SourceImage("odd.jpg", "u")  # storage fails in a way nobody planned for

    with pytest.raises(DatasetError, match=r"cut\.jpg") as refused:
        b"".join(zip_chunks(sources, storage, min_face_share=None))
    with pytest.raises(IsADirectoryError) as crashed:
        b"".join(zip_chunks([*sources, folder], storage, min_face_share=None))
    stopped = zip_chunks(sources, storage, min_face_share=None, workers=2)
    next(stopped)
    stopped.close()

    assert refused.value and crashed.value  # their tracebacks are alive, and hold no file open
    assert open_files_under(spool) == [] and list(spool.iterdir()) == []
