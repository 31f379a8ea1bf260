"""Who is calling: the `sub` of a verified bearer JWT."""

import hmac
import time

import jwt

from lib.errors import ConfigError, ServiceUnavailable, Unauthorized
from lib.http import Request
from lib.settings import Settings

CLOCK_SKEW_SECONDS = 30


def authenticate(request: Request, settings: Settings) -> str:
    """The caller's user id, or 401; 503 when no way to verify tokens is configured."""
    if not settings.auth_jwt_secret:
        raise ServiceUnavailable("auth not configured", code="auth_not_configured")
    token = _bearer_token(request)
    try:
        claims = jwt.decode(
            token,
            settings.auth_jwt_secret,
            algorithms=["HS256"],
            issuer=settings.auth_jwt_issuer,
            audience=settings.auth_jwt_audience,
            leeway=CLOCK_SKEW_SECONDS,
            options={"require": ["sub"], "verify_aud": settings.auth_jwt_audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is not valid", code="invalid_token") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject or len(subject) > 255:
        raise Unauthorized("The token's sub is not a user id", code="invalid_token")
    return subject


def authorize_cron(request: Request, settings: Settings) -> None:
    """Let only Vercel Cron in (`Authorization: Bearer $CRON_SECRET`); no secret, no caller."""
    if not settings.cron_secret:
        raise ConfigError("CRON_SECRET environment variable is not set")
    sent = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(sent, f"Bearer {settings.cron_secret}".encode()):
        raise Unauthorized("Send Authorization: Bearer $CRON_SECRET", code="invalid_cron_secret")


def issue_token(secret: str, user_id: str, lifetime_seconds: int = 24 * 3600) -> str:
    """An HS256 token for `user_id` (the dev console and tests sign in with it)."""
    now = int(time.time())
    claims = {"sub": user_id, "iat": now, "exp": now + lifetime_seconds}
    return jwt.encode(claims, secret, algorithm="HS256")


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send Authorization: Bearer <token>", code="missing_token")
    return token.strip()
