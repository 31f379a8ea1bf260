"""Standard Webhooks signing and verification (pure)."""

import pytest

from lib.adapters.signatures import TOLERANCE_SECONDS, WebhookVerificationError, sign, verify

# Replicate's own test vector (replicate-python tests/test_webhooks.py).
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
WEBHOOK_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
TIMESTAMP = 1614265330
BODY = b'{"test": 2432232314}'
SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def headers(**override):
    base = {
        "webhook-id": WEBHOOK_ID,
        "webhook-timestamp": str(TIMESTAMP),
        "webhook-signature": SIGNATURE,
    }
    return {k: v for k, v in {**base, **override}.items() if v is not None}


def test_signing_matches_replicates_known_answer():
    assert sign(SECRET, WEBHOOK_ID, TIMESTAMP, BODY) == SIGNATURE


def test_a_genuine_delivery_verifies_and_returns_its_id():
    assert verify(SECRET, headers(), BODY, now=TIMESTAMP + 10) == WEBHOOK_ID


def test_any_of_several_signatures_may_match():
    signatures = f"v1,AAAA {SIGNATURE}"

    assert verify(SECRET, headers(**{"webhook-signature": signatures}), BODY, now=TIMESTAMP)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_a_missing_header_is_refused(name):
    with pytest.raises(WebhookVerificationError, match=f"{name} header is missing"):
        verify(SECRET, headers(**{name: None}), BODY, now=TIMESTAMP)


@pytest.mark.parametrize("offset", [TOLERANCE_SECONDS + 1, -(TOLERANCE_SECONDS + 1)])
def test_a_timestamp_outside_five_minutes_is_refused(offset):
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify(SECRET, headers(), BODY, now=TIMESTAMP + offset)


def test_a_changed_body_is_refused():
    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(SECRET, headers(), BODY.replace(b"2", b"3"), now=TIMESTAMP)


def test_a_signature_without_the_v1_scheme_is_refused():
    bare = SIGNATURE.removeprefix("v1,")

    with pytest.raises(WebhookVerificationError, match="does not match"):
        verify(SECRET, headers(**{"webhook-signature": bare}), BODY, now=TIMESTAMP)


def test_a_non_numeric_timestamp_is_refused():
    with pytest.raises(WebhookVerificationError, match="Unix time"):
        verify(SECRET, headers(**{"webhook-timestamp": "yesterday"}), BODY, now=TIMESTAMP)
