"""Every storage backend keeps the same promises (local folder, Blob through the SDK, S3)."""

import hashlib
import sys
import uuid

import httpx
import pytest

from lib.adapters.clients import get_storage
from lib.adapters.storage.local import LocalStorage
from lib.errors import ConfigError, NotFound
from lib.settings import get_settings, load_settings
from tests.helpers import open_files_under


@pytest.fixture(params=["local", "blob", "s3"])
def storage(request, stack, tmp_path):
    if request.param == "local":
        return LocalStorage(tmp_path, "http://127.0.0.1:1/_local_storage")
    if request.param == "s3":
        return get_storage(load_settings(request.getfixturevalue("s3_env")))  # moto's server
    return get_storage(get_settings())  # the suite's Blob emulator


def test_put_then_read_returns_the_same_bytes(storage):
    stored = storage.put("t/a.bin", b"hello", "application/octet-stream")

    assert storage.read("t/a.bin") == b"hello"
    assert stored.size == 5 and stored.key == "t/a.bin"


def test_a_stream_larger_than_one_part_is_stored_whole(storage):
    parts = [bytes([i]) * (3 * 1024 * 1024) for i in range(4)]  # 12 MiB in 4 pieces

    stored = storage.put_stream("t/big.zip", iter(parts), "application/zip")

    expected = b"".join(parts)
    assert stored.size == len(expected)
    assert stored.sha256 == hashlib.sha256(expected).hexdigest()
    assert hashlib.sha256(b"".join(storage.stream("t/big.zip"))).hexdigest() == stored.sha256


def test_a_stream_that_breaks_leaves_no_temporary_file_open(storage, spool):
    def breaking():
        yield b"x" * 1024
        raise RuntimeError("the ZIP could not be built")

    with pytest.raises(RuntimeError, match="could not be built") as broken:
        storage.put_stream("t/broken.zip", breaking(), "application/zip")

    assert broken.value  # its traceback is alive, and holds no file open
    assert open_files_under(spool) == [] and list(spool.iterdir()) == []


def test_a_missing_object_is_not_found(storage):
    with pytest.raises(NotFound, match="does not exist"):
        storage.read("t/missing.bin")


def test_delete_removes_and_ignores_missing_keys(storage):
    storage.put("t/gone.bin", b"x", "application/octet-stream")

    storage.delete(["t/gone.bin", "t/never-there.bin"])

    with pytest.raises(NotFound):
        storage.read("t/gone.bin")


def test_a_local_key_cannot_escape_its_folder(tmp_path):
    storage = LocalStorage(tmp_path / "root", "http://x")

    with pytest.raises(ValueError, match="escapes"):
        storage.put("../outside.bin", b"x", "application/octet-stream")


def test_an_empty_stream_is_stored_as_an_empty_object(storage):
    stored = storage.put_stream("t/empty.bin", iter([]), "application/octet-stream")

    assert stored.size == 0
    assert stored.sha256 == hashlib.sha256(b"").hexdigest()
    assert storage.read("t/empty.bin") == b""


def test_an_s3_object_is_fetchable_at_its_presigned_url(s3_env):
    storage = get_storage(load_settings(s3_env))

    stored = storage.put("t/zip.zip", b"PK\x05\x06", "application/zip")

    assert "X-Amz-Signature=" in stored.url
    assert httpx.get(stored.url).content == b"PK\x05\x06"


def test_an_s3_public_base_url_gives_plain_object_urls(s3_env):
    settings = load_settings({**s3_env, "S3_PUBLIC_BASE_URL": "https://cdn.example/"})

    stored = get_storage(settings).put("users/a b.jpg", b"x", "image/jpeg")

    assert stored.url == "https://cdn.example/users/a%20b.jpg"


def test_s3_without_credentials_is_reported_by_name(s3_env):
    settings = load_settings({**s3_env, "AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": ""})
    storage = get_storage(settings)

    with pytest.raises(ConfigError, match="AWS_ACCESS_KEY_ID"):
        storage.put("t/x.bin", b"x", "application/octet-stream")


def test_s3_without_boto3_installed_says_to_add_it(s3_env, monkeypatch):
    monkeypatch.setitem(sys.modules, "boto3", None)  # as in a deployment built without it
    storage = get_storage(load_settings(s3_env))

    with pytest.raises(ConfigError, match=r"add boto3 to requirements\.txt"):
        storage.put("t/x.bin", b"x", "application/octet-stream")


def test_listing_a_prefix_finds_exactly_the_objects_under_it(storage):
    folder = f"tests/list-{uuid.uuid4().hex[:8]}"
    for name in ("selfie.jpg", "selfie-Ab3.jpg", "other.jpg"):
        storage.put(f"{folder}/{name}", b"x", "image/jpeg")

    listed = storage.list_uploads(f"{folder}/selfie")

    assert sorted(key for key, _ in listed) == [f"{folder}/selfie-Ab3.jpg", f"{folder}/selfie.jpg"]
    assert all(stored.tzinfo is not None for _, stored in listed)
