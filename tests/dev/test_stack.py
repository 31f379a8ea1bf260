"""`make dev`'s stack under Vercel's system variables (e.g. after `vercel env pull`)."""

from dev.stack import start_stack
from lib.settings import load_settings
from lib.sync.callbacks import replicate_webhook_url


def test_make_dev_with_vercel_variables_calls_back_to_the_deployment_not_loopback(stack, tmp_path):
    env = {
        "DATABASE_URL": stack.database_url,
        "VERCEL_ENV": "preview",
        "VERCEL_URL": "sselfie-abc123-team.vercel.app",
        "VERCEL_BRANCH_URL": "sselfie-git-feature-team.vercel.app",
        "VERCEL_AUTOMATION_BYPASS_SECRET": "bypass-secret-for-the-test",
    }
    stack = start_stack(env, data_dir=tmp_path, walk_trainings=False)
    try:
        settings = load_settings(env)
    finally:
        stack.close()

    assert replicate_webhook_url(settings, run="7") == (
        "https://sselfie-abc123-team.vercel.app/api/webhooks/replicate"
        "?run=7&x-vercel-protection-bypass=bypass-secret-for-the-test"
    )
