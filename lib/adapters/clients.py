"""The upstream clients, built from settings: one storage backend, one Replicate client."""

from lib.adapters.storage.base import Storage
from lib.adapters.storage.blob import BlobStorage
from lib.adapters.storage.local import LocalStorage
from lib.settings import Settings


def get_storage(settings: Settings) -> Storage:
    """The backend chosen by STORAGE_BACKEND (or the presence of BLOB_READ_WRITE_TOKEN)."""
    if settings.storage_backend == "s3":
        from lib.adapters.storage.s3 import S3Storage

        return S3Storage(settings)
    if settings.storage_backend == "blob":
        assert settings.blob_read_write_token  # settings refuse blob without a token
        return BlobStorage(settings.blob_read_write_token, settings.blob_api_url)
    base = (settings.public_base_url or "http://127.0.0.1:8000") + "/_local_storage"
    return LocalStorage(settings.local_storage_dir, base)
