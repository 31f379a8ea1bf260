"""Routes for the account, hardware, models and model versions."""

from __future__ import annotations

import re
from typing import Any

from dev.replicate_emulator import fixtures as fx
from dev.replicate_emulator.protocol import (
    FINE_TUNE_HARDWARE,
    HARDWARE,
    NOT_FOUND,
    TRAINER_MODEL,
    TRAINER_VERSION,
    ApiError,
    _model_json,
    _raise_invalid,
    _Request,
    _version_json,
)


class _ModelRoutes:
    """Account, hardware and model routes (mixed into `ReplicateEmulator`)."""

    # --- account, hardware, models -----------------------------------------------------------

    def _get_account(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/account."""
        return 200, {
            "type": "user",
            "username": self.owner,
            "name": "SSELFIE Dev",
            "github_url": None,
        }

    def _get_secret(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/webhooks/default/secret."""
        return 200, {"key": self.webhook_secret}

    def _get_hardware(self, req: _Request) -> tuple[int, Any]:
        """GET /v1/hardware."""
        return 200, HARDWARE

    def _add_trainer_model(self) -> None:
        """Seed ostris/flux-dev-lora-trainer with one version."""
        owner, name = TRAINER_MODEL.split("/")
        self._models[TRAINER_MODEL] = _model_json(
            owner, name, "public", "Fine-tune FLUX.1-dev", FINE_TUNE_HARDWARE
        )
        self._models[TRAINER_MODEL]["run_count"] = 412_337
        version = _version_json(TRAINER_VERSION, fx.trainer_openapi_schema())
        self._versions[TRAINER_MODEL] = [version]
        self._taken.add(TRAINER_MODEL)

    def _create_model(self, req: _Request) -> tuple[int, Any]:
        """POST /v1/models."""
        body = req.fields
        missing = [k for k in ("owner", "name", "visibility", "hardware") if not body.get(k)]
        _raise_invalid([{"field": k, "kind": "required"} for k in missing], "(root)")
        skus = [h["sku"] for h in HARDWARE]
        _raise_invalid(
            [
                {"field": k, "kind": "enum", "choices": choices}
                for k, choices in (("visibility", ["public", "private"]), ("hardware", skus))
                if body[k] not in choices
            ],
            "(root)",
        )
        if body["owner"] != self.owner:
            raise ApiError(403, f"You do not have permission to create models for {body['owner']}.")
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]*", str(body["name"])):
            detail = "Model names can only contain lowercase letters, numbers, dashes, "
            raise ApiError(400, detail + "underscores and periods.")
        key = f"{body['owner']}/{body['name']}"
        if key in self._taken:
            raise ApiError(409, "A model with that name and owner already exists.", "Conflict")
        extra = {k: body.get(k) for k in ("github_url", "paper_url", "license_url")}
        model = _model_json(
            body["owner"],
            body["name"],
            body["visibility"],
            body.get("description"),
            body["hardware"],
        )
        model.update(extra, cover_image_url=body.get("cover_image_url"))
        self._models[key], self._versions[key] = model, []
        self._taken.add(key)
        return 201, self._model_view(key)

    def _model_view(self, key: str) -> dict[str, Any]:
        """Model JSON with its latest_version."""
        versions = self._versions[key]
        return {**self._models[key], "latest_version": versions[-1] if versions else None}

    def _model_key(self, owner: str, name: str) -> str:
        """Key of an existing model, else 404."""
        key = f"{owner}/{name}"
        if key not in self._models:
            raise ApiError(404, NOT_FOUND)
        return key

    def _get_model(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """GET /v1/models/{owner}/{name}."""
        return 200, self._model_view(self._model_key(owner, name))

    def _delete_model(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """DELETE a model; only when it has no versions."""
        key = self._model_key(owner, name)
        if owner != self.owner:
            raise ApiError(403, "You do not have permission to delete this model.")
        if self._versions[key]:
            detail = "Cannot delete a model that has versions. Delete its versions first."
            raise ApiError(409, detail, "Conflict")
        del self._models[key], self._versions[key]
        return 204, None

    def _list_versions(self, req: _Request, owner: str, name: str) -> tuple[int, Any]:
        """GET a model's versions, newest first."""
        versions = self._versions[self._model_key(owner, name)]
        return 200, {"next": None, "previous": None, "results": versions[::-1]}

    def _find_version(self, owner: str, name: str, vid: str) -> dict[str, Any]:
        """A version of an existing model, else 404."""
        for version in self._versions[self._model_key(owner, name)]:
            if version["id"] == vid:
                return version
        raise ApiError(404, NOT_FOUND)

    def _get_version(self, req: _Request, owner: str, name: str, vid: str) -> tuple[int, Any]:
        """GET one version."""
        return 200, self._find_version(owner, name, vid)

    def _delete_version(self, req: _Request, owner: str, name: str, vid: str) -> tuple[int, Any]:
        """DELETE a version (202)."""
        version = self._find_version(owner, name, vid)
        if owner != self.owner:
            raise ApiError(403, "You do not have permission to delete this version.")
        self._versions[f"{owner}/{name}"].remove(version)
        return 202, None
