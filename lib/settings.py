"""Configuration: one frozen dataclass built from the environment, once per process."""

import base64
import binascii
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from functools import cache
from pathlib import Path
from urllib.parse import urlencode, urlsplit

from lib.accounts import costs
from lib.errors import ConfigError

TRAINING_INPUT_DEFAULTS: dict[str, object] = {
    "steps": 1000,
    "lora_rank": 16,
    "optimizer": "adamw8bit",
    "batch_size": 1,
    "resolution": "512,768,1024",
    "autocaption": True,
    "learning_rate": 0.0004,
    # Each caption starts by naming the trigger word and who it is (filled per run; sent only
    # when the trainer version has the input; TRAINING_INPUT may change it, or "" for none).
    "autocaption_prefix": "a photo of {trigger_word}, {subject}, ",
}
# Recorded with each run's parameters but never sent: the trainer has no such input.
RECORDED_ONLY_PARAMETERS: dict[str, object] = {"num_repeats": 10}

_PLACEHOLDERS = {"changeme", "change-me", "xxx", "todo", "secret", "your-token-here", "none"}
_STORAGE_BACKENDS = ("blob", "s3", "local")
_SECRETS = (
    "REPLICATE_API_TOKEN",
    "AUTH_JWT_SECRET",
    "CRON_SECRET",
    "BLOB_READ_WRITE_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "APP_WEBHOOK_SECRET",
)
_PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Settings:
    database_url: str | None = None
    replicate_api_token: str | None = None
    replicate_base_url: str = "https://api.replicate.com"
    replicate_webhook_secret: str | None = None
    trainer_model: str = "ostris/flux-dev-lora-trainer"
    trainer_version: str | None = None
    destination_owner: str | None = None
    training_input: Mapping[str, object] = field(default_factory=dict)
    storage_backend: str = "local"
    blob_read_write_token: str | None = None
    blob_api_url: str | None = None
    local_storage_dir: Path = _PROJECT_ROOT / ".data" / "storage"
    auth_jwt_secret: str | None = None
    auth_jwks_url: str | None = None
    auth_jwt_issuer: str | None = None
    auth_jwt_audience: str | None = None
    public_base_url: str | None = None
    protection_bypass_secret: str | None = None
    cron_secret: str | None = None
    progress_poll_seconds: int = 60
    training_start_timeout_minutes: int = 30
    upload_max_bytes: int = 25 * 1024 * 1024
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    s3_public_base_url: str | None = None
    aws_access_key_id: str | None = None
    aws_secret_access_key: str | None = None
    aws_session_token: str | None = None
    training_daily_limit: int = 3
    generation_daily_limit: int = 50
    cors_allowed_origins: frozenset[str] = frozenset()
    face_min_share: float = 0.15
    replicate_prices: Mapping[str, float] = field(default_factory=lambda: costs.parse_prices(None))
    trainer_hardware: str = "gpu-h100"
    model_hardware: str = costs.MODEL_HARDWARE
    monthly_spend_limit_usd: Decimal | None = None
    app_webhook_url: str | None = None  # where the app receives our events; None: no events
    app_webhook_secret: str | None = None

    def callback_url(self, path: str, **params: str) -> str | None:
        """The public URL Replicate or Blob should call back, or None when nothing can reach us."""
        if not self.public_base_url:
            return None
        if self.protection_bypass_secret:
            # Callers cannot set headers, so the bypass travels as a query parameter.
            params["x-vercel-protection-bypass"] = self.protection_bypass_secret
        query = f"?{urlencode(params)}" if params else ""
        return f"{self.public_base_url}{path}{query}"

    def full_training_input(self) -> dict[str, object]:
        """The trainer input defaults with configured overrides applied."""
        return {**TRAINING_INPUT_DEFAULTS, **self.training_input}


