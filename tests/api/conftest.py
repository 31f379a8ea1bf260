"""Fixtures shared by the endpoint tests."""

import pytest

from tests.helpers import started


@pytest.fixture
def quiet_training(api, user, stack):
    """A training whose every webhook was lost, then succeeded at Replicate."""
    body = started(api, user)
    stack.replicate.drop_webhooks = True
    try:
        stack.replicate.advance(body["trainingId"], "processing", step=400)
        stack.replicate.advance(body["trainingId"], "succeeded")
    finally:
        stack.replicate.drop_webhooks = False
    return body
