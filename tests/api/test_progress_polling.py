"""Progress answers from the database and asks Replicate only when a run has gone quiet."""

from tests.helpers import go_quiet, progress, replicate_gets, started


def test_a_recent_run_is_answered_without_asking_replicate(api, user, stack, quiet_training):
    body = quiet_training

    answer = progress(api, user, body["modelId"])

    assert answer["status"] == "starting"
    assert replicate_gets(stack, body["trainingId"]) == []


def test_a_lost_webhook_is_recovered_through_progress(api, user, stack, db, quiet_training):
    body = quiet_training
    go_quiet(db, body["trainingId"])

    answer = progress(api, user, body["modelId"])

    assert answer["status"] == "completed"
    assert answer["progress"] == 100
    assert answer["model"]["replicateVersionId"]
    assert len(replicate_gets(stack, body["trainingId"])) == 1


def test_replicate_is_asked_at_most_once_per_interval(api, user, stack, db, quiet_training):
    body = quiet_training
    stack.replicate.fail_next("GET", body["trainingId"], 500, times=3)
    go_quiet(db, body["trainingId"])

    answers = [progress(api, user, body["modelId"]) for _ in range(4)]

    assert [a["status"] for a in answers] == ["starting"] * 4  # the stored state, still served
    assert len(replicate_gets(stack, body["trainingId"])) == 1


def test_polling_uses_the_database_clock_and_interval_setting(
    api, user, stack, db, quiet_training, configure
):
    body = quiet_training
    configure(PROGRESS_POLL_SECONDS="3600")
    go_quiet(db, body["trainingId"], seconds=120)

    answer = progress(api, user, body["modelId"])

    assert answer["status"] == "starting"
    assert replicate_gets(stack, body["trainingId"]) == []


def test_a_missing_model_id_is_400(api, user):
    response = api.get("/api/training/progress", headers=user.headers)

    assert response.status_code == 400
    assert response.json()["code"] == "missing_parameter"


def test_a_training_started_without_a_public_url_is_followed_by_polling(
    api, user, stack, db, configure
):
    configure(PUBLIC_BASE_URL=None)
    body = started(api, user)
    stack.replicate.advance(body["trainingId"], "succeeded")
    go_quiet(db, body["trainingId"])

    answer = progress(api, user, body["modelId"])

    create = [r for r in stack.replicate.requests if r.path.endswith("/trainings")][-1]
    assert "webhook" not in create.json
    assert answer["status"] == "completed"


def test_a_quiet_run_is_answered_from_the_database_without_a_replicate_token(
    api, user, stack, db, quiet_training, configure
):
    body = quiet_training
    go_quiet(db, body["trainingId"])
    configure(REPLICATE_API_TOKEN=None)

    answer = progress(api, user, body["modelId"])

    assert answer["status"] == "starting"
    assert replicate_gets(stack, body["trainingId"]) == []