def load_settings(environ: Mapping[str, str]) -> Settings:
    """Build settings from an environment mapping; raise ConfigError naming a bad variable."""
    env = {key: value.strip() for key, value in environ.items() if value.strip()}
    for name in _SECRETS:
        _refuse_placeholder(env, name)
    blob_token = env.get("BLOB_READ_WRITE_TOKEN")
    trainer_model = env.get("REPLICATE_TRAINER_MODEL", "ostris/flux-dev-lora-trainer")
    prices = costs.parse_prices(env.get("REPLICATE_PRICES"))
    app_webhook_url, app_webhook_secret = _app_webhook(env)
    return Settings(
        database_url=env.get("DATABASE_URL"),
        replicate_api_token=env.get("REPLICATE_API_TOKEN"),
        replicate_base_url=env.get("REPLICATE_BASE_URL", "https://api.replicate.com").rstrip("/"),
        replicate_webhook_secret=_webhook_secret(env),
        trainer_model=trainer_model,
        trainer_version=env.get("REPLICATE_TRAINER_VERSION"),
        destination_owner=env.get("REPLICATE_DESTINATION_OWNER"),
        training_input=_training_input(env),
        storage_backend=_storage_backend(env, blob_token),
        blob_read_write_token=blob_token,
        blob_api_url=env.get("VERCEL_BLOB_API_URL"),
        local_storage_dir=Path(env.get("LOCAL_STORAGE_DIR", _PROJECT_ROOT / ".data" / "storage")),
        auth_jwt_secret=env.get("AUTH_JWT_SECRET"),
        auth_jwks_url=_jwks_url(env),
        auth_jwt_issuer=env.get("AUTH_JWT_ISSUER"),
        auth_jwt_audience=env.get("AUTH_JWT_AUDIENCE"),
        public_base_url=public_base_url(env),
        protection_bypass_secret=env.get("VERCEL_AUTOMATION_BYPASS_SECRET"),
        cron_secret=env.get("CRON_SECRET"),
        progress_poll_seconds=_int(env, "PROGRESS_POLL_SECONDS", 60),
        training_start_timeout_minutes=_int(env, "TRAINING_START_TIMEOUT_MINUTES", 30, minimum=1),
        upload_max_bytes=_int(env, "UPLOAD_MAX_BYTES", 25 * 1024 * 1024),
        s3_bucket=env.get("S3_BUCKET"),
        s3_endpoint_url=env.get("AWS_ENDPOINT_URL"),
        s3_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1",
        s3_public_base_url=_url(env, "S3_PUBLIC_BASE_URL"),
        aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"),
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
        training_daily_limit=_int(env, "TRAINING_DAILY_LIMIT", 3),
        generation_daily_limit=_int(env, "GENERATION_DAILY_LIMIT", 50),
        cors_allowed_origins=_origins(env),
        face_min_share=_share(env, "FACE_MIN_SHARE", 0.15),
        replicate_prices=prices,
        trainer_hardware=_hardware(
            env,
            "REPLICATE_TRAINER_HARDWARE",
            costs.TRAINER_HARDWARE.get(trainer_model, costs.MODEL_HARDWARE),
            prices,
        ),
        model_hardware=_hardware(env, "REPLICATE_MODEL_HARDWARE", costs.MODEL_HARDWARE, prices),
        monthly_spend_limit_usd=_usd(env, "MONTHLY_SPEND_LIMIT_USD"),
        app_webhook_url=app_webhook_url,
        app_webhook_secret=app_webhook_secret,
    )


def is_loopback_url(url: str | None) -> bool:
    """Whether a URL points at this machine (so nothing outside can call it)."""
    host = urlsplit(url or "").hostname or ""
    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cache
def get_settings() -> Settings:
    """The process-wide settings, read once (module globals are shared by every request)."""
    return load_settings(os.environ)


def _refuse_placeholder(env: Mapping[str, str], name: str) -> None:
    value = env.get(name)
    if value is not None and (value.lower() in _PLACEHOLDERS or value.startswith("<")):
        raise ConfigError(f"{name} is set to a placeholder value; set the real secret")


def _webhook_secret(env: Mapping[str, str]) -> str | None:
    secret = env.get("REPLICATE_WEBHOOK_SECRET")
    if secret is not None and not secret.startswith("whsec_"):
        raise ConfigError("REPLICATE_WEBHOOK_SECRET must start with whsec_")
    return secret


def _app_webhook(env: Mapping[str, str]) -> tuple[str | None, str | None]:
    url, secret = env.get("APP_WEBHOOK_URL"), env.get("APP_WEBHOOK_SECRET")
    if url is None and secret is None:
        return None, None
    if url is None or secret is None:
        missing = "APP_WEBHOOK_URL" if url is None else "APP_WEBHOOK_SECRET"
        raise ConfigError(f"{missing} must be set with the other APP_WEBHOOK_* variable")
    parts = _split(url, "APP_WEBHOOK_URL")
    secure = parts.scheme == "https" or (parts.scheme == "http" and is_loopback_url(url))
    if not parts.hostname or not secure:
        raise ConfigError("APP_WEBHOOK_URL must be an https:// URL (http:// only to loopback)")
    if not secret.startswith("whsec_") or not _is_base64(secret.removeprefix("whsec_")):
        raise ConfigError("APP_WEBHOOK_SECRET must be whsec_ followed by a base64 key")
    return url, secret


def _is_base64(value: str) -> bool:
    try:
        return bool(base64.b64decode(value, validate=True))
    except binascii.Error:
        return False


