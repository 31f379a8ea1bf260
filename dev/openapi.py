"""The OpenAPI 3.1 document of every endpoint, built from the code it describes.

Limits (image counts, string lengths, page sizes, body sizes) are read from the constants the
code enforces and each function's own `Endpoint`, so the document cannot drift from them.
`python -m dev.openapi` writes `openapi.json` at the repository root; the function
`api/openapi.json.py` serves it at `/api/openapi.json` (`make dev` also at `/openapi.json`);
tests/test_openapi.py fails when the file, the routes or the limits disagree.
"""

import json
import sys
from typing import Any

from dev.server import OPENAPI_DOCUMENT, PROJECT_ROOT, discover_routes
from lib import cron
from lib.accounts import user_models
from lib.accounts.user_models import PUBLIC_STATUS
from lib.intake import client_uploads, uploads
from lib.studio import gallery, generate, packs
from lib.sync.snapshots import REPLICATE_ID
from lib.training import start

NO_CONTROL_CHARACTERS = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$"
_MODEL_ID = {"type": "string", "format": "uuid"}
ERRORS = {
    400: "Bad input (the code says what)",
    401: "Missing or invalid token or signature",
    404: "Not found — another user's id answers exactly like a missing one",
    409: "Conflict with the current state",
    413: "Body or file too large",
    415: "Wrong content type",
    422: "Valid JSON, invalid values",
    429: "A daily limit (quota_exceeded) or the monthly spend cap (spend_limit) was reached;"
    " Retry-After says when to try again",
    502: "An upstream (Replicate, storage) failed",
    503: "Not configured, or an upstream is unavailable",
    504: "An upstream did not answer in time",
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "type": [schema["type"], "null"]}


