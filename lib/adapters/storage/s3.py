"""S3-compatible object storage (AWS S3, Cloudflare R2, MinIO) through boto3.

boto3 costs ~300 ms to import, so it is imported when the first call is made; the progress
and webhook functions never touch storage.
"""

import hashlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any
from urllib.parse import quote

from lib.adapters.storage.base import CHUNK_SIZE, StoredObject, put_if_small
from lib.errors import BadGateway, ConfigError, NotFound
from lib.settings import Settings

logger = logging.getLogger(__name__)

# The longest a SigV4 presigned URL may live; Replicate fetches the ZIP within minutes.
PRESIGN_SECONDS = 7 * 24 * 3600
DELETE_BATCH = 1000  # DeleteObjects takes at most 1000 keys
_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})


class S3Storage:
    """One bucket; URLs are `S3_PUBLIC_BASE_URL/<key>` when set, else presigned GETs."""

    backend = "s3"

    def __init__(self, settings: Settings) -> None:
        assert settings.s3_bucket  # settings refuse s3 without a bucket
        self.bucket = settings.s3_bucket
        self._settings = settings
        self._client: Any = None

    @property
    def client(self) -> Any:
        """The boto3 S3 client, built on first use."""
        if self._client is None:
            try:
                import boto3
                from botocore.config import Config
            except ImportError:  # requirements.txt leaves it out: only this backend needs it
                raise ConfigError(
                    "STORAGE_BACKEND is s3 but boto3 is missing: add boto3 to requirements.txt"
                ) from None

            settings = self._settings
            # A custom endpoint (MinIO, R2, a local server) is addressed by path: the bucket
            # name need not resolve as a subdomain there.
            addressing = "path" if settings.s3_endpoint_url else "auto"
            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=settings.s3_endpoint_url,
                region_name=settings.s3_region,
                aws_access_key_id=settings.aws_access_key_id,
                aws_secret_access_key=settings.aws_secret_access_key,
                aws_session_token=settings.aws_session_token,
                config=Config(
                    signature_version="s3v4",
                    connect_timeout=5,
                    read_timeout=30,
                    retries={"max_attempts": 3, "mode": "standard"},
                    s3={"addressing_style": addressing},
                ),
            )
        return self._client

    def put(self, key: str, data: bytes, content_type: str) -> StoredObject:
        with self._errors():
            self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=content_type)
        return StoredObject(key, self.url(key), len(data), content_type)

    def put_stream(self, key: str, chunks: Iterable[bytes], content_type: str) -> StoredObject:
        stored, pieces = put_if_small(self, key, chunks, content_type)
        if stored:
            return stored
        digest, size, parts = hashlib.sha256(), 0, []
        with self._errors():
            upload = self.client.create_multipart_upload(
                Bucket=self.bucket, Key=key, ContentType=content_type
            )["UploadId"]
            try:
                for number, part in enumerate(pieces, start=1):
                    digest.update(part)
                    size += len(part)
                    etag = self.client.upload_part(
                        Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=number, Body=part
                    )["ETag"]
                    parts.append({"PartNumber": number, "ETag": etag})
                self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
                )
            except BaseException:
                self._abort(key, upload)
                raise
        return StoredObject(key, self.url(key), size, content_type, digest.hexdigest())

    def read(self, key: str) -> bytes:
        return b"".join(self.stream(key))

    def stream(self, key: str) -> Iterator[bytes]:
        with self._errors():
            body = self.client.get_object(Bucket=self.bucket, Key=key)["Body"]
            with body:
                yield from body.iter_chunks(CHUNK_SIZE)

    def delete(self, keys: list[str]) -> None:
        with self._errors():
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start : start + DELETE_BATCH]]
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )

    def list_uploads(self, prefix: str) -> list[tuple[str, datetime]]:
        """(key, time written) of each object whose key starts with `prefix`."""
        with self._errors():
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            return [
                (item["Key"], item["LastModified"])
                for page in pages
                for item in page.get("Contents", [])
            ]

    def url(self, key: str) -> str:
        """Where a browser or Replicate can fetch the object."""
        base = self._settings.s3_public_base_url
        if base:
            return f"{base}/{quote(key)}"
        with self._errors():
            return self.client.generate_presigned_url(
                "get_object",
                Params={"Bucket": self.bucket, "Key": key},
                ExpiresIn=PRESIGN_SECONDS,
            )

    def _abort(self, key: str, upload: str) -> None:
        # An abandoned upload keeps its parts (and their cost) until it is aborted.
        try:
            self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
        except Exception:
            logger.warning("s3 abort failed bucket=%s upload=%s", self.bucket, upload)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            yield
        except NoCredentialsError:
            raise ConfigError(
                "S3 credentials are not set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
            ) from None
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in _MISSING_CODES:
                raise NotFound("Stored object does not exist", code="object_missing") from None
            logger.warning("s3 error code=%s bucket=%s", code, self.bucket)
            raise BadGateway("S3 storage failed", code="storage_error") from error
        except BotoCoreError as error:
            logger.warning("s3 error type=%s bucket=%s", type(error).__name__, self.bucket)
            raise BadGateway("S3 storage could not be reached", code="storage_error") from error
