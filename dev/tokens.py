"""Sign-in for the dev console and the tests: HS256 tokens with the dev secret (never deployed)."""

import time

import jwt


def issue_token(secret: str, user_id: str, lifetime_seconds: int = 24 * 3600) -> str:
    """An HS256 token for `user_id`."""
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + lifetime_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")