def _jwks_url(env: Mapping[str, str]) -> str | None:
    url = env.get("AUTH_JWKS_URL")
    if url is None:
        return None
    if "AUTH_JWT_SECRET" in env:
        # Accepting both would let an HS256 token signed with a public key pass as the IdP's.
        raise ConfigError("Set AUTH_JWKS_URL or AUTH_JWT_SECRET, not both")
    parts = _split(url, "AUTH_JWKS_URL")
    loopback = parts.hostname in ("127.0.0.1", "localhost", "::1")
    if not parts.hostname or not (parts.scheme == "https" or (parts.scheme == "http" and loopback)):
        raise ConfigError("AUTH_JWKS_URL must be an https:// URL")
    return url


def _origins(env: Mapping[str, str]) -> frozenset[str]:
    origins = set()
    for value in env.get("CORS_ALLOWED_ORIGINS", "").split(","):
        origin = value.strip().rstrip("/")
        if not origin:
            continue
        parts = _split(origin, "CORS_ALLOWED_ORIGINS")
        if parts.scheme not in ("http", "https") or not parts.hostname or parts.path:
            raise ConfigError(
                "CORS_ALLOWED_ORIGINS must be comma-separated origins like https://app.example.com"
            )
        origins.add(origin.lower())
    return frozenset(origins)


def _split(url: str, name: str):
    try:
        return urlsplit(url)
    except ValueError:
        raise ConfigError(f"{name} is not a valid URL") from None


def _storage_backend(env: Mapping[str, str], blob_token: str | None) -> str:
    backend = env.get("STORAGE_BACKEND", "blob" if blob_token else "local").lower()
    if backend not in _STORAGE_BACKENDS:
        raise ConfigError(f"STORAGE_BACKEND must be one of {', '.join(_STORAGE_BACKENDS)}")
    if backend == "blob" and not blob_token:
        raise ConfigError("STORAGE_BACKEND is blob but BLOB_READ_WRITE_TOKEN is not set")
    if backend == "s3" and not env.get("S3_BUCKET"):
        raise ConfigError("STORAGE_BACKEND is s3 but S3_BUCKET is not set")
    if backend == "local" and env.get("VERCEL") == "1":
        raise ConfigError(
            "STORAGE_BACKEND local does not work on Vercel; set BLOB_READ_WRITE_TOKEN"
            " (or STORAGE_BACKEND=s3 with S3_BUCKET)"
        )
    return backend


def _training_input(env: Mapping[str, str]) -> dict[str, object]:
    raw = env.get("TRAINING_INPUT")
    if raw is None:
        return {}
    try:
        overrides = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"TRAINING_INPUT is not valid JSON: {exc.msg}") from None
    if not isinstance(overrides, dict):
        raise ConfigError("TRAINING_INPUT must be a JSON object of trainer inputs")
    return overrides


def public_base_url(env: Mapping[str, str]) -> str | None:
    """PUBLIC_BASE_URL, else the deployment's own https URL from Vercel's system variables."""
    if "PUBLIC_BASE_URL" in env:
        return env["PUBLIC_BASE_URL"].rstrip("/")
    host = None
    if env.get("VERCEL_ENV") == "production":
        host = env.get("VERCEL_PROJECT_PRODUCTION_URL") or env.get("VERCEL_URL")
    elif env.get("VERCEL_ENV") == "preview":
        # The deployment's own host: immutable, so callbacks reach the code that started the run.
        host = env.get("VERCEL_URL") or env.get("VERCEL_BRANCH_URL")
    return f"https://{host}" if host else None


def _url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name)
    if value is not None and not value.startswith(("https://", "http://")):
        raise ConfigError(f"{name} must be an http(s) URL")
    return value.rstrip("/") if value else None


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int = 0) -> int:
    try:
        value = int(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a whole number") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}")
    return value


def _share(env: Mapping[str, str], name: str, default: float) -> float:
    try:
        value = float(env.get(name, default))
    except ValueError:
        raise ConfigError(f"{name} must be a number between 0 and 1") from None
    if not 0 < value <= 1:
        raise ConfigError(f"{name} must be a number between 0 and 1")
    return value


def _hardware(env: Mapping[str, str], name: str, default: str, prices: Mapping[str, float]) -> str:
    return costs.checked_hardware(name, env.get(name, default), prices)


def _usd(env: Mapping[str, str], name: str) -> Decimal | None:
    if name not in env:
        return None
    try:
        value = Decimal(env[name])
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise ConfigError(f"{name} must be an amount in US dollars, like 25 or 9.50")
    return value