def _object(
    properties: dict[str, Any], required: list[str] | None = None, *, closed: bool = True
) -> dict[str, Any]:
    """An object schema; answers are closed (drift shows), requests ignore unknown fields."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties) if required is None else required,
        "additionalProperties": not closed,
    }


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _text(limit: int) -> dict[str, Any]:
    return {"type": "string", "maxLength": limit, "pattern": NO_CONTROL_CHARACTERS}


def schemas() -> dict[str, Any]:
    """Every body the API sends or accepts."""
    timestamp = {"type": "string", "format": "date-time"}
    status = {"type": "string", "enum": sorted(set(PUBLIC_STATUS.values()))}
    progress = {"type": "integer", "minimum": 0, "maximum": 100}
    steps = {
        "step": _nullable({"type": "integer", "minimum": 0}),
        "totalSteps": _nullable({"type": "integer", "minimum": 0}),
        "etaSeconds": _nullable({"type": "integer", "minimum": 0}),
    }
    usd = {"type": "number", "minimum": 0}
    cost = {
        **_nullable(usd),
        "description": "Replicate's billed seconds x the hardware's price; null until known",
    }
    url_list = {
        "type": "array",
        "minItems": start.MIN_IMAGES,
        "maxItems": start.MAX_IMAGES,
        "items": {"type": "string", "minLength": 1, **_text(start.MAX_URL_LENGTH)},
        "description": "URLs of the caller's own uploads; the same URL twice counts once",
    }
    left_out = {
        "type": "array",
        "items": _object(
            {
                "url": {"type": "string"},
                "filename": {"type": "string"},
                "reason": {"type": "string"},
            }
        ),
        "description": "Photos sent but not trained on, and why (unusable, or another person)",
    }
    return {
        "Error": _object(
            {
                "error": {"type": "string"},
                "code": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
            }
        ),
        "Model": _object(
            {
                "id": {"type": "string", "format": "uuid"},
                "name": {"type": "string"},
                "modelType": {"type": "string"},
                "gender": _nullable({"type": "string"}),
                "triggerWord": {"type": "string", "pattern": "^user[0-9]{8}$"},
                "status": status,
                "progress": progress,
                **steps,
                "error": _nullable({"type": "string"}),
                "replicateModelId": _nullable({"type": "string"}),
                "replicateVersionId": _nullable({"type": "string"}),
                "loraWeightsUrl": _nullable({"type": "string"}),
                "createdAt": timestamp,
                "startedAt": _nullable(timestamp),
                "completedAt": _nullable(timestamp),
                "trainerVersion": _nullable(
                    {"type": "string", "description": "The trainer version the latest run used"}
                ),
                "leftOut": left_out,
                "costUsd": {**cost, "description": "The sum of its training runs' costs"},
            }
        ),
        "Progress": _object(
            {"status": status, "progress": progress, **steps, "model": _ref("Model")}
        ),
        "ModelPage": _object(
            {
                "models": {"type": "array", "items": _ref("Model")},
                "nextCursor": _nullable({"type": "string"}),
            }
        ),
        "StartRequest": _object(
            {
                "modelName": {"minLength": 1, **_text(start.TEXT_LIMITS["modelName"])},
                "modelType": _nullable(_text(start.TEXT_LIMITS["modelType"])),
                "gender": _nullable(_text(start.TEXT_LIMITS["gender"])),
                "imageUrls": url_list,
            },
            required=["modelName", "imageUrls"],
            closed=False,
        ),
        "Started": _object(
            {
                "modelId": {"type": "string", "format": "uuid"},
                "trainingId": {"type": "string"},
                "triggerWord": {"type": "string", "pattern": "^user[0-9]{8}$"},
                "status": {"const": "starting"},
                "leftOut": left_out,
            }
        ),
        "Uploads": _object(
            {
                "urls": {"type": "array", "items": {"type": "string"}},
                "uploads": {
                    "type": "array",
                    "items": _object(
                        {
                            "id": {"type": "string", "format": "uuid"},
                            "url": {"type": "string"},
                            "contentType": {"type": "string", "enum": sorted(uploads.EXTENSIONS)},
                            "size": {"type": "integer", "minimum": 0},
                            "width": {"type": "integer", "minimum": 1},
                            "height": {"type": "integer", "minimum": 1},
                            "faces": _nullable({"type": "integer", "minimum": 0}),
                            "faceShare": _nullable({"type": "number", "minimum": 0}),
                            "usable": _nullable({"type": "boolean"}),
                            "reason": _nullable({"type": "string"}),
                        }
                    ),
                },
            }
        ),
        "Deletion": _object(
            {
                "status": {
                    "type": "string",
                    "enum": ["deleted", "deleting"],
                    "description": "deleting: hidden already; the cron finishes what is left",
                }
            }
        ),
        "ModelIdRequest": _object({"modelId": _MODEL_ID}, closed=False),
        "ModelAnswer": _object({"model": _ref("Model")}),
        "GenerateRequest": _object(
            {
                "modelId": _MODEL_ID,
                "prompt": {"minLength": 1, **_text(generate.PROMPT_LIMIT)},
                "numOutputs": {"type": "integer", "minimum": 1, "maximum": 4},
                "aspectRatio": {"type": "string", "enum": list(generate.ASPECT_RATIOS)},
                "outputFormat": {"type": "string", "enum": list(generate.OUTPUT_FORMATS)},
                "loraScale": {"type": "number", "minimum": -1, "maximum": 3},
                "seed": {"type": "integer", "minimum": 0, "maximum": generate.MAX_SEED},
            },
            required=["modelId", "prompt"],
            closed=False,
        ),
        "Generation": _object(
            {
                "id": {"type": "string", "format": "uuid"},
                "modelId": {"type": "string", "format": "uuid"},
                "prompt": {"type": "string"},
                "status": {"type": "string", "enum": sorted(set(gallery.PUBLIC_STATUS.values()))},
                "error": _nullable({"type": "string"}),
                "images": {"type": "array", "items": {"type": "string"}},
                "createdAt": timestamp,
                "completedAt": _nullable(timestamp),
                "input": {"type": "object"},
                "packRunId": _nullable({"type": "string", "format": "uuid"}),
                "costUsd": cost,
            }
        ),
        "GenerationAnswer": _object({"generation": _ref("Generation")}),
        "Gallery": _object({"generations": {"type": "array", "items": _ref("Generation")}}),
        "Account": _object(
            {
                "usage": _object(
                    {
                        "trainingsToday": {"type": "integer", "minimum": 0},
                        "imagesToday": {"type": "integer", "minimum": 0},
                        "trainingLimit": {"type": "integer", "minimum": 0},
                        "imageLimit": {"type": "integer", "minimum": 0},
                        "spendMonthUsd": {
                            **usd,
                            "description": "This calendar month (UTC): billed, else estimated",
                        },
                        "spendLimitUsd": {
                            **_nullable(usd),
                            "description": "MONTHLY_SPEND_LIMIT_USD; null: no cap",
                        },
                    }
                )
            }
        ),
        "Pack": _object(
            {
                "id": {"type": "string", "pattern": f"^{packs.PACK_ID.pattern}$"},
                "name": {"type": "string"},
                "description": {"type": "string"},
                "imageCount": {
                    "type": "integer",
                    "minimum": packs.MIN_IMAGES,
                    "maximum": packs.MAX_IMAGES,
                },
            }
        ),
        "PackRun": _object(
            {
                "id": {"type": "string", "format": "uuid"},
                "packId": {"type": "string"},
                "modelId": {"type": "string", "format": "uuid"},
                "status": {"type": "string", "enum": ["processing", "completed"]},
                "total": {"type": "integer", "minimum": 1},
                "done": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Generations that have ended, failed ones included",
                },
                "failed": {"type": "integer", "minimum": 0},
                "createdAt": timestamp,
                "completedAt": _nullable(timestamp),
                "costUsd": {**cost, "description": "What its generations have cost so far"},
            }
        ),
        "Packs": _object(
            {
                "packs": {"type": "array", "items": _ref("Pack")},
                "runs": {
                    "type": "array",
                    "items": _ref("PackRun"),
                    "description": "With ?modelId: that model's runs, newest first",
                },
            },
            required=["packs"],
        ),
        "PackRequest": _object(
            {
                "modelId": {"type": "string", "minLength": 1},
                "packId": {"type": "string", "minLength": 1},
            },
            closed=False,
        ),
        "PackRunAnswer": _object({"run": _ref("PackRun")}),
        "UploadRules": _object(
            {
                "pathnamePrefix": {"type": "string"},
                "allowedContentTypes": {"type": "array", "items": {"type": "string"}},
                "maximumSizeInBytes": {"type": "integer", "minimum": 1},
            }
        ),
        "BlobEvent": _object(
            {
                "type": {
                    "type": "string",
                    "enum": [client_uploads.TOKEN_REQUEST, client_uploads.UPLOAD_COMPLETED],
                },
                "payload": {"type": "object"},
            },
            closed=False,
        ),
        "BlobEventAnswer": {
            "oneOf": [
                _object(
                    {
                        "type": {"const": client_uploads.TOKEN_REQUEST},
                        "clientToken": {"type": "string"},
                    }
                ),
                _object(
                    {
                        "type": {"const": client_uploads.UPLOAD_COMPLETED},
                        "response": {"const": "ok"},
                    }
                ),
            ]
        },
        "ReconcileSummary": _object(
            {key: {"type": "integer", "minimum": 0} for key in cron.SUMMARY_KEYS}
        ),
        "WebhookAck": _object(
            {
                "received": {"const": True},
                "outcome": {
                    "enum": ["applied", "adopted", "canceled", "unchanged", "duplicate", "unknown"]
                },
            }
        ),
    }


def _operation(
    summary: str,
    ok: dict[int, dict[str, Any]],
    errors: list[int],
    *,
    secured: bool = True,
    **extra: Any,
) -> dict[str, Any]:
    responses = {str(code): response for code, response in ok.items()}
    responses |= {str(code): {"$ref": f"#/components/responses/E{code}"} for code in errors}
    security = [{"bearerAuth": []}] if secured else []
    return {"summary": summary, "security": security, "responses": responses, **extra}


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema}


def _header(name: str, schema: dict[str, Any], *, required: bool = True) -> dict[str, Any]:
    return {"name": name, "in": "header", "required": required, "schema": schema}


def operations() -> dict[tuple[str, str], dict[str, Any]]:
    """(path, method) → operation, for every method of every function under api/."""
    deleted = {
        200: _json(_ref("Deletion"), "Everything is gone"),
        202: _json(_ref("Deletion"), "Hidden now; the cron finishes the rest"),
    }
    return {
        ("/api/training/upload", "get"): _operation(
            "What a client upload must respect: types, size, and the caller's folder for a"
            " prefixed pathname (a bare file name such as selfie.jpg needs none)",
            {200: _json(_ref("UploadRules"), "The rules for this caller")},
            [401, 503],
        ),
        ("/api/training/upload", "post"): _operation(
            "Store selfies (multipart parts named files), or the @vercel/blob client-upload"
            " protocol (JSON events: a token request with the user's JWT, or Blob's signed"
            " upload-completed callback)",
            {
                200: {
                    "description": "Stored and recorded, or the protocol's answer",
                    "content": {
                        "application/json": {
                            "schema": {"oneOf": [_ref("Uploads"), _ref("BlobEventAnswer")]}
                        }
                    },
                }
            },
            [400, 401, 413, 415, 502, 503],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {"schema": _ref("BlobEvent")},
                    "multipart/form-data": {
                        "schema": _object(
                            {
                                "files": {
                                    "type": "array",
                                    "minItems": 1,
                                    "maxItems": uploads.MAX_FILES_PER_REQUEST,
                                    "items": {"type": "string", "format": "binary"},
                                }
                            },
                            closed=False,
                        )
                    },
                },
            },
        ),
        ("/api/training/start", "post"): _operation(
            "Train a LoRA model from the caller's uploads",
            {201: _json(_ref("Started"), "The training started")},
            [400, 401, 409, 413, 415, 422, 429, 502, 503, 504],
            parameters=[
                _header(
                    "Idempotency-Key",
                    {"type": "string", "pattern": f"^{start.IDEMPOTENCY_KEY_PATTERN}$"},
                    required=False,
                )
            ],
            requestBody={
                "required": True,
                "content": {"application/json": {"schema": _ref("StartRequest")}},
            },
        ),
        ("/api/training/progress", "get"): _operation(
            "A model's training status and progress (poll every 5 s)",
            {200: _json(_ref("Progress"), "The model's state")},
            [400, 401, 404, 503],
            parameters=[_query("modelId", _MODEL_ID, required=True)],
        ),
        ("/api/webhooks/replicate", "post"): _operation(
            "Replicate's signed callback (Standard Webhooks)",
            {200: _json(_ref("WebhookAck"), "Verified and recorded")},
            [400, 401, 413, 502, 503, 504],
            secured=False,
            parameters=[
                _header("webhook-id", {"type": "string", "minLength": 1}),
                _header("webhook-timestamp", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
                _header("webhook-signature", {"type": "string", "minLength": 1}),
                _query("run", {"type": "string", "format": "uuid"}),
            ],
            requestBody={
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["id", "status"],
                            "properties": {
                                "id": {"type": "string", "pattern": f"^{REPLICATE_ID.pattern}$"},
                                "status": {"type": "string"},
                            },
                        }
                    }
                },
            },
        ),
        ("/api/training/cancel", "post"): _operation(
            "Cancel the caller's live training of a model",
            {200: _json(_ref("ModelAnswer"), "Canceled")},
            [400, 401, 404, 409, 413, 415, 502, 503, 504],
            requestBody=_json_body("ModelIdRequest"),
        ),
        ("/api/training/retry", "post"): _operation(
            "Train a failed or canceled model again from its stored selfies",
            {201: _json(_ref("Started"), "A new training started")},
            [400, 401, 404, 409, 413, 415, 429, 502, 503, 504],
            requestBody=_json_body("ModelIdRequest"),
        ),
        ("/api/cron/reconcile", "get"): _operation(
            "Vercel Cron (Bearer CRON_SECRET): recover quiet runs, archive weights, delete ZIPs",
            {200: _json(_ref("ReconcileSummary"), "What this run did")},
            [401, 502, 503, 504],
        ),
        ("/api/studio/generate", "post"): _operation(
            "Generate pictures with a completed model (the trigger word is put in the prompt)",
            {201: _json(_ref("GenerationAnswer"), "The generation started")},
            [400, 401, 404, 409, 413, 415, 422, 429, 502, 503, 504],
            requestBody=_json_body("GenerateRequest"),
        ),
        ("/api/studio/generations", "get"): _operation(
            "The caller's generations with a model, newest first",
            {200: _json(_ref("Gallery"), "The gallery")},
            [400, 401, 404, 503],
            parameters=[_query("modelId", _MODEL_ID, required=True)],
        ),
        ("/api/studio/packs", "get"): _operation(
            "The Studio packs; with ?modelId, that model's pack runs too",
            {200: _json(_ref("Packs"), "The packs (and runs)")},
            [400, 401, 404, 503],
            parameters=[_query("modelId", _MODEL_ID)],
        ),
        ("/api/studio/packs", "post"): _operation(
            "Run a pack with a completed model: one generation per image, the whole pack"
            " counted against the daily limit at once (429 and nothing started if it does not"
            " fit); pack.completed is sent when every generation has ended",
            {201: _json(_ref("PackRunAnswer"), "The run started")},
            [400, 401, 404, 409, 413, 415, 429, 502, 503, 504],
            requestBody=_json_body("PackRequest"),
        ),
        ("/api/models", "get"): _operation(
            "The caller's models, newest first",
            {200: _json(_ref("ModelPage"), "One page; nextCursor is null on the last")},
            [400, 401, 503],
            parameters=[
                _query(
                    "limit",
                    {"type": "integer", "minimum": 1, "maximum": user_models.MAX_PAGE_SIZE},
                ),
                _query("cursor", {"type": "string", "maxLength": user_models.MAX_CURSOR_LENGTH}),
            ],
        ),
        ("/api/models/{id}", "get"): _operation(
            "One of the caller's models",
            {200: _json(_ref("Model"), "The model")},
            [401, 404, 503],
        ),
        ("/api/models/{id}", "delete"): _operation(
            "Delete the model: its uploads, ZIP, weights, generations, rows, Replicate version",
            deleted,
            [401, 404, 502, 503, 504],
        ),
        ("/api/account", "get"): _operation(
            "The caller's usage: the last 24 hours against the daily limits, this month's spend",
            {200: _json(_ref("Account"), "Usage")},
            [401, 503],
        ),
        ("/api/account", "delete"): _operation(
            "Delete all of the caller's data (account deletion)", deleted, [401, 503]
        ),
        ("/api/openapi.json", "get"): _operation(
            "This document",
            {200: _json({"type": "object"}, "The OpenAPI 3.1 document")},
            [],
            secured=False,
        ),
    }


def build() -> dict[str, Any]:
    """The whole document."""
    paths: dict[str, dict[str, Any]] = {}
    limits = _body_limits()
    for (path, method), operation in operations().items():
        if "requestBody" in operation:
            operation["x-max-body-bytes"] = limits[path]
        paths.setdefault(path, {})[method] = operation
    for path in paths:
        if "{id}" in path:
            paths[path]["parameters"] = [
                {"name": "id", "in": "path", "required": True, "schema": _MODEL_ID}
            ]
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "SSELFIE training backend",
            "version": "1.0.0",
            "description": "Every error is {error, code}. Generated by `python -m dev.openapi`.",
        },
        "paths": paths,
        "webhooks": event_webhooks(),
        "components": {
            "schemas": {**schemas(), **event_schemas()},
            "responses": {
                f"E{code}": _json(_ref("Error"), description)
                for code, description in ERRORS.items()
            },
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
        },
    }


# Event type -> (what it says, the schema of its data): the events of section 7 of the contract.
EVENTS = {
    "training.completed": ("A training succeeded: the model can generate", "ModelEventData"),
    "training.failed": ("A training failed", "ModelEventData"),
    "training.canceled": ("A training was canceled", "ModelEventData"),
    "generation.succeeded": ("A generation's images are in our storage", "GenerationEventData"),
    "generation.failed": ("A generation failed (or was canceled)", "GenerationEventData"),
    "pack.completed": ("Every generation of a pack run has ended", "PackRunEventData"),
}


def event_schemas() -> dict[str, Any]:
    """The data of each event: the object the API shows, plus the user it belongs to."""
    shown = schemas()
    with_user = {}
    for name, shape in (
        ("Model", "ModelEventData"),
        ("Generation", "GenerationEventData"),
        ("PackRun", "PackRunEventData"),
    ):
        schema = shown[name]
        with_user[shape] = {
            **schema,
            "properties": {**schema["properties"], "userId": {"type": "string"}},
            "required": [*schema["required"], "userId"],
        }
    return with_user


def event_webhooks() -> dict[str, Any]:
    """OpenAPI 3.1 `webhooks`: what the backend POSTs to APP_WEBHOOK_URL."""
    signed = [
        _header("webhook-id", {"type": "string", "pattern": "^msg_[0-9a-f]{32}$"}),
        _header("webhook-timestamp", {"type": "string", "pattern": "^[0-9]{1,12}$"}),
        _header("webhook-signature", {"type": "string", "pattern": "^v1,"}),
    ]
    return {
        event_type: {
            "post": {
                "summary": summary,
                "description": (
                    "Signed the Standard Webhooks way with APP_WEBHOOK_SECRET. Every attempt"
                    " of one event carries the same webhook-id: deduplicate by it. Any answer"
                    " but 2xx within 10 s is retried."
                ),
                "parameters": signed,
                "requestBody": {
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": _object(
                                {
                                    "type": {"const": event_type},
                                    "timestamp": {"type": "string", "format": "date-time"},
                                    "data": _ref(data),
                                }
                            )
                        }
                    },
                },
                "responses": {"2XX": {"description": "Received"}},
            }
        }
        for event_type, (summary, data) in EVENTS.items()
    }


def route_paths() -> dict[str, tuple[str, Any]]:
    """OpenAPI path → (module name, WSGI app) of each function under api/."""
    from dev.server import _load_entrypoint

    found = {}
    for route in discover_routes():
        relative = route.path.relative_to(PROJECT_ROOT).with_suffix("").as_posix()
        path = "/" + relative.removesuffix("/index")
        path = path.replace("[", "{").replace("]", "}")
        found[path] = (route.module_name, _load_entrypoint(route.module_name, route.path))
    return found


def _body_limits() -> dict[str, int]:
    return {path: app.max_body for path, (_, app) in route_paths().items()}


def render() -> str:
    """The document as written to openapi.json."""
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OPENAPI_DOCUMENT.write_text(render())
    print(f"wrote {OPENAPI_DOCUMENT.relative_to(PROJECT_ROOT)}", file=sys.stderr)
