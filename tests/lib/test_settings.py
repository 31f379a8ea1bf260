"""Settings from the environment: named errors, callback URLs for every deployment."""

import pytest

from lib.errors import ConfigError
from lib.settings import load_settings


def test_an_empty_environment_gives_local_defaults():
    settings = load_settings({})

    assert settings.storage_backend == "local"
    assert settings.replicate_base_url == "https://api.replicate.com"
    assert settings.callback_url("/api/webhooks/replicate") is None


@pytest.mark.parametrize("value", ["changeme", "<your token>", "xxx"])
def test_a_placeholder_secret_is_refused_by_name(value):
    with pytest.raises(ConfigError, match="REPLICATE_API_TOKEN"):
        load_settings({"REPLICATE_API_TOKEN": value})


def test_production_calls_back_on_the_production_domain():
    settings = load_settings(
        {
            "VERCEL": "1",
            "VERCEL_ENV": "production",
            "VERCEL_URL": "app-abc123.vercel.app",
            "VERCEL_PROJECT_PRODUCTION_URL": "sselfie.app",
            "BLOB_READ_WRITE_TOKEN": "vercel_blob_rw_s_x",
        }
    )

    assert settings.callback_url("/api/webhooks/replicate") == (
        "https://sselfie.app/api/webhooks/replicate"
    )


def test_a_preview_calls_back_on_its_own_deployment_with_the_bypass():
    settings = load_settings(
        {
            "VERCEL": "1",
            "VERCEL_ENV": "preview",
            "VERCEL_URL": "app-git-feature.vercel.app",
            "VERCEL_PROJECT_PRODUCTION_URL": "sselfie.app",
            "VERCEL_AUTOMATION_BYPASS_SECRET": "bypass123",
            "BLOB_READ_WRITE_TOKEN": "vercel_blob_rw_s_x",
        }
    )

    assert settings.callback_url("/api/webhooks/replicate", run="r1") == (
        "https://app-git-feature.vercel.app/api/webhooks/replicate"
        "?run=r1&x-vercel-protection-bypass=bypass123"
    )


