"""Client tokens and callback signatures, against a known answer from the JS SDK itself."""

import base64
import hashlib
import hmac
import json

import pytest

from lib.errors import Unauthorized
from lib.intake.client_uploads import client_token, verify_signature

RW_TOKEN = "vercel_blob_rw_teststore_0123456789abcdefABCDEF0123456789"
OWNER = '{"userId":"user-1","filename":"IMG_0001.HEIC"}'
# Made by @vercel/blob 2.8.0's own handleUpload (npm, Node 20) with the clock fixed at
# 2026-01-01T00:00:00Z (a Date subclass whose `new Date()` returns it), token RW_TOKEN, event
# {"type":"blob.generate-client-token","payload":{"pathname":
# "users/0123456789abcdef01234567/selfies/IMG_0001.HEIC","clientPayload":null,"multipart":false}}
# and onBeforeGenerateToken returning {allowedContentTypes: [jpeg, png, webp, heic, heif],
# maximumSizeInBytes: 26214400, addRandomSuffix: true, tokenPayload: OWNER,
# callbackUrl: "https://sselfie.example/api/training/upload"}; printed r.clientToken.
JS_SDK_TOKEN = (
    "vercel_blob_client_teststore_YWVmZGVkZGQ5NDVjNDkxZjM2OTY3MThjYTFkM2QxM2QwNjA4NzZkYmZjZGJk"
    "NjM3YzlkZjFlMGRlMDE3MWQ0OC5leUpoYkd4dmQyVmtRMjl1ZEdWdWRGUjVjR1Z6SWpwYkltbHRZV2RsTDJwd1pX"
    "Y2lMQ0pwYldGblpTOXdibWNpTENKcGJXRm5aUzkzWldKd0lpd2lhVzFoWjJVdmFHVnBZeUlzSW1sdFlXZGxMMmhs"
    "YVdZaVhTd2liV0Y0YVcxMWJWTnBlbVZKYmtKNWRHVnpJam95TmpJeE5EUXdNQ3dpWVdSa1VtRnVaRzl0VTNWbVpt"
    "bDRJanAwY25WbExDSjBiMnRsYmxCaGVXeHZZV1FpT2lKN1hDSjFjMlZ5U1dSY0lqcGNJblZ6WlhJdE1Wd2lMRndp"
    "Wm1sc1pXNWhiV1ZjSWpwY0lrbE5SMTh3TURBeExraEZTVU5jSW4waUxDSndZWFJvYm1GdFpTSTZJblZ6WlhKekx6"
    "QXhNak0wTlRZM09EbGhZbU5rWldZd01USXpORFUyTnk5elpXeG1hV1Z6TDBsTlIxOHdNREF4TGtoRlNVTWlMQ0p2"
    "YmxWd2JHOWhaRU52YlhCc1pYUmxaQ0k2ZXlKallXeHNZbUZqYTFWeWJDSTZJbWgwZEhCek9pOHZjM05sYkdacFpT"
    "NWxlR0Z0Y0d4bEwyRndhUzkwY21GcGJtbHVaeTkxY0d4dllXUWlMQ0owYjJ0bGJsQmhlV3h2WVdRaU9pSjdYQ0ox"
    "YzJWeVNXUmNJanBjSW5WelpYSXRNVndpTEZ3aVptbHNaVzVoYldWY0lqcGNJa2xOUjE4d01EQXhMa2hGU1VOY0lu"
    "MGlmU3dpZG1Gc2FXUlZiblJwYkNJNk1UYzJOekl5T1RJd01EQXdNSDA9"
)


def make_vector_token() -> str:
    return client_token(
        RW_TOKEN,
        pathname="users/0123456789abcdef01234567/selfies/IMG_0001.HEIC",
        options={
            "allowedContentTypes": [
                "image/jpeg",
                "image/png",
                "image/webp",
                "image/heic",
                "image/heif",
            ],
            "maximumSizeInBytes": 26214400,
            "addRandomSuffix": True,
            "tokenPayload": OWNER,
        },
        callback_url="https://sselfie.example/api/training/upload",
        valid_until=1767225600000 + 3600 * 1000,
    )


def test_a_client_token_is_byte_identical_to_the_js_sdks():
    assert make_vector_token() == JS_SDK_TOKEN


def test_the_token_follows_the_recipe_step_by_step():
    token = make_vector_token()

    store, _, encoded = token.removeprefix("vercel_blob_client_").partition("_")
    signature, _, payload_b64 = base64.b64decode(encoded).decode().partition(".")
    assert store == "teststore"
    assert signature == hmac.new(RW_TOKEN.encode(), payload_b64.encode(), "sha256").hexdigest()
    payload = json.loads(base64.b64decode(payload_b64))
    assert list(payload) == [
        "allowedContentTypes",
        "maximumSizeInBytes",
        "addRandomSuffix",
        "tokenPayload",
        "pathname",
        "onUploadCompleted",
        "validUntil",
    ]
    assert payload["onUploadCompleted"]["tokenPayload"] == OWNER


def test_a_callback_signed_over_its_raw_body_is_accepted():
    body = b'{"type":"blob.upload-completed","payload":{}}'
    signature = hmac.new(RW_TOKEN.encode(), body, hashlib.sha256).hexdigest()

    verify_signature(body, signature, RW_TOKEN)


@pytest.mark.parametrize(
    "signature",
    ["", "00" * 32, hmac.new(b"another token", b"{}", hashlib.sha256).hexdigest(), "ünïcode"],
)
def test_a_wrong_or_missing_callback_signature_is_refused(signature):
    with pytest.raises(Unauthorized, match="signature is not valid"):
        verify_signature(b"{}", signature, RW_TOKEN)


def test_a_signature_over_a_reserialised_body_does_not_pass():
    raw = b'{"type": "blob.upload-completed", "payload": {}}'
    compact = json.dumps(json.loads(raw), separators=(",", ":")).encode()
    signature = hmac.new(RW_TOKEN.encode(), compact, hashlib.sha256).hexdigest()

    with pytest.raises(Unauthorized):
        verify_signature(raw, signature, RW_TOKEN)
