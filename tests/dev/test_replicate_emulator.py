"""The Replicate emulator, driven by the official `replicate` client and plain httpx."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tarfile
import threading
import time
from collections import deque
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import replicate
from PIL import Image
from replicate.exceptions import ReplicateError
from replicate.webhook import WebhookSigningSecret

from dev.replicate_emulator import ReplicateEmulator, sign
from dev.replicate_emulator import fixtures as fx

TOKEN = "r8_test_token"
OWNER = "sselfie-dev"
TRAINER = "ostris/flux-dev-lora-trainer"
DESTINATION = f"{OWNER}/face-lora"
ZIP_URL = "https://example.com/images.zip"
PROGRESS = re.compile(r"flux_train_replicate:\s*(\d+)%\|[^|]*\|\s*(\d+)/(\d+)")


class Receiver:
    """A tiny webhook receiver answering a scripted list of statuses (then 200)."""

    def __init__(self) -> None:
        self.statuses: deque[int] = deque()
        self.received: list[dict[str, Any]] = []
        self.arrived = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver.arrived:
                    status = receiver.statuses.popleft() if receiver.statuses else 200
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append({"path": self.path, "headers": headers, "body": body})
                    receiver.arrived.notify_all()
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook?training=42"
        serve = self.server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def events(self) -> list[str]:
        """Statuses of received payloads, in arrival order."""
        return [json.loads(r["body"])["status"] for r in self.received]


@pytest.fixture
def emulator() -> Iterator[ReplicateEmulator]:
    with ReplicateEmulator(
        token=TOKEN, owner=OWNER, auto_walk=False, webhook_retry_delays=(0.05, 0.1, 0.2)
    ) as emu:
        yield emu


@pytest.fixture
def client(emulator: ReplicateEmulator) -> replicate.Client:
    return replicate.Client(api_token=TOKEN, base_url=emulator.url)


@pytest.fixture
def destination(client: replicate.Client) -> str:
    client.models.create(OWNER, "face-lora", visibility="private", hardware="gpu-t4")
    return DESTINATION


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


def start_training(
    client: replicate.Client, emulator: ReplicateEmulator, **overrides: Any
) -> replicate.training.Training:
    """Create a training on the trainer's latest version with the official client."""
    params: dict[str, Any] = {"input": {"input_images": ZIP_URL, "steps": 40}}
    params["destination"] = DESTINATION
    params.update(overrides)
    return client.trainings.create(model=TRAINER, version=emulator.trainer_version, **params)


def succeeded_training(client: replicate.Client, emulator: ReplicateEmulator) -> dict[str, Any]:
    """A training walked by hand to succeeded."""
    training = start_training(client, emulator)
    return emulator.advance(training.id, "succeeded")


# --- account, secret, models -----------------------------------------------------------------


def test_account_is_the_configured_owner(client: replicate.Client) -> None:
    account = client.accounts.current()
    assert (account.type, account.username, account.name) == ("user", OWNER, "SSELFIE Dev")


def test_default_webhook_secret_is_a_whsec_key_of_24_bytes(
    client: replicate.Client, emulator: ReplicateEmulator
) -> None:
    secret = client.webhooks.default.secret()
    assert secret.key == emulator.webhook_secret
    assert secret.key.startswith("whsec_") and len(secret.key) == len("whsec_") + 32


def test_hardware_list_offers_cpu_and_gpu_t4(client: replicate.Client) -> None:
    assert {"cpu", "gpu-t4"} <= {hardware.sku for hardware in client.hardware.list()}


def test_creating_a_model_twice_is_409_conflict(client: replicate.Client) -> None:
    model = client.models.create(OWNER, "face-lora", visibility="private", hardware="gpu-t4")
    assert (model.owner, model.name, model.latest_version, model.run_count) == (
        OWNER,
        "face-lora",
        None,
        0,
    )
    with pytest.raises(ReplicateError) as caught:
        client.models.create(OWNER, "face-lora", visibility="private", hardware="gpu-t4")
    assert caught.value.status == 409
    assert caught.value.detail == "A model with that name and owner already exists."