def test_public_base_url_wins_over_vercels_variables():
    settings = load_settings(
        {"PUBLIC_BASE_URL": "https://tunnel.example/", "VERCEL_ENV": "preview", "VERCEL_URL": "x"}
    )

    assert settings.callback_url("/cb") == "https://tunnel.example/cb"


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"STORAGE_BACKEND": "ftp"}, "STORAGE_BACKEND"),
        ({"STORAGE_BACKEND": "blob"}, "BLOB_READ_WRITE_TOKEN"),
        ({"VERCEL": "1"}, "BLOB_READ_WRITE_TOKEN"),
        ({"REPLICATE_WEBHOOK_SECRET": "abc"}, "REPLICATE_WEBHOOK_SECRET"),
        ({"TRAINING_INPUT": "{steps: 5}"}, "TRAINING_INPUT"),
        ({"TRAINING_INPUT": "[1]"}, "TRAINING_INPUT"),
        ({"PROGRESS_POLL_SECONDS": "soon"}, "PROGRESS_POLL_SECONDS"),
    ],
)
def test_a_malformed_setting_is_reported_by_name(environ, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(environ)


def test_training_input_overrides_the_contract_defaults():
    settings = load_settings({"TRAINING_INPUT": '{"steps": 1500, "lora_rank": 32}'})

    assert settings.full_training_input()["steps"] == 1500
    assert settings.full_training_input()["lora_rank"] == 32
    assert settings.full_training_input()["optimizer"] == "adamw8bit"


def test_production_without_its_domain_calls_back_on_the_deployment_url():
    settings = load_settings({"VERCEL_ENV": "production", "VERCEL_URL": "app-abc123.vercel.app"})

    assert settings.callback_url("/api/webhooks/replicate") == (
        "https://app-abc123.vercel.app/api/webhooks/replicate"
    )


def test_production_behind_protection_carries_the_bypass_too():
    settings = load_settings(
        {
            "VERCEL_ENV": "production",
            "VERCEL_PROJECT_PRODUCTION_URL": "sselfie.vercel.app",
            "VERCEL_AUTOMATION_BYPASS_SECRET": "bypass123",
        }
    )

    assert settings.callback_url("/cb") == (
        "https://sselfie.vercel.app/cb?x-vercel-protection-bypass=bypass123"
    )


def test_an_unprotected_preview_gets_no_bypass_parameter():
    settings = load_settings({"VERCEL_ENV": "preview", "VERCEL_URL": "app-git-x.vercel.app"})

    assert settings.callback_url("/cb", run="r1") == "https://app-git-x.vercel.app/cb?run=r1"


def test_vercel_development_has_no_callback_url():
    settings = load_settings({"VERCEL_ENV": "development", "VERCEL_URL": "localhost:3000"})

    assert settings.callback_url("/cb") is None


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"TRAINING_START_TIMEOUT_MINUTES": "half an hour"}, "TRAINING_START_TIMEOUT_MINUTES"),
        ({"TRAINING_START_TIMEOUT_MINUTES": "0"}, "TRAINING_START_TIMEOUT_MINUTES"),
        ({"STORAGE_BACKEND": "s3"}, "S3_BUCKET"),
        ({"S3_PUBLIC_BASE_URL": "cdn.example"}, "S3_PUBLIC_BASE_URL"),
        ({"AWS_SECRET_ACCESS_KEY": "changeme"}, "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_a_malformed_lifecycle_or_s3_setting_is_reported_by_name(environ, name):
    with pytest.raises(ConfigError, match=name):
        load_settings(environ)


def test_s3_settings_are_read_from_the_standard_variables():
    settings = load_settings(
        {
            "STORAGE_BACKEND": "s3",
            "S3_BUCKET": "selfies",
            "AWS_ENDPOINT_URL": "https://acc.r2.cloudflarestorage.com",
            "AWS_DEFAULT_REGION": "auto",
            "S3_PUBLIC_BASE_URL": "https://cdn.example/",
        }
    )

    assert settings.storage_backend == "s3"
    assert (settings.s3_bucket, settings.s3_region) == ("selfies", "auto")
    assert settings.s3_endpoint_url == "https://acc.r2.cloudflarestorage.com"
    assert settings.s3_public_base_url == "https://cdn.example"


@pytest.mark.parametrize("name", ["TRAINING_DAILY_LIMIT", "GENERATION_DAILY_LIMIT"])
def test_a_daily_limit_that_is_not_a_whole_number_is_refused_by_name(name):
    with pytest.raises(ConfigError, match=name):
        load_settings({name: "three"})


def test_daily_limits_default_to_three_trainings_and_fifty_images():
    settings = load_settings({})

    assert (settings.training_daily_limit, settings.generation_daily_limit) == (3, 50)


def test_a_jwks_url_beside_an_hs256_secret_is_refused():
    with pytest.raises(ConfigError, match="AUTH_JWKS_URL or AUTH_JWT_SECRET"):
        load_settings({"AUTH_JWKS_URL": "https://idp.test/jwks", "AUTH_JWT_SECRET": "s" * 32})


@pytest.mark.parametrize("url", ["http://idp.example/jwks.json", "idp.example/jwks", "https://"])
def test_a_jwks_url_that_is_not_https_is_refused_by_name(url):
    with pytest.raises(ConfigError, match="AUTH_JWKS_URL"):
        load_settings({"AUTH_JWKS_URL": url})


def test_allowed_origins_are_read_without_trailing_slashes_or_case():
    settings = load_settings({"CORS_ALLOWED_ORIGINS": "https://App.test/, http://localhost:3000"})

    assert settings.cors_allowed_origins == {"https://app.test", "http://localhost:3000"}


APP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@pytest.mark.parametrize(
    "url", ["https://app.example.com/api/sselfie-events", "http://127.0.0.1:3000/hook"]
)
def test_app_events_go_to_an_https_url_or_a_loopback_http_one(url):
    settings = load_settings({"APP_WEBHOOK_URL": url, "APP_WEBHOOK_SECRET": APP_SECRET})

    assert (settings.app_webhook_url, settings.app_webhook_secret) == (url, APP_SECRET)


def test_without_app_webhook_variables_no_events_are_configured():
    assert load_settings({}).app_webhook_url is None


@pytest.mark.parametrize(
    ("environ", "name"),
    [
        ({"APP_WEBHOOK_URL": "http://app.example.com/hook"}, "APP_WEBHOOK_URL"),
        ({"APP_WEBHOOK_URL": "ftp://127.0.0.1/hook"}, "APP_WEBHOOK_URL"),
        ({"APP_WEBHOOK_URL": "http://[::1/hook"}, "APP_WEBHOOK_URL"),
        ({"APP_WEBHOOK_SECRET": "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, "APP_WEBHOOK_SECRET"),
        ({"APP_WEBHOOK_SECRET": "whsec_***"}, "APP_WEBHOOK_SECRET"),
        ({"APP_WEBHOOK_SECRET": "changeme"}, "APP_WEBHOOK_SECRET"),
    ],
)
def test_a_malformed_app_webhook_setting_is_refused_by_name(environ, name):
    complete = {"APP_WEBHOOK_URL": "https://app.example.com/h", "APP_WEBHOOK_SECRET": APP_SECRET}

    with pytest.raises(ConfigError, match=name):
        load_settings({**complete, **environ})


@pytest.mark.parametrize("name", ["APP_WEBHOOK_URL", "APP_WEBHOOK_SECRET"])
def test_one_app_webhook_variable_without_the_other_is_refused_by_name(name):
    complete = {"APP_WEBHOOK_URL": "https://app.example.com/h", "APP_WEBHOOK_SECRET": APP_SECRET}
    other = next(n for n in complete if n != name)

    with pytest.raises(ConfigError, match=name):
        load_settings({other: complete[other]})
