"""The state timeline of trainings and predictions: logs, outputs, terminal states."""

from __future__ import annotations

import secrets
import time
from datetime import UTC, datetime

from dev.replicate_emulator import fixtures as fx
from dev.replicate_emulator.protocol import (
    FINE_TUNE_HARDWARE,
    TERMINAL,
    _Job,
    _now,
    _version_json,
)


class _Walker:
    """Walks jobs starting -> processing -> terminal (mixed into `ReplicateEmulator`)."""

    # --- state walking -----------------------------------------------------------------------

    def _walk(self, job: _Job) -> None:
        """Background timeline: starting -> processing (logs grow) -> succeeded/failed."""
        fast = job.kind == "prediction"
        starting = min(self.starting_seconds, 0.5) if fast else self.starting_seconds
        processing = min(self.processing_seconds, 1.5) if fast else self.processing_seconds
        if job.halt.wait(starting):
            return
        with self._lock:
            if job.data["status"] != "starting":
                return
            if job.invalid:
                self._fail(job, job.invalid)
                return
            self._append_logs(job, self._begin(job), throttle=True)
        began = time.monotonic()
        while True:
            remaining = processing - (time.monotonic() - began)
            if job.halt.wait(max(0.0, min(self.log_interval, remaining))):
                return
            done = min(1.0, (time.monotonic() - began) / processing) if processing > 0 else 1.0
            with self._lock:
                if job.data["status"] != "processing":
                    return
                if done >= 1.0:
                    self._succeed(job, [], throttle=True)
                    return
                lines = self._progress_lines(job, int(done * job.total))
                self._append_logs(job, lines, throttle=True)

    def _begin(self, job: _Job) -> list[str]:
        """starting -> processing: send `start`; return the log head to print."""
        job.data.update(status="processing", started_at=_now())
        job.started = time.monotonic()
        self._emit(job, "start")
        values = job.data["input"]
        if job.kind == "training":
            lines = fx.training_log_head(values, datetime.now(UTC))
            lines += fx.decoy_bars(fx.count_zip_entries(str(values.get("input_images", ""))) or 10)
        else:
            lines = fx.prediction_log_head(values)
        return lines + self._progress_lines(job, 0)

    def _progress_lines(self, job: _Job, step: int) -> list[str]:
        """One progress line per step not yet printed, up to `step`."""
        step = min(step, job.total)
        lines = [self._progress_line(job, n) for n in range(job.step + 1, step + 1)]
        job.step = max(job.step, step)
        return lines

    def _progress_line(self, job: _Job, step: int) -> str:
        """The trainer's or the predictor's progress line for one step."""
        if job.kind == "training":
            return fx.training_progress_line(step, job.total, job.data["id"])
        return fx.prediction_progress_line(step, job.total)

    def _append_logs(self, job: _Job, lines: list[str], throttle: bool) -> None:
        """Grow logs and send a `logs` webhook (at most every 500 ms when throttled)."""
        if not lines:
            return
        job.data["logs"] += "".join(lines)
        now = time.monotonic()
        if not throttle or now - job.last_logs_sent >= 0.5:
            job.last_logs_sent = now
            self._emit(job, "logs")

    def _succeed(self, job: _Job, lines: list[str], *, throttle: bool) -> None:
        """Finish successfully: complete logs, send `output`, then `completed`."""
        lines = lines + self._progress_lines(job, job.total)
        if job.kind == "training":
            lines += fx.training_log_tail(job.total)
            job.data["output"] = self._training_output(job)
        else:
            outputs = job.data["input"].get("num_outputs", 1)
            lines += fx.prediction_log_tail(outputs)
            job.data["output"] = self._prediction_output(job, outputs)
        self._append_logs(job, lines, throttle)
        self._emit(job, "output")
        self._finish(job, "succeeded")

    def _training_output(self, job: _Job) -> dict[str, str]:
        """Push a new version to the destination and publish the weights tar."""
        vid = secrets.token_hex(32)
        if job.destination in self._models:
            schema = fx.flux_lora_openapi_schema()
            self._versions[job.destination].append(_version_json(vid, schema))
            # Whatever it was created with, a Flux fine-tune runs on an H100.
            self._models[job.destination]["hardware"] = FINE_TUNE_HARDWARE
        path = f"/delivery/{job.data['id']}/trained_model.tar"
        tar = fx.trained_model_tar(job.data["id"], job.data["input"])
        self._files[path] = ("application/x-tar", tar)
        return {"version": f"{job.destination}:{vid}", "weights": f"{self.url}{path}"}

    def _prediction_output(self, job: _Job, outputs: int) -> list[str]:
        """Publish `num_outputs` real images and return their URLs."""
        fmt = job.data["input"].get("output_format", "webp")
        urls = []
        for index in range(outputs):
            path = f"/delivery/{job.data['id']}/out-{index}.{fx.image_extension(fmt)}"
            image, content_type = fx.output_image(job.data["id"], index, fmt)
            self._files[path] = (content_type, image)
            urls.append(f"{self.url}{path}")
        return urls

    def _fail(self, job: _Job, error: str) -> None:
        """Finish as failed with `error`."""
        job.data["error"] = error
        self._finish(job, "failed")

    def _cancel(self, job: _Job) -> None:
        """Cancel; a no-op on terminal objects."""
        if job.data["status"] not in TERMINAL:
            self._finish(job, "canceled")

    def _finish(self, job: _Job, status: str) -> None:
        """Enter a terminal state, stamp times, send output/completed webhooks."""
        now = _now()
        job.data.update(status=status, completed_at=now)
        if status != "aborted":  # an aborted job never started
            job.data["started_at"] = job.data["started_at"] or now
        # Billed seconds (predict_time) only for a job that ran; total_time includes the queue.
        metrics = {"predict_time": round(time.monotonic() - job.started, 6)} if job.started else {}
        metrics["total_time"] = round(time.monotonic() - job.created, 6)
        job.data["metrics"] = metrics
        job.halt.set()
        self._emit(job, "completed")
        self._changed.notify_all()
