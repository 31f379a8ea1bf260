"""The one error hierarchy: each error carries the HTTP status and code the contract names."""


class ApiError(Exception):
    """An error the caller should see, as `{"error": message, "code": code}`."""

    status = 500
    code = "internal_error"

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.code
        self.headers = headers or {}


class BadRequest(ApiError):
    status, code = 400, "bad_request"


class Unauthorized(ApiError):
    status, code = 401, "unauthorized"


class NotFound(ApiError):
    status, code = 404, "not_found"


class MethodNotAllowed(ApiError):
    status, code = 405, "method_not_allowed"


class Conflict(ApiError):
    status, code = 409, "conflict"


class PayloadTooLarge(ApiError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ApiError):
    status, code = 415, "unsupported_media_type"


class Unprocessable(ApiError):
    status, code = 422, "invalid_values"


class TooManyRequests(ApiError):
    status, code = 429, "too_many_requests"


class BadGateway(ApiError):
    status, code = 502, "upstream_error"


class NotFoundUpstream(BadGateway):
    """Replicate no longer knows the object (a training, a prediction, a file)."""

    code = "replicate_not_found"


class ServiceUnavailable(ApiError):
    status, code = 503, "service_unavailable"


class GatewayTimeout(ApiError):
    status, code = 504, "upstream_timeout"


class ConfigError(ServiceUnavailable):
    """A missing or malformed setting, reported by its variable's name."""

    code = "config_missing"
