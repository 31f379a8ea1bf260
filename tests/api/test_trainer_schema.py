"""Trainer inputs checked against the trainer version's own schema before anything is spent."""

import copy
import logging

import pytest

from dev.replicate_emulator import fixtures as fx
from tests.helpers import User, start_training, upload_selfies

TRAINER = "ostris/flux-dev-lora-trainer"


def trainings_created(stack) -> int:
    return sum(1 for r in stack.replicate.requests if r.method == "POST" and "/trainings" in r.path)


def sent_input(stack, training_id):
    return stack.replicate.get_object(training_id)["input"]


def renamed(old: str, new: str) -> dict:
    """The trainer's schema with one input renamed."""
    schema = copy.deepcopy(fx.trainer_openapi_schema())
    training_input = schema["components"]["schemas"]["TrainingInput"]
    training_input["properties"][new] = training_input["properties"].pop(old)
    training_input["required"] = [new if n == old else n for n in training_input["required"]]
    return schema


@pytest.fixture
def trainer_version(stack, configure):
    """Publish a trainer version with a given schema and point the settings at it."""
    published = []

    def publish(schema: dict) -> str:
        vid = stack.replicate.publish_trainer_version(schema)
        published.append(vid)
        configure(REPLICATE_TRAINER_VERSION=vid)
        return vid

    yield publish
    for vid in published:  # other tests resolve the trainer's latest version
        stack.replicate.withdraw_trainer_version(vid)


@pytest.mark.parametrize(
    ("configured", "message"),
    [
        ('{"steps": 7000}', "TRAINING_INPUT.steps must be at most 6000"),
        ('{"steps": 2}', "TRAINING_INPUT.steps must be at least 3"),
        ('{"lora_rank": "16"}', "TRAINING_INPUT.lora_rank must be a whole number"),
        ('{"autocaption": "yes"}', "TRAINING_INPUT.autocaption must be true or false"),
        ('{"caption_dropout_rate": 1.5}', "TRAINING_INPUT.caption_dropout_rate must be at most 1"),
    ],
)
def test_a_value_outside_the_schema_is_refused_before_anything_is_written(
    api, stack, user, db, configure, configured, message
):
    urls = upload_selfies(api, user)
    configure(TRAINING_INPUT=configured)
    before = trainings_created(stack)

    response = start_training(api, user, urls)

    assert response.status_code == 503
    assert response.json() == {"error": message, "code": "config_invalid"}
    assert trainings_created(stack) == before
    models = db.execute("SELECT count(*) FROM user_models WHERE user_id = %s", (user.id,))
    assert models.fetchone()["count"] == 0


def test_an_input_the_trainer_lacks_is_left_out_with_a_log_line(
    api, stack, user, configure, caplog
):
    urls = upload_selfies(api, user)
    configure(TRAINING_INPUT='{"num_repeats": 20, "steps": 1200}')

    with caplog.at_level(logging.INFO, logger="lib.training.trainer_inputs"):
        response = start_training(api, user, urls)

    assert response.status_code == 201, response.text
    sent = sent_input(stack, response.json()["trainingId"])
    assert "num_repeats" not in sent and sent["steps"] == 1200
    assert "trainer input left out name=num_repeats" in caplog.text


def test_a_renamed_input_is_left_out_and_the_rest_is_sent(
    api, stack, user, trainer_version, caplog
):
    urls = upload_selfies(api, user)
    vid = trainer_version(renamed("steps", "max_train_steps"))

    with caplog.at_level(logging.INFO, logger="lib.training.trainer_inputs"):
        response = start_training(api, user, urls)

    assert response.status_code == 201, response.text
    training = stack.replicate.get_object(response.json()["trainingId"])
    assert training["version"] == vid
    assert "steps" not in training["input"] and training["input"]["lora_rank"] == 16
    assert f"trainer input left out name=steps trainer={TRAINER}:{vid}" in caplog.text


def test_a_trainer_without_the_zip_input_is_refused(api, stack, user, trainer_version):
    urls = upload_selfies(api, user)
    vid = trainer_version(renamed("input_images", "input_zip"))
    before = trainings_created(stack)

    response = start_training(api, user, urls)

    assert response.status_code == 503
    assert response.json() == {
        "error": f"The trainer {TRAINER}:{vid} has no input_images input",
        "code": "config_invalid",
    }
    assert trainings_created(stack) == before


def test_the_schema_is_fetched_once_per_trainer_version(api, stack, trainer_version):
    vid = trainer_version(fx.trainer_openapi_schema())
    for name in ("first", "second"):
        person = User(f"schema-{name}-{vid[:8]}")
        assert start_training(api, person, upload_selfies(api, person)).status_code == 201

    fetched = [r for r in stack.replicate.requests if r.method == "GET" and r.path.endswith(vid)]
    assert len(fetched) == 1


def without(name: str) -> dict:
    """The trainer's schema without one input."""
    schema = copy.deepcopy(fx.trainer_openapi_schema())
    del schema["components"]["schemas"]["TrainingInput"]["properties"][name]
    return schema


@pytest.mark.parametrize(
    ("gender", "subject"), [("woman", "a woman"), ("Male", "a man"), (None, "a person")]
)
def test_captions_begin_with_the_trigger_word_and_who_it_is(api, stack, user, gender, subject):
    urls = upload_selfies(api, user)

    body = start_training(api, user, urls, gender=gender).json()

    sent = sent_input(stack, body["trainingId"])
    assert sent["autocaption_prefix"] == f"a photo of {body['triggerWord']}, {subject}, "


def test_a_trainer_without_a_caption_prefix_gets_none(api, stack, user, trainer_version):
    urls = upload_selfies(api, user)
    trainer_version(without("autocaption_prefix"))

    response = start_training(api, user, urls)

    assert response.status_code == 201, response.text
    assert "autocaption_prefix" not in sent_input(stack, response.json()["trainingId"])


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ('{"autocaption_prefix": "portrait of {trigger_word}, "}', "portrait of {}, "),
        ('{"autocaption_prefix": ""}', None),
    ],
)
def test_the_caption_prefix_is_configured_through_training_input(
    api, stack, user, configure, configured, expected
):
    urls = upload_selfies(api, user)
    configure(TRAINING_INPUT=configured)

    body = start_training(api, user, urls).json()

    sent = sent_input(stack, body["trainingId"]).get("autocaption_prefix")
    assert sent == (expected.format(body["triggerWord"]) if expected else None)