def test_a_deleted_model_name_stays_taken(client: replicate.Client) -> None:
    client.models.create(OWNER, "gone", visibility="private", hardware="cpu")
    assert client.models.delete(f"{OWNER}/gone") is True
    with pytest.raises(ReplicateError) as missing:
        client.models.get(f"{OWNER}/gone")
    with pytest.raises(ReplicateError) as conflict:
        client.models.create(OWNER, "gone", visibility="private", hardware="cpu")
    assert (missing.value.status, conflict.value.status) == (404, 409)


def test_creating_a_model_for_another_owner_is_refused(client: replicate.Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.models.create("someone-else", "x", visibility="private", hardware="cpu")
    assert caught.value.status == 403


def test_trainer_version_has_a_training_schema_without_num_repeats(
    client: replicate.Client, emulator: ReplicateEmulator
) -> None:
    trainer = client.models.get(TRAINER)
    assert (trainer.owner, trainer.visibility) == ("ostris", "public")
    assert trainer.latest_version is not None
    assert trainer.latest_version.id == emulator.trainer_version
    assert re.fullmatch(r"[0-9a-f]{64}", emulator.trainer_version)
    schema = client.models.get(TRAINER).versions.get(emulator.trainer_version).openapi_schema
    training_input = schema["components"]["schemas"]["TrainingInput"]
    props = training_input["properties"]
    assert "num_repeats" not in props
    assert training_input["required"] == ["input_images"]
    assert (props["steps"]["minimum"], props["steps"]["maximum"], props["steps"]["default"]) == (
        3,
        6000,
        1000,
    )
    assert (props["lora_rank"]["minimum"], props["lora_rank"]["maximum"]) == (1, 128)
    assert props["resolution"] == {**props["resolution"], "type": "string"}
    assert schema["components"]["schemas"]["TrainingOutput"]["properties"]["weights"]["format"]


def renamed_steps_schema() -> dict[str, Any]:
    """The trainer's schema with `steps` renamed to `max_train_steps` (at most 100)."""
    schema = fx.trainer_openapi_schema()
    props = schema["components"]["schemas"]["TrainingInput"]["properties"]
    props["max_train_steps"] = {**props.pop("steps"), "maximum": 100}
    return schema


def test_a_published_trainer_version_is_the_latest_and_checks_its_own_schema(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    vid = emulator.publish_trainer_version(renamed_steps_schema())

    assert client.models.get(TRAINER).latest_version.id == vid
    props = client.models.get(TRAINER).versions.get(vid).openapi_schema["components"]
    assert "steps" not in props["schemas"]["TrainingInput"]["properties"]
    too_many = {"input_images": ZIP_URL, "max_train_steps": 500}
    on_new = client.trainings.create(
        model=TRAINER, version=vid, input=too_many, destination=destination
    )
    on_old = start_training(client, emulator, input=too_many)
    assert emulator.advance(on_new.id, "processing")["status"] == "failed"
    assert emulator.advance(on_old.id, "processing")["status"] == "processing"


def test_a_withdrawn_trainer_version_is_gone(
    client: replicate.Client, emulator: ReplicateEmulator
) -> None:
    vid = emulator.publish_trainer_version(renamed_steps_schema())

    emulator.withdraw_trainer_version(vid)

    assert client.models.get(TRAINER).latest_version.id == emulator.trainer_version
    with pytest.raises(ReplicateError, match="could not be found"):
        client.models.get(TRAINER).versions.get(vid)


def test_model_with_versions_cannot_be_deleted_until_its_version_is(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    version_id = succeeded_training(client, emulator)["output"]["version"].split(":")[1]
    with pytest.raises(ReplicateError) as caught:
        client.models.delete(destination)
    assert caught.value.status == 409
    response = httpx.delete(
        f"{emulator.url}/v1/models/{destination}/versions/{version_id}",
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 202
    assert client.models.get(destination).latest_version is None
    assert client.models.delete(destination) is True


# --- errors ----------------------------------------------------------------------------------


def test_bad_token_is_401_problem_json(emulator: ReplicateEmulator) -> None:
    wrong = replicate.Client(api_token="r8_wrong", base_url=emulator.url)
    with pytest.raises(ReplicateError) as caught:
        wrong.accounts.current()
    assert (caught.value.status, caught.value.title) == (401, "Unauthenticated")
    assert caught.value.detail == "You did not pass a valid authentication token"
    missing = httpx.get(f"{emulator.url}/v1/account")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    token_scheme = httpx.get(
        f"{emulator.url}/v1/account", headers={"Authorization": f"Token {TOKEN}"}
    )
    assert token_scheme.status_code == 200


def test_json_answers_carry_content_type_and_ratelimit_headers(emulator: ReplicateEmulator) -> None:
    response = httpx.get(f"{emulator.url}/v1/account", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.headers["content-type"] == "application/json"
    assert int(response.headers["ratelimit-remaining"]) > 0
    assert "ratelimit-reset" in response.headers


def test_fail_next_500_fails_once_then_requests_succeed(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    emulator.fail_next("POST", r"/trainings$", 500, detail="boom")
    with pytest.raises(ReplicateError) as caught:
        start_training(client, emulator)
    assert (caught.value.status, caught.value.detail) == (500, "boom")
    assert start_training(client, emulator).status == "starting"


def test_fail_next_429_on_post_is_not_retried_by_the_client(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    emulator.fail_next("POST", r"/trainings$", 429)
    with pytest.raises(ReplicateError) as caught:
        start_training(client, emulator)
    assert caught.value.status == 429
    assert caught.value.detail == "Request was throttled. Your rate limit resets in ~30s."
    posts = [r for r in emulator.requests if r.method == "POST" and r.path.endswith("/trainings")]
    assert len(posts) == 1


def test_fail_next_429_carries_retry_after_and_ratelimit_headers(
    emulator: ReplicateEmulator,
) -> None:
    emulator.fail_next("GET", r"^/v1/account$", 429, headers={"retry-after": "0"}, times=2)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    first, second, third = (httpx.get(f"{emulator.url}/v1/account", headers=auth) for _ in "123")
    assert (first.status_code, second.status_code, third.status_code) == (429, 429, 200)
    assert first.headers["retry-after"] == "0"
    assert first.headers["ratelimit-remaining"] == "0"
    assert first.json() == {
        "detail": "Request was throttled. Your rate limit resets in ~30s.",
        "status": 429,
    }


# --- trainings -------------------------------------------------------------------------------


def test_trainings_create_starts_and_records_the_exact_body(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    sent = {"input_images": ZIP_URL, "trigger_word": "TOK", "steps": 40, "unknown_key": 1}
    training = start_training(
        client,
        emulator,
        input=sent,
        webhook="https://app.example.com/api/replicate-webhook?training=1",
        webhook_events_filter=["start", "completed"],
    )
    assert training.status == "starting"
    assert (training.model, training.version) == (TRAINER, emulator.trainer_version)
    assert re.fullmatch(r"[0-9a-z]{26}", training.id)
    assert training.urls is not None
    assert training.urls["get"] == f"{emulator.url}/v1/predictions/{training.id}"
    recorded = emulator.requests[-1]
    assert recorded.path == f"/v1/models/{TRAINER}/versions/{emulator.trainer_version}/trainings"
    assert recorded.json == {
        "input": sent,
        "destination": destination,
        "webhook": "https://app.example.com/api/replicate-webhook?training=1",
        "webhook_events_filter": ["start", "completed"],
    }
    assert recorded.headers["authorization"] == f"Bearer {TOKEN}"
    raw = emulator.get_object(training.id)
    assert raw["logs"] == "" and raw["output"] is None and raw["data_removed"] is False
    assert raw["created_at"].endswith("Z") and raw["metrics"] == {}
    assert (raw["started_at"], raw["completed_at"], raw["error"]) == (None, None, None)


def test_training_for_missing_destination_is_404_problem_json(
    client: replicate.Client, emulator: ReplicateEmulator
) -> None:
    with pytest.raises(ReplicateError) as caught:
        start_training(client, emulator, destination=f"{OWNER}/does-not-exist")
    assert caught.value.status == 404
    assert caught.value.detail == "The specified training destination does not exist"


def test_training_on_unknown_trainer_version_is_422(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.trainings.create(
            model=TRAINER,
            version="0" * 64,
            input={"input_images": ZIP_URL},
            destination=destination,
        )
    assert (caught.value.status, caught.value.title) == (422, "Invalid version or not permitted")


def test_out_of_range_steps_fails_the_training_after_creation(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    training = start_training(client, emulator, input={"input_images": ZIP_URL, "steps": 1})
    assert training.status == "starting"
    failed = emulator.advance(training.id, "processing")
    assert failed["status"] == "failed"
    assert failed["started_at"] == failed["completed_at"]
    prefix = "Prediction input failed validation: "
    assert failed["error"].startswith(prefix)
    detail = json.loads(failed["error"][len(prefix) :])["detail"][0]
    assert detail["loc"] == ["body", "input", "steps"]
    assert detail["msg"] == "ensure this value is greater than or equal to 3"


def test_processing_logs_look_like_the_flux_trainer_with_decoy_bars(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    training = start_training(client, emulator)
    emulator.advance(training.id, "processing")
    emulator.advance(training.id, "processing", step=12)
    fetched = client.trainings.get(training.id)
    assert fetched.status == "processing" and fetched.started_at
    logs = fetched.logs or ""
    assert "Extracted 10 files from zip to input_images\n" in logs
    assert "# Running job: flux_train_replicate\n" in logs
    assert "flux_train_replicate:   0%|          | 0/40 [00:00<?, ?it/s]\n" in logs
    assert re.search(r"^100%\|██████████\| 10/10 \[", logs, re.M)
    assert re.search(r"^Caching latents: 100%\|██████████\| 10/10 \[", logs, re.M)
    assert logs.endswith("\n")
    last = PROGRESS.findall(logs)[-1]
    assert last == ("30", "12", "40")
    assert re.search(
        r"\| 12/40 \[00:16<00:37,  1\.35s/it, lr: 4\.0e-04 loss: \d\.\d{3}e-0\d\]\n$", logs
    )
    # The client's own parser is fooled by the decoy bar, which is why callers need their own.
    assert replicate.prediction.Prediction.Progress.parse(logs).percentage == 1.0


def test_succeeded_training_output_version_is_parsed_by_the_client(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    training = start_training(client, emulator)
    emulator.advance(training.id, "succeeded")
    done = client.trainings.get(training.id)
    assert done.status == "succeeded" and done.destination == destination
    version = done.output["version"]
    assert re.fullmatch(rf"{destination}:[0-9a-f]{{64}}", version)
    assert done.output["weights"] == f"{emulator.url}/delivery/{training.id}/trained_model.tar"
    assert client.models.get(destination).latest_version.id == version.split(":")[1]
    raw = emulator.get_object(training.id)
    assert set(raw["metrics"]) == {"predict_time", "total_time"}
    assert PROGRESS.findall(raw["logs"])[-1] == ("100", "40", "40")
    done.reload()
    assert done.status == "succeeded"


def test_weights_tar_downloads_and_contains_lora_safetensors(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    weights = succeeded_training(client, emulator)["output"]["weights"]
    response = httpx.get(weights)
    assert response.headers["content-type"] == "application/x-tar"
    assert int(response.headers["content-length"]) == len(response.content)
    with tarfile.open(fileobj=io.BytesIO(response.content)) as tar:
        names = tar.getnames()
        member = tar.extractfile("output/flux_train_replicate/lora.safetensors")
        assert member is not None
        lora = member.read()
    assert "output/flux_train_replicate/config.yaml" in names
    header_size = int.from_bytes(lora[:8], "little")
    header = json.loads(lora[8 : 8 + header_size])
    assert len(lora) > 2048 and any(key.endswith("lora_A.weight") for key in header)


def test_cancel_makes_the_training_canceled_and_is_a_no_op_afterwards(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    training = start_training(client, emulator)
    emulator.advance(training.id, "processing", step=3)
    canceled = client.trainings.cancel(training.id)
    assert canceled.status == "canceled" and canceled.completed_at
    again = client.trainings.cancel(training.id)
    assert (again.status, again.completed_at) == ("canceled", canceled.completed_at)
    with pytest.raises(ValueError):
        emulator.advance(training.id, "succeeded")


def test_forgotten_training_answers_404_on_both_paths(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    training = start_training(client, emulator)
    assert client.predictions.get(training.id).status == "starting"
    emulator.forget(training.id)
    for fetch in (client.trainings.get, client.predictions.get):
        with pytest.raises(ReplicateError) as caught:
            fetch(training.id)
        assert caught.value.status == 404
        assert caught.value.detail == "The requested resource could not be found"


def test_trainings_list_pages_by_100_with_absolute_next_urls(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    ids = [start_training(client, emulator).id for _ in range(101)]
    first = client.trainings.list()
    assert len(first) == 100 and first[0].id == ids[-1]
    assert first.next and first.next.startswith(f"{emulator.url}/v1/trainings?cursor=")
    second = client.trainings.list(first.next)
    assert [t.id for t in second] == [ids[0]] and second.next is None


# --- predictions -----------------------------------------------------------------------------


def test_prediction_on_the_trained_version_returns_real_images(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    version = succeeded_training(client, emulator)["output"]["version"]
    prediction = client.predictions.create(
        version=version,
        input={"prompt": "a photo of TOK", "num_outputs": 2, "output_format": "png"},
    )
    assert (prediction.status, prediction.model) == ("starting", destination)
    emulator.advance(prediction.id, "succeeded")
    prediction.reload()
    assert prediction.status == "succeeded" and len(prediction.output) == 2
    pixels = []
    for url in prediction.output:
        response = httpx.get(url)
        assert response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert (image.format, image.size) == ("PNG", (64, 64))
        pixels.append(image.convert("RGB").getpixel((0, 0)))
    assert pixels[0] != pixels[1]


def test_finished_jobs_report_billed_seconds_like_replicate(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    version = succeeded_training(client, emulator)["output"]["version"]
    ran = client.predictions.create(version=version, input={"prompt": "TOK"})
    emulator.advance(ran.id, "processing")
    emulator.advance(ran.id, "failed")
    queued = client.predictions.create(version=version, input={"prompt": "TOK"})
    emulator.advance(queued.id, "canceled")

    ran_metrics = client.predictions.get(ran.id).metrics
    assert set(ran_metrics) == {"predict_time", "total_time"}
    assert 0 <= ran_metrics["predict_time"] <= ran_metrics["total_time"]
    assert set(client.predictions.get(queued.id).metrics) == {"total_time"}  # never ran


def test_a_model_reports_its_hardware_and_a_flux_fine_tune_runs_on_an_h100(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    hardware = client._request("GET", f"/v1/models/{destination}").json()["hardware"]
    assert hardware == "gpu-t4"  # as created

    succeeded_training(client, emulator)

    assert client._request("GET", f"/v1/models/{destination}").json()["hardware"] == "gpu-h100"
    assert client._request("GET", f"/v1/models/{TRAINER}").json()["hardware"] == "gpu-h100"


def test_prediction_with_bare_version_id_defaults_to_one_webp(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    version_id = succeeded_training(client, emulator)["output"]["version"].split(":")[1]
    prediction = client.predictions.create(version=version_id, input={"prompt": "TOK"})
    done = emulator.advance(prediction.id, "succeeded")
    assert [url.rsplit("/", 1)[1] for url in done["output"]] == ["out-0.webp"]
    assert httpx.get(done["output"][0]).headers["content-type"] == "image/webp"


def test_prediction_without_prompt_is_422_with_invalid_fields(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    version = succeeded_training(client, emulator)["output"]["version"]
    response = httpx.post(
        f"{emulator.url}/v1/predictions",
        json={"version": version, "input": {}},
        headers={"Authorization": f"Bearer {TOKEN}"},
    )
    assert response.status_code == 422
    assert response.json()["invalid_fields"] == [
        {"type": "required", "field": "input", "description": "prompt is required"}
    ]
    assert response.json()["detail"] == "- input: prompt is required\n"


def test_prediction_on_unknown_version_is_422(client: replicate.Client) -> None:
    with pytest.raises(ReplicateError) as caught:
        client.predictions.create(version="f" * 64, input={"prompt": "x"})
    assert caught.value.status == 422
    assert caught.value.title == "Invalid version or not permitted"


# --- webhooks --------------------------------------------------------------------------------


def test_signing_matches_replicates_known_answer_vector() -> None:
    signature = sign(
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        b'{"test": 2432232314}',
    )
    assert signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_webhooks_are_signed_and_validate_with_the_official_helper(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str, receiver: Receiver
) -> None:
    training = start_training(client, emulator, webhook=receiver.url)
    emulator.advance(training.id, "processing", step=2)
    emulator.advance(training.id, "succeeded")
    assert emulator.wait_for_deliveries()
    assert [d.event for d in emulator.deliveries] == [
        "start",
        "logs",
        "logs",
        "output",
        "completed",
    ]
    # `output` goes out before the status turns terminal, as Cog sends it.
    assert receiver.events() == ["processing"] * 4 + ["succeeded"]
    secret = WebhookSigningSecret(key=client.webhooks.default.secret().key)
    for got in receiver.received:
        replicate.webhooks.validate(
            headers=got["headers"], body=got["body"].decode(), secret=secret
        )
        assert got["path"] == "/hook?training=42"
        assert got["headers"]["user-agent"] == "Replicate-Webhook/1.0"
        assert got["headers"]["content-type"] == "application/json"
    assert len({d.webhook_id for d in emulator.deliveries}) == 5
    assert json.loads(receiver.received[-1]["body"]) == emulator.get_object(training.id)


def test_completed_webhook_is_retried_with_the_same_id_until_2xx(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str, receiver: Receiver
) -> None:
    training = start_training(client, emulator, webhook=receiver.url)
    receiver.statuses.extend([500])
    emulator.advance(training.id, "failed", error="CUDA out of memory")
    assert emulator.wait_for_deliveries()
    completed = [d for d in emulator.deliveries if d.event == "completed"]
    assert [d.status for d in completed] == [500, 200]
    assert [d.attempt for d in completed] == [1, 2]
    assert completed[0].webhook_id == completed[1].webhook_id
    assert completed[0].body == completed[1].body


def test_intermediate_webhooks_are_not_retried(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str, receiver: Receiver
) -> None:
    training = start_training(client, emulator, webhook=receiver.url)
    receiver.statuses.extend([503, 503])
    emulator.advance(training.id, "processing")
    assert emulator.wait_for_deliveries()
    assert [(d.event, d.status) for d in emulator.deliveries] == [("start", 503), ("logs", 503)]


def test_completed_webhook_to_an_unreachable_url_records_none_statuses(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    training = start_training(client, emulator, webhook="http://127.0.0.1:9/hook")
    emulator.advance(training.id, "canceled")
    assert emulator.wait_for_deliveries()
    assert [(d.event, d.status) for d in emulator.deliveries] == [("completed", None)] * 4


def test_webhook_events_filter_is_respected(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str, receiver: Receiver
) -> None:
    training = start_training(
        client, emulator, webhook=receiver.url, webhook_events_filter=["start", "completed"]
    )
    emulator.advance(training.id, "processing", step=5)
    emulator.advance(training.id, "processing", step=10)
    emulator.advance(training.id, "succeeded")
    assert emulator.wait_for_deliveries()
    assert [d.event for d in emulator.deliveries] == ["start", "completed"]


def test_dropped_webhooks_change_state_without_sending(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str, receiver: Receiver
) -> None:
    training = start_training(client, emulator, webhook=receiver.url)
    emulator.drop_webhooks = True
    emulator.advance(training.id, "succeeded")
    assert emulator.wait_for_deliveries()
    assert client.trainings.get(training.id).status == "succeeded"
    assert emulator.deliveries == [] and receiver.received == []


def test_resend_posts_a_byte_identical_duplicate(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str, receiver: Receiver
) -> None:
    training = start_training(client, emulator, webhook=receiver.url)
    emulator.advance(training.id, "succeeded")
    assert emulator.wait_for_deliveries()
    duplicate = emulator.resend(training.id)
    first, second = receiver.received[-2:]
    assert duplicate.status == 200
    assert (first["body"], first["headers"]["webhook-id"]) == (
        second["body"],
        second["headers"]["webhook-id"],
    )
    assert first["headers"]["webhook-signature"] == second["headers"]["webhook-signature"]


def test_a_slow_receiver_does_not_block_the_api(
    client: replicate.Client, emulator: ReplicateEmulator, destination: str
) -> None:
    gate = threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["content-length"]))
            gate.wait(5)
            self.send_response(200)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Slow)
    serve = server.serve_forever
    threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/"
        training = start_training(client, emulator, webhook=url)
        began = time.monotonic()
        emulator.advance(training.id, "processing", step=3)
        assert client.trainings.get(training.id).status == "processing"
        assert time.monotonic() - began < 1.0
        gate.set()
        assert emulator.wait_for_deliveries()
        assert [d.event for d in emulator.deliveries] == ["start", "logs"]
    finally:
        gate.set()
        server.shutdown()
        server.server_close()


# --- automatic walking and CLI ---------------------------------------------------------------


def test_auto_walk_reaches_succeeded_with_growing_logs_and_webhooks(receiver: Receiver) -> None:
    with ReplicateEmulator(
        token=TOKEN, starting_seconds=0.2, processing_seconds=1.2, log_interval=0.1
    ) as emu:
        client = replicate.Client(api_token=TOKEN, base_url=emu.url)
        client.models.create(OWNER, "face-lora", visibility="private", hardware="gpu-t4")
        training = start_training(client, emu, webhook=receiver.url)
        seen: list[str] = []
        deadline = time.monotonic() + 10
        while training.status not in ("succeeded", "failed", "canceled"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
            training.reload()
            seen.append(training.status)
        assert training.status == "succeeded" and "processing" in seen
        assert PROGRESS.findall(training.logs or "")[-1] == ("100", "40", "40")
        prediction = client.predictions.create(
            version=training.output["version"], input={"prompt": "TOK"}
        )
        prediction.wait()
        assert prediction.status == "succeeded" and len(prediction.output) == 1
        assert emu.wait_for_deliveries()
        events = [d.event for d in emu.deliveries if d.object_id == training.id]
        assert events[0] == "start" and events[-2:] == ["output", "completed"]
        assert 2 <= events.count("logs") <= 4  # throttled to one per 500 ms


def test_cli_help_describes_the_emulator() -> None:
    root = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "dev.replicate_emulator", "--help"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    )
    assert "--port" in result.stdout and "Replicate" in result.stdout
