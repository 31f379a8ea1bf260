"""schemathesis against the local stack: no 5xx, and every answer matches openapi.json."""

import collections
import uuid

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig

from dev.server import OPENAPI_DOCUMENT
from lib.settings import get_settings
from tests.helpers import User, start_training, upload_selfies

MAX_EXAMPLES = 100
# Checked on every response. positive_data_acceptance is off: a schema-valid start body still
# names URLs that are not the caller's uploads, and must be refused.
ON = [
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
    "negative_data_rejection",
    "missing_required_header",
    "ignored_auth",
    "unsupported_method",
    "allow_header_conformance",
]
OFF = ["positive_data_acceptance", "use_after_free", "ensure_resource_availability"]
CHECKS = {name: {"enabled": name in ON} for name in ON + OFF}
coverage: collections.Counter = collections.Counter()
schema = schemathesis.openapi.from_path(
    OPENAPI_DOCUMENT,
    config=SchemathesisConfig.from_dict(
        {
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "mode": "all",  # valid and invalid requests
                "deterministic": True,  # the same cases every run: a merge gate must not flake
                "database": "none",
                # Unknown query parameters and body fields are ignored on purpose (cache
                # busters, Vercel's own parameters, fields a frontend adds): not a failure.
                "allow-extra-parameters": False,
            },
            "checks": CHECKS,
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@pytest.fixture(scope="module")
def schemathesis_user(stack):
    """The user schemathesis calls as: it has uploads and a model in training."""
    import httpx

    user = User(f"schemathesis-{uuid.uuid4().hex[:12]}")
    with httpx.Client(base_url=stack.url, timeout=30) as client:
        start_training(client, user, upload_selfies(client, user, 5))
    with pytest.MonkeyPatch.context() as patch:
        # As deployed: the cron has a secret, which schemathesis never sends (401, not 503).
        patch.setenv("CRON_SECRET", "schemathesis-never-sends-this-secret")
        get_settings.cache_clear()
        yield user
    get_settings.cache_clear()
    print(f"\nschemathesis cases per (operation, phase): {dict(coverage)}")  # shown with -s


@schema.parametrize()
def test_every_operation_answers_as_documented(case, stack, schemathesis_user):
    coverage[(case.operation.label, case.meta.phase.name.value if case.meta else "explicit")] += 1
    case.call_and_validate(base_url=stack.url, headers=schemathesis_user.headers)
