"""Who is calling: the `sub` of a verified bearer JWT (HS256 secret, or the IdP's JWKS)."""

import hmac
import json
import logging
import threading

import jwt
from jwt.algorithms import has_crypto

from lib.errors import ConfigError, ServiceUnavailable, Unauthorized
from lib.settings import Settings
from lib.web.http import Request

logger = logging.getLogger(__name__)

CLOCK_SKEW_SECONDS = 30
MAX_TOKEN_LENGTH = 8 * 1024
MAX_SUBJECT_LENGTH = 255
# Asymmetric only: with a JWKS configured, an HS256 token (perhaps signed with the public key
# as its secret) or `alg: none` must never verify.
JWKS_ALGORITHMS = ["RS256", "ES256"]
JWKS_CACHE_SECONDS = 300
# An unknown `kid` refetches the key set at most this often (the jose library's default), so
# forged kids cannot make every request call the identity provider, and a rotated key is honoured
# within 30 s.
JWKS_REFRESH_COOLDOWN_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5

_jwks_clients: dict[str, jwt.PyJWKClient] = {}
_jwks_lock = threading.Lock()


def authenticate(request: Request, settings: Settings) -> str:
    """The caller's user id, or 401; 503 when no way to verify tokens is configured."""
    if not settings.auth_jwt_secret and not settings.auth_jwks_url:
        raise ServiceUnavailable("auth not configured", code="auth_not_configured")
    token = _bearer_token(request)
    try:
        claims = _verified_claims(token, settings)
    except jwt.ExpiredSignatureError:
        raise Unauthorized("The token has expired", code="token_expired") from None
    except jwt.InvalidTokenError:
        raise Unauthorized("The token is not valid", code="invalid_token") from None
    subject = claims["sub"]
    if not _is_user_id(subject):
        raise Unauthorized("The token's sub is not a user id", code="invalid_token")
    return subject


def authorize_cron(request: Request, settings: Settings) -> None:
    """Let only Vercel Cron in (`Authorization: Bearer $CRON_SECRET`); no secret, no caller."""
    if not settings.cron_secret:
        raise ConfigError("CRON_SECRET environment variable is not set")
    sent = request.headers.get("Authorization", "").encode()
    if not hmac.compare_digest(sent, f"Bearer {settings.cron_secret}".encode()):
        raise Unauthorized("Send Authorization: Bearer $CRON_SECRET", code="invalid_cron_secret")


def _verified_claims(token: str, settings: Settings) -> dict:
    if settings.auth_jwks_url:
        key, algorithms = _jwks_key(token, settings.auth_jwks_url), JWKS_ALGORITHMS
    else:
        key, algorithms = settings.auth_jwt_secret, ["HS256"]
    return jwt.decode(
        token,
        key,
        algorithms=algorithms,
        issuer=settings.auth_jwt_issuer,
        audience=settings.auth_jwt_audience,
        leeway=CLOCK_SKEW_SECONDS,
        options={"require": ["sub", "exp"], "verify_aud": settings.auth_jwt_audience is not None},
    )


def _jwks_key(token: str, url: str) -> jwt.PyJWK:
    """The IdP's public key named by the token's `kid` (the key set is cached per process)."""
    if not has_crypto:  # left out of requirements.txt unless asked for: see README
        raise ConfigError("AUTH_JWKS_URL needs PyJWT[crypto] in requirements.txt")
    header = jwt.get_unverified_header(token)
    kid = header.get("kid")
    if header.get("alg") not in JWKS_ALGORITHMS or not isinstance(kid, str) or not kid:
        raise jwt.InvalidTokenError("unsupported alg or missing kid")
    try:
        return _jwks_client(url).get_signing_key(kid)
    except (jwt.PyJWKClientConnectionError, jwt.PyJWKSetError, json.JSONDecodeError) as error:
        logger.warning("jwks unusable url=%s error=%s", url, type(error).__name__)
        raise ServiceUnavailable(
            "The identity provider's keys could not be fetched", code="auth_unavailable"
        ) from None
    except jwt.PyJWKClientError as error:
        # Unknown kid (after the rate-limited refresh), or a key set without signing keys.
        logger.info("jwks refused token error=%r", str(error)[:200])
        raise jwt.InvalidTokenError(str(error)) from None


def _jwks_client(url: str) -> jwt.PyJWKClient:
    with _jwks_lock:
        if url not in _jwks_clients:
            _jwks_clients[url] = jwt.PyJWKClient(
                url,
                lifespan=JWKS_CACHE_SECONDS,
                cooldown_duration=JWKS_REFRESH_COOLDOWN_SECONDS,
                timeout=JWKS_TIMEOUT_SECONDS,
            )
        return _jwks_clients[url]


def _is_user_id(subject: object) -> bool:
    # It becomes a SQL value and a storage prefix's input: printable text of bounded length.
    return (
        isinstance(subject, str)
        and 0 < len(subject) <= MAX_SUBJECT_LENGTH
        and subject.isprintable()
    )


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("Send Authorization: Bearer <token>", code="missing_token")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthorized("The token is not valid", code="invalid_token")
    return token
