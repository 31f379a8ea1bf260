"""A local emulator of the Vercel Blob HTTP API, for development and tests.

`BlobEmulator` runs a real threaded HTTP server on 127.0.0.1 that speaks the wire protocol
used by the official SDKs (Python `vercel-blob` 0.5.0 and `@vercel/blob` 2.x):

* API (base URL = `emulator.url`, also accepted under `/api/blob`):
  put `PUT /?pathname=`, copy `PUT /?pathname=&fromUrl=`, head `GET /?url=`,
  list `GET /?limit=&prefix=&cursor=[&mode=folded]`, delete `POST /delete`,
  rename `POST /rename?pathname=&fromUrl=`, multipart `POST /mpu` (`x-mpu-action`).
  Every answer is JSON; errors are `{"error": {"code", "message"}}`.
* Delivery: `GET|HEAD /<pathname>` when the Host header is
  `<store>.<public|private>.blob.vercel-storage.com`. URLs returned by the API are real-looking
  `https://...blob.vercel-storage.com/...` URLs (the Python SDK rejects anything else), so
  downloads reach the emulator through `BlobEmulator.delivery_transport()`, which rewrites
  those requests to this server over plain HTTP while keeping the Host header.
* Emulator-only convenience (not part of Vercel): `GET /_delivery/<access>/<pathname>` on the
  loopback address serves a blob to a browser (e.g. an `<img>` in a dev console). Private blobs
  there need `Authorization: Bearer <rw token>` or `?token=<rw token>`.
* Client uploads: `vercel_blob_client_...` tokens (HMAC-SHA256 with the read-write token) are
  verified exactly like the service does, and after a successful upload the signed
  `blob.upload-completed` callback is POSTed to the token's `callbackUrl`.

Blobs live on disk under `root` (`blobs/<hh>/<sha256(pathname)>.bin` plus a `.json` metadata
file beside it), so a store survives restarts when `root` is given.

Minimal use with the official Python SDK::

    with BlobEmulator() as emu, emu.sdk_session():
        vercel.blob.sync.put_blob("a.txt", b"hi", access="public")
"""

from dev.blob_emulator.client_tokens import (
    ClientTokenError,
    check_client_upload,
    verify_client_token,
)
from dev.blob_emulator.delivery import delivery_url
from dev.blob_emulator.emulator import BlobEmulator
from dev.blob_emulator.protocol import DEFAULT_TOKEN, CallbackDelivery, RecordedRequest

__all__ = [
    "DEFAULT_TOKEN",
    "BlobEmulator",
    "CallbackDelivery",
    "ClientTokenError",
    "RecordedRequest",
    "check_client_upload",
    "delivery_url",
    "verify_client_token",
]
