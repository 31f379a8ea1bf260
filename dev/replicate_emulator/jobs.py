"""Routes that create, read, cancel and list trainings and predictions."""

from __future__ import annotations

import base64
import copy
import re
import threading
from typing import Any

from dev.replicate_emulator import fixtures as fx
from dev.replicate_emulator.protocol import (
    _INVALID_VERSION,
    NOT_FOUND,
    TERMINAL,
    TRAINER_MODEL,
    ApiError,
    _Job,
    _new_id,
    _now,
    _raise_invalid,
    _Request,
    _webhook_settings,
)


class _JobRoutes:
    """Training and prediction routes (mixed into `ReplicateEmulator`)."""

    # --- trainings and predictions -----------------------------------------------------------

    def _create_training(self, req: _Request, owner: str, name: str, vid: str) -> tuple[int, Any]:
        """POST a training; input is validated later, like Replicate."""
        key = f"{owner}/{name}"
        versions = self._versions.get(key, []) if key in self._models else []
        version = next((v for v in versions if v["id"] == vid), None)
        if key != TRAINER_MODEL or version is None:
            raise ApiError(422, _INVALID_VERSION[1], _INVALID_VERSION[0])
        body = req.fields
        destination = body.get("destination")
        owned = isinstance(destination, str) and destination.startswith(self.owner + "/")
        if not owned or destination not in self._models:
            raise ApiError(404, "The specified training destination does not exist")
        values = body.get("input")
        if not isinstance(values, dict):
            _raise_invalid([{"field": "input", "kind": "required"}], "(root)")
        webhook, events = _webhook_settings(body)
        schema = version["openapi_schema"]["components"]["schemas"]["TrainingInput"]
        problems = fx.find_input_problems(schema, values)
        steps = values.get("steps", 1000)
        total = steps if isinstance(steps, int) and not problems else 1000
        job = self._new_job("training", key, vid, values, webhook, events, total)
        job.destination = destination
        job.invalid = fx.training_validation_error(problems) if problems else None
        self._launch(job)
        return 201, self._render(job, view="create")

    def _create_prediction(self, req: _Request) -> tuple[int, Any]:
        """POST /v1/predictions with `<id>` or `owner/name:<id>`."""
        body = req.fields
        ref = body.get("version")
        pattern = r"(?:([^/:]+/[^/:]+):)?([0-9a-f]{64})"
        match = re.fullmatch(pattern, ref) if isinstance(ref, str) else None
        key = self._version_owner(match.group(2)) if match else None
        if match is None or key is None or match.group(1) not in (None, key):
            raise ApiError(422, _INVALID_VERSION[1], _INVALID_VERSION[0])
        return self._start_prediction(req, key, match.group(2))

    def _create_model_prediction(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """POST a prediction on a model's latest version."""
        key = self._model_key(owner, name)
        if key == TRAINER_MODEL or not self._versions[key]:
            raise ApiError(404, NOT_FOUND)
        return self._start_prediction(req, key, self._versions[key][-1]["id"])

    def _version_owner(self, vid: str) -> str | None:
        """The model a trained (non-trainer) version belongs to."""
        for key, versions in self._versions.items():
            if key != TRAINER_MODEL and any(v["id"] == vid for v in versions):
                return key
        return None

    def _start_prediction(self, req: _Request, key: str, vid: str) -> tuple[int, Any]:
        """Validate input synchronously, create the prediction, honour `Prefer: wait`."""
        body = req.fields
        values = body.get("input")
        if not isinstance(values, dict):
            _raise_invalid([{"field": "input", "kind": "required"}], "(root)")
        version = next(v for v in self._versions[key] if v["id"] == vid)
        schema = version["openapi_schema"]["components"]["schemas"]["Input"]
        _raise_invalid(fx.find_input_problems(schema, values))
        webhook, events = _webhook_settings(body)
        steps = values.get("num_inference_steps", 28)
        job = self._new_job("prediction", key, vid, values, webhook, events, steps)
        self._launch(job)
        wait = re.fullmatch(r"wait(?:=(\d+))?", req.headers.get("prefer", "").strip())
        if wait:
            seconds = min(int(wait.group(1) or 60), 60)
            self._changed.wait_for(lambda: job.data["status"] in TERMINAL, seconds)
        return 201, self._render(job)

    def _new_job(
        self,
        kind: str,
        model: str,
        version: str,
        values: dict[str, Any],
        webhook: str | None,
        events: frozenset[str],
        total: int,
    ) -> _Job:
        """Register a new object in `starting`."""
        job_id = _new_id()
        data = {
            "id": job_id,
            "model": model,
            "version": version,
            "input": values,
            "logs": "",
            "output": None,
            "data_removed": False,
            "error": None,
            "status": "starting",
            "created_at": _now(),
            "started_at": None,
            "completed_at": None,
            "metrics": {},
        }
        self._seq += 1
        job = _Job(kind, data, webhook, events, self._seq, total)
        self._jobs[job_id] = job
        return job

    def _launch(self, job: _Job) -> None:
        """Start the background walker when auto_walk is on."""
        if self.auto_walk:
            threading.Thread(target=self._walk, args=(job,), daemon=True).start()

    def _job(self, id: str, kind: str | None = None) -> _Job:
        """An existing object (optionally of one kind), else 404."""
        job = self._jobs.get(id)
        if not job or (kind and job.kind != kind):
            raise ApiError(404, NOT_FOUND)
        return job

    def _get_training(self, req: _Request, id: str) -> tuple[int, Any]:
        """GET /v1/trainings/{id}."""
        return 200, self._render(self._job(id, "training"))

    def _get_prediction(self, req: _Request, id: str) -> tuple[int, Any]:
        """GET /v1/predictions/{id} (resolves trainings too)."""
        return 200, self._render(self._job(id), view="predictions")

    def _cancel_training(self, req: _Request, id: str) -> tuple[int, Any]:
        """POST /v1/trainings/{id}/cancel."""
        job = self._job(id, "training")
        self._cancel(job)
        return 200, self._render(job)

    def _cancel_prediction(self, req: _Request, id: str) -> tuple[int, Any]:
        """POST /v1/predictions/{id}/cancel (resolves trainings too)."""
        job = self._job(id)
        self._cancel(job)
        return 200, self._render(job, view="predictions")

    def _list_trainings(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/trainings."""
        return 200, self._page("training", req)

    def _list_predictions(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/predictions."""
        return 200, self._page("prediction", req)

    def _page(self, kind: str, req: _Request) -> dict[str, Any]:
        """Newest-first page with absolute `next` URLs and opaque cursors."""
        cursor = req.query.get("cursor")
        try:
            below = int(base64.urlsafe_b64decode(cursor).decode()[2:]) if cursor else None
        except ValueError as exc:
            raise ApiError(400, "Invalid cursor") from exc
        jobs = [j for j in reversed(self._jobs.values()) if j.kind == kind]
        jobs = [j for j in jobs if below is None or j.seq <= below]
        page, rest = jobs[: self.page_size], jobs[self.page_size :]
        next_url = None
        if rest:
            token = base64.urlsafe_b64encode(f"s={rest[0].seq}".encode()).decode()
            next_url = f"{self.url}{req.path}?cursor={token}"
        results = [self._render(j) for j in page]
        return {"next": next_url, "previous": None, "results": results}

    def _render(self, job: _Job, view: str | None = None) -> dict[str, Any]:
        """Public JSON of an object; `view` (create/trainings/predictions) picks the urls."""
        data = copy.deepcopy(job.data)
        view = view or ("trainings" if job.kind == "training" else "predictions")
        # Create answers point at /v1/predictions even for trainings, as Replicate's do.
        collection = "trainings" if view == "trainings" else "predictions"
        base = f"{self.url}/v1/{collection}/{job.data['id']}"
        data["urls"] = {
            "get": base,
            "cancel": f"{base}/cancel",
            "web": f"https://replicate.com/p/{job.data['id']}",
        }
        return data
