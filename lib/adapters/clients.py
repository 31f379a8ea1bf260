"""The upstream clients, built from settings: one storage backend, one Replicate client."""

from functools import cached_property
from typing import TYPE_CHECKING

from lib.adapters.storage.base import Storage
from lib.adapters.storage.blob import BlobStorage
from lib.adapters.storage.local import LocalStorage
from lib.adapters.storage.s3 import S3Storage
from lib.settings import Settings

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate


def get_storage(settings: Settings) -> Storage:
    """The backend chosen by STORAGE_BACKEND (or the presence of BLOB_READ_WRITE_TOKEN)."""
    if settings.storage_backend == "s3":
        return S3Storage(settings)
    if settings.storage_backend == "blob":
        assert settings.blob_read_write_token  # settings refuse blob without a token
        return BlobStorage(settings.blob_read_write_token, settings.blob_api_url)
    base = (settings.public_base_url or "http://127.0.0.1:8000") + "/_local_storage"
    return LocalStorage(settings.local_storage_dir, base)


class Clients:
    """One request's upstream clients, each built on first use: the progress and webhook
    functions usually answer without either."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @cached_property
    def replicate(self) -> "Replicate":
        """The Replicate client (503 config_missing without REPLICATE_API_TOKEN)."""
        from lib.adapters.replicate import Replicate  # httpx: only for a call to Replicate

        return Replicate(self.settings)

    @cached_property
    def storage(self) -> Storage:
        return get_storage(self.settings)
