"""Progress with the trainer's own step, total and time left, read from its progress line."""

from lib.sync.training_runs import STEP_WRITE_SECONDS
from tests.helpers import go_quiet, start_training, upload_selfies

# The emulator's trainer runs at 1.35 s/it: at 370/1000 tqdm prints [08:19<14:10, …].
ETA_AT_370 = 850


def started(api, user):
    response = start_training(api, user, upload_selfies(api, user))
    assert response.status_code == 201, response.text
    return response.json()


def progress_at(api, stack, user, body, status="processing", step=None):
    if status is not None:
        stack.replicate.advance(body["trainingId"], status, step=step)
        stack.replicate.wait_for_deliveries()
    response = api.get(
        "/api/training/progress", params={"modelId": body["modelId"]}, headers=user.headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def steps(progress):
    """(step, totalSteps, etaSeconds) at the top level; the model carries the same."""
    top = (progress["step"], progress["totalSteps"], progress["etaSeconds"])
    model = progress["model"]
    assert (model["step"], model["totalSteps"], model["etaSeconds"]) == top
    return top


def test_step_total_and_eta_are_null_until_the_trainer_prints_its_bar(api, stack, user):
    body = started(api, user)

    assert steps(progress_at(api, stack, user, body, status=None)) == (None, None, None)


def test_the_first_bar_gives_step_and_total_but_no_eta_yet(api, stack, user):
    body = started(api, user)

    assert steps(progress_at(api, stack, user, body, step=0)) == (0, 1000, None)


def test_the_eta_is_the_trainers_own_estimate(api, stack, user):
    body = started(api, user)

    progress = progress_at(api, stack, user, body, step=370)

    assert progress["progress"] == 37
    assert steps(progress) == (370, 1000, ETA_AT_370)


def stored_step(db, body):
    return db.execute(
        "SELECT step, eta_seconds FROM training_runs WHERE replicate_training_id = %s",
        (body["trainingId"],),
    ).fetchone()


def test_a_new_step_is_written_when_the_last_write_is_a_poll_interval_old(api, stack, user, db):
    body = started(api, user)
    progress_at(api, stack, user, body, step=370)
    go_quiet(db, body["trainingId"], seconds=STEP_WRITE_SECONDS + 1)

    progress = progress_at(api, stack, user, body, step=371)

    assert progress["progress"] == 37
    assert steps(progress)[0] == 371
    assert stored_step(db, body) == {"step": 371, "eta_seconds": 849}


def test_a_new_step_sooner_than_a_poll_interval_waits_unless_the_percentage_moves(
    api, stack, user, db
):
    body = started(api, user)
    progress_at(api, stack, user, body, step=370)

    unseen = progress_at(api, stack, user, body, step=371)
    moved = progress_at(api, stack, user, body, step=380)

    assert (unseen["progress"], steps(unseen)[0]) == (37, 370)
    assert (moved["progress"], steps(moved)[0]) == (38, 380)
    assert stored_step(db, body)["step"] == 380


def test_a_completed_training_has_no_time_left(api, stack, user):
    body = started(api, user)
    progress_at(api, stack, user, body, step=370)

    assert steps(progress_at(api, stack, user, body, status="succeeded")) == (1000, 1000, 0)


def test_a_canceled_training_keeps_its_step_but_has_no_eta(api, stack, user):
    body = started(api, user)
    progress_at(api, stack, user, body, step=370)

    assert steps(progress_at(api, stack, user, body, status="canceled")) == (370, 1000, None)
