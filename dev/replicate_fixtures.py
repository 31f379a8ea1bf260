"""Realistic payload fixtures for the Replicate emulator: schemas, trainer logs, tars, images."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import random
import struct
import tarfile
import zipfile
from datetime import datetime
from typing import Any

from PIL import Image, ImageDraw

TRAINER_JOB_NAME = "flux_train_replicate"
_BAR_CHARS = " ▏▎▍▌▋▊▉█"
_IMAGE_FORMATS = {"webp": ("WEBP", "image/webp"), "png": ("PNG", "image/png")}
_IMAGE_FORMATS["jpg"] = ("JPEG", "image/jpeg")

# --- OpenAPI schemas (Cog style) -------------------------------------------------------------


def _props(rows: list[tuple[str, str, Any, dict[str, Any], str]]) -> dict[str, dict[str, Any]]:
    """Build Cog-style schema properties from (name, type, default, extras, description) rows."""
    props: dict[str, dict[str, Any]] = {}
    for order, (name, kind, default, extras, description) in enumerate(rows):
        prop: dict[str, Any] = {"type": kind, "title": name.replace("_", " ").title()}
        prop["x-order"] = order
        if default is not None:
            prop["default"] = default
        prop.update(extras)
        prop["description"] = description
        props[name] = prop
    return props


_URI = {"format": "uri"}
_SECRET = {"format": "password", "writeOnly": True, "x-cog-secret": True}


def trainer_openapi_schema() -> dict[str, Any]:
    """The openapi_schema of ostris/flux-dev-lora-trainer (replicate/flux-fine-tuner train.py)."""
    rows: list[tuple[str, str, Any, dict[str, Any], str]] = [
        ("input_images", "string", None, _URI, "A zip file containing the training images."),
        ("trigger_word", "string", "TOK", {}, "The trigger word refers to the subject."),
        ("autocaption", "boolean", True, {}, "Automatically caption images using LLaVA v1.5 13B"),
        ("autocaption_prefix", "string", None, {}, "Optional: Text you want to appear first."),
        ("autocaption_suffix", "string", None, {}, "Optional: Text you want to appear last."),
        ("steps", "integer", 1000, {"minimum": 3, "maximum": 6000}, "Number of training steps."),
        ("learning_rate", "number", 0.0004, {}, "Learning rate."),
        ("batch_size", "integer", 1, {}, "Batch size."),
        ("resolution", "string", "512,768,1024", {}, "Image resolutions for training."),
        ("lora_rank", "integer", 16, {"minimum": 1, "maximum": 128}, "Higher ranks learn more."),
        ("caption_dropout_rate", "number", 0.05, {"minimum": 0, "maximum": 1}, "Caption dropout."),
        ("optimizer", "string", "adamw8bit", {}, "Optimizer to use for training."),
        ("cache_latents_to_disk", "boolean", False, {}, "Use this if you have lots of images."),
        ("layers_to_optimize_regex", "string", None, {}, "Regular expression to match layers."),
        ("gradient_checkpointing", "boolean", False, {}, "Turn on gradient checkpointing."),
        ("hf_repo_id", "string", None, {}, "Hugging Face repository ID."),
        ("hf_token", "string", None, _SECRET, "Hugging Face token."),
        ("wandb_api_key", "string", None, _SECRET, "Weights and Biases API key."),
        ("wandb_project", "string", TRAINER_JOB_NAME, {}, "Weights and Biases project name."),
        ("wandb_run", "string", None, {}, "Weights and Biases run name."),
        ("wandb_entity", "string", None, {}, "Weights and Biases entity name."),
        ("wandb_sample_interval", "integer", 100, {"minimum": 1}, "Step interval for samples."),
        ("wandb_sample_prompts", "string", None, {}, "Newline-separated list of prompts."),
        ("wandb_save_interval", "integer", 100, {"minimum": 1}, "Step interval for saving."),
        ("skip_training_and_use_pretrained_hf_lora_url", "string", None, {}, "HF LoRA URL."),
    ]
    training_input = {
        "type": "object",
        "title": "TrainingInput",
        "required": ["input_images"],
        "properties": _props(rows),
    }
    training_output = {
        "type": "object",
        "title": "TrainingOutput",
        "required": ["weights"],
        "properties": {"weights": {"type": "string", "title": "Weights", "format": "uri"}},
    }
    return _cog_document({"TrainingInput": training_input, "TrainingOutput": training_output})


def flux_lora_openapi_schema() -> dict[str, Any]:
    """The openapi_schema of a trained FLUX LoRA version (cog-flux HotswapPredictor inputs)."""
    ratios = ["1:1", "16:9", "21:9", "3:2", "2:3", "4:5", "5:4", "3:4", "4:3", "9:16", "9:21"]
    rows: list[tuple[str, str, Any, dict[str, Any], str]] = [
        ("prompt", "string", None, {}, "Prompt for generated image."),
        ("image", "string", None, _URI, "Input image for img2img or inpainting mode."),
        ("mask", "string", None, _URI, "Image mask for image inpainting mode."),
        ("aspect_ratio", "string", "1:1", {"enum": [*ratios, "custom"]}, "Aspect ratio."),
        ("height", "integer", None, {"minimum": 256, "maximum": 1440}, "Height (custom)."),
        ("width", "integer", None, {"minimum": 256, "maximum": 1440}, "Width (custom)."),
        ("prompt_strength", "number", 0.8, {"minimum": 0, "maximum": 1}, "Prompt strength."),
        ("model", "string", "dev", {"enum": ["dev", "schnell"]}, "Which model to run."),
        ("num_outputs", "integer", 1, {"minimum": 1, "maximum": 4}, "Number of outputs."),
        ("num_inference_steps", "integer", 28, {"minimum": 1, "maximum": 50}, "Denoising steps."),
        ("guidance_scale", "number", 3, {"minimum": 0, "maximum": 10}, "Guidance scale."),
        ("seed", "integer", None, {}, "Random seed."),
        ("output_format", "string", "webp", {"enum": list(_IMAGE_FORMATS)}, "Output format."),
        ("output_quality", "integer", 80, {"minimum": 0, "maximum": 100}, "Output quality."),
        ("disable_safety_checker", "boolean", False, {}, "Disable safety checker."),
        ("go_fast", "boolean", False, {}, "Run faster predictions with fp8."),
        ("megapixels", "string", "1", {"enum": ["1", "0.25"]}, "Approximate megapixels."),
        ("replicate_weights", "string", None, {}, "Replicate LoRA weights to use."),
        ("lora_scale", "number", 1, {"minimum": -1, "maximum": 3}, "LoRA strength."),
        ("extra_lora", "string", None, {}, "Load LoRA weights."),
        ("extra_lora_scale", "number", 1, {"minimum": -1, "maximum": 3}, "Extra LoRA strength."),
    ]
    inputs = {
        "type": "object",
        "title": "Input",
        "required": ["prompt"],
        "properties": _props(rows),
    }
    output = {"type": "array", "title": "Output", "items": {"type": "string", "format": "uri"}}
    return _cog_document({"Input": inputs, "Output": output})


def _cog_document(schemas: dict[str, Any]) -> dict[str, Any]:
    """Wrap component schemas in the OpenAPI document shape Cog publishes."""
    status = {"enum": ["starting", "processing", "succeeded", "canceled", "failed"]}
    schemas = {**schemas, "Status": {"type": "string", "title": "Status", **status}}
    return {
        "openapi": "3.0.2",
        "info": {"title": "Cog", "version": "0.1.0"},
        "paths": {},
        "components": {"schemas": schemas},
    }


# --- input validation ------------------------------------------------------------------------

_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "string": (str,),
}


def find_input_problems(schema: dict[str, Any], values: dict[str, Any]) -> list[dict[str, Any]]:
    """Check `values` against an object schema; unknown keys are ignored, like Replicate."""
    problems = [
        {"field": name, "kind": "required"} for name in schema["required"] if name not in values
    ]
    for name, prop in schema["properties"].items():
        if name in values:
            problem = _value_problem(prop, values[name])
            if problem:
                problems.append({"field": name, **problem})
    return problems


def _value_problem(prop: dict[str, Any], value: Any) -> dict[str, Any] | None:
    """The first problem with one value, or None."""
    kind = prop["type"]
    is_bool = isinstance(value, bool)
    if not isinstance(value, _JSON_TYPES[kind]) or (is_bool and kind != "boolean"):
        return {"kind": "type", "expected": kind, "given": _json_type_name(value)}
    if "enum" in prop and value not in prop["enum"]:
        return {"kind": "enum", "choices": prop["enum"]}
    if "minimum" in prop and value < prop["minimum"]:
        return {"kind": "ge", "limit": prop["minimum"]}
    if "maximum" in prop and value > prop["maximum"]:
        return {"kind": "le", "limit": prop["maximum"]}
    if prop.get("format") == "uri" and value.split(":", 1)[0] not in ("http", "https", "data"):
        return {"kind": "uri", "scheme": value.split(":", 1)[0] if ":" in value else ""}
    return None


def _json_type_name(value: Any) -> str:
    """JSON type name of a Python value, as gojsonschema words it."""
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array"}
    return "null" if value is None else names.get(type(value), "object")


_PYDANTIC_TYPE_ERRORS = {
    "integer": ("value is not a valid integer", "type_error.integer"),
    "number": ("value is not a valid float", "type_error.float"),
    "boolean": ("value could not be parsed to a boolean", "type_error.bool"),
    "string": ("str type expected", "type_error.str"),
}


def training_validation_error(problems: list[dict[str, Any]]) -> str:
    """The `error` text of a training whose input failed Cog's (pydantic v1) validation."""
    uri = [p for p in problems if p["kind"] == "uri"]
    if uri and len(uri) == len(problems):
        scheme = uri[0]["scheme"]
        return f"'{scheme}' is not a valid URL scheme. 'data', 'http', or 'https' is supported."
    details = [_pydantic_detail(p) for p in problems if p["kind"] != "uri"]
    body = json.dumps({"detail": details}, separators=(",", ":"))
    return f"Prediction input failed validation: {body}"


def _pydantic_detail(problem: dict[str, Any]) -> dict[str, Any]:
    """One pydantic v1 error entry."""
    detail: dict[str, Any] = {"loc": ["body", "input", problem["field"]]}
    kind = problem["kind"]
    if kind == "required":
        detail.update(msg="field required", type="value_error.missing")
    elif kind == "type":
        msg, code = _PYDANTIC_TYPE_ERRORS[problem["expected"]]
        detail.update(msg=msg, type=code)
    elif kind == "enum":
        permitted = ", ".join(repr(c) for c in problem["choices"])
        detail.update(msg=f"value is not a valid enumeration member; permitted: {permitted}")
        detail.update(type="type_error.enum", ctx={"enum_values": problem["choices"]})
    else:
        word = "greater" if kind == "ge" else "less"
        detail["msg"] = f"ensure this value is {word} than or equal to {problem['limit']}"
        detail["type"] = f"value_error.number.not_{kind}"
        detail["ctx"] = {"limit_value": problem["limit"]}
    return detail


def invalid_fields(problems: list[dict[str, Any]], prefix: str = "input") -> list[dict[str, str]]:
    """Replicate API (gojsonschema) `invalid_fields` entries for synchronous 422 answers."""
    fields = []
    for p in problems:
        kind, name = p["kind"], p["field"]
        if kind == "required":
            fields.append(
                {"type": "required", "field": prefix, "description": f"{name} is required"}
            )
            continue
        if kind == "type":
            entry = (
                "invalid_type",
                f"Invalid type. Expected: {p['expected']}, given: {p['given']}",
            )
        elif kind == "enum":
            allowed = ", ".join(json.dumps(c) for c in p["choices"])
            entry = ("enum", f"{name} must be one of the following: {allowed}")
        elif kind == "uri":
            entry = ("format", "Does not match format 'uri'")
        else:
            word = "greater" if kind == "ge" else "less"
            entry = (f"number_{kind}", f"Must be {word} than or equal to {p['limit']}")
        path = name if prefix == "(root)" else f"{prefix}.{name}"
        fields.append({"type": entry[0], "field": path, "description": entry[1]})
    return fields


# --- trainer logs ----------------------------------------------------------------------------


def _interval(seconds: float) -> str:
    """tqdm's format_interval."""
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def tqdm_line(n: int, total: int, *, desc: str = "", sec_per_it: float, postfix: str = "") -> str:
    """One tqdm refresh as Replicate stores it: a `\\n`-terminated line."""
    frac = n / total if total else 1.0
    full, partial = divmod(int(frac * 10 * 8), 8)
    bar = _BAR_CHARS[-1] * full
    if full < 10:
        bar += _BAR_CHARS[partial] + " " * (10 - full - 1)
    head = f"{desc}: " if desc else ""
    if n == 0:
        return f"{head}{frac * 100:3.0f}%|{bar}| {n}/{total} [00:00<?, ?it/s]\n"
    rate = f"{sec_per_it:5.2f}s/it" if sec_per_it > 1 else f"{1 / sec_per_it:5.2f}it/s"
    times = f"{_interval(n * sec_per_it)}<{_interval((total - n) * sec_per_it)}"
    tail = f", {postfix}" if postfix else ""
    return f"{head}{frac * 100:3.0f}%|{bar}| {n}/{total} [{times}, {rate}{tail}]\n"


def training_progress_line(step: int, total: int, seed: str) -> str:
    """A `flux_train_replicate:` progress line with ai-toolkit's lr/loss postfix."""
    if step == 0:
        return tqdm_line(0, total, desc=TRAINER_JOB_NAME, sec_per_it=1.35)
    loss = 0.18 + 0.25 * random.Random(f"{seed}:{step}").random()
    postfix = f"lr: 4.0e-04 loss: {loss:.3e}"
    return tqdm_line(step, total, desc=TRAINER_JOB_NAME, sec_per_it=1.35, postfix=postfix)


def train_config(values: dict[str, Any]) -> dict[str, Any]:
    """The ai-toolkit job config the trainer builds from its inputs."""
    rank = values.get("lora_rank", 16)
    resolution = str(values.get("resolution", "512,768,1024"))
    dataset = {
        "folder_path": "input_images",
        "caption_ext": "txt",
        "caption_dropout_rate": values.get("caption_dropout_rate", 0.05),
        "shuffle_tokens": False,
        "cache_latents_to_disk": values.get("cache_latents_to_disk", False),
        "resolution": [int(r) for r in resolution.split(",") if r.strip().isdigit()],
    }
    train = {
        "batch_size": values.get("batch_size", 1),
        "steps": values.get("steps", 1000),
        "gradient_accumulation_steps": 1,
        "train_unet": True,
        "train_text_encoder": False,
        "gradient_checkpointing": values.get("gradient_checkpointing", False),
        "noise_scheduler": "flowmatch",
        "optimizer": values.get("optimizer", "adamw8bit"),
        "lr": values.get("learning_rate", 0.0004),
        "ema_config": {"use_ema": True, "ema_decay": 0.99},
        "dtype": "bf16",
    }
    process = {
        "type": "sd_trainer",
        "training_folder": "output",
        "device": "cuda:0",
        "trigger_word": values.get("trigger_word", "TOK"),
        "network": {"type": "lora", "linear": rank, "linear_alpha": rank},
        "save": {"dtype": "float16", "save_every": values.get("steps", 1000) + 1},
        "datasets": [dataset],
        "train": train,
        "model": {"name_or_path": "FLUX.1-dev", "is_flux": True, "quantize": True},
    }
    config = {"name": TRAINER_JOB_NAME, "process": [process]}
    return {"job": "custom_job", "config": config, "meta": {"name": "[name]", "version": "1.0"}}


def count_zip_entries(url: str) -> int | None:
    """Entries in a `data:` zip URL (the trainer logs this count), else None."""
    if not url.startswith("data:") or "," not in url:
        return None
    try:
        with zipfile.ZipFile(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))) as archive:
            return len(archive.infolist())
    except (binascii.Error, ValueError, zipfile.BadZipFile):
        return None


def training_log_head(values: dict[str, Any], now: datetime) -> list[str]:
    """Log lines the trainer prints before its progress bar starts."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    weights = "https://weights.replicate.delivery/default/black-forest-labs/FLUX.1-dev/files.tar"
    entries = count_zip_entries(str(values.get("input_images", ""))) or 10
    config = json.dumps(train_config(values), indent=4)
    rank = values.get("lora_rank", 16)
    lines = [
        f"{stamp} | INFO  | [ Initiating ] chunk_size=150M dest=. url={weights}",
        f'{stamp} | INFO  | [ Complete ] dest=. size="34 GB" total_elapsed=26.188s url={weights}',
        "Downloaded base weights in 26.606263875961304 seconds",
        f"Extracted {entries} files from zip to input_images",
        "Starting train job",
        *config.splitlines(),
        "Using EMA",
        "#############################################",
        f"# Running job: {TRAINER_JOB_NAME}",
        "#############################################",
        "Running  1 process",
        "Loading Flux model",
        "Loading transformer",
        "Quantizing transformer",
        "Loading vae",
        "Loading t5",
        "Loading clip",
        "making pipe",
        "preparing",
        f"create LoRA network. base dim (rank): {rank}, alpha: {rank}",
        "Dataset: input_images",
        "  -  Preprocessing image dimensions",
    ]
    return [line + "\n" for line in lines]


def decoy_bars(images: int) -> list[str]:
    """Other tqdm bars printed before training; they are NOT training progress."""
    fast = 1 / 12.3
    return [
        tqdm_line(0, images, sec_per_it=fast),
        tqdm_line(images, images, sec_per_it=fast),
        f"  -  Found {images} images\n",
        "Bucket sizes for input_images:\n",
        "Caching latents for input_images\n",
        " - Caching latents to memory\n",
        tqdm_line(0, images, desc="Caching latents", sec_per_it=0.2),
        tqdm_line(images, images, desc="Caching latents", sec_per_it=0.2),
        "Generating baseline samples before training\n",
    ]


def training_log_tail(total: int) -> list[str]:
    """Lines printed after the last training step."""
    folder = f"output/{TRAINER_JOB_NAME}"
    return [
        f"Saving at step {total}\n",
        f"Saved to {folder}/optimizer.pt\n",
        f"Training complete. Weights saved to {folder}/lora.safetensors\n",
    ]


def prediction_log_head(values: dict[str, Any]) -> list[str]:
    """Log lines of a fine-tuned FLUX prediction before denoising."""
    seed = values.get("seed", 42)
    return [f"Using seed: {seed}\n", "Loading LoRA weights\n", "LoRA weights loaded\n"]


def prediction_progress_line(step: int, total: int) -> str:
    """A denoising progress line."""
    return tqdm_line(step, total, sec_per_it=0.11)


def prediction_log_tail(outputs: int) -> list[str]:
    """Lines printed after denoising."""
    return [f"Total safe images: {outputs} out of {outputs}\n"]


# --- output files ----------------------------------------------------------------------------


def _stream(seed: str, size: int) -> bytes:
    """Deterministic pseudo-random bytes."""
    out = bytearray()
    counter = 0
    while len(out) < size:
        out += hashlib.sha256(f"{seed}:{counter}".encode()).digest()
        counter += 1
    return bytes(out[:size])


def lora_safetensors(seed: str, rank: int = 4) -> bytes:
    """A small but valid safetensors file with LoRA-shaped BF16 tensors."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt", "name": TRAINER_JOB_NAME}}
    offset = 0
    for block in range(4):
        for part, shape in (("lora_A", [rank, 64]), ("lora_B", [64, rank])):
            size = shape[0] * shape[1] * 2
            key = f"transformer.single_transformer_blocks.{block}.proj_out.{part}.weight"
            header[key] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + size]}
            offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + _stream(seed, offset)


def _yaml(value: Any, indent: int = 0) -> str:
    """Minimal YAML dump of nested dicts, lists and scalars."""
    pad = "  " * indent
    if isinstance(value, dict):
        return "".join(
            f"{pad}{k}:\n{_yaml(v, indent + 1)}"
            if isinstance(v, dict | list) and v
            else f"{pad}{k}: {_scalar(v)}\n"
            for k, v in value.items()
        )
    return "".join(
        f"{pad}-\n{_yaml(v, indent + 1)}"
        if isinstance(v, dict | list)
        else f"{pad}- {_scalar(v)}\n"
        for v in value
    )


def _scalar(value: Any) -> str:
    """YAML scalar."""
    if value == [] or value == {}:
        return json.dumps(value)
    return json.dumps(value) if isinstance(value, str | bool) or value is None else str(value)


def trained_model_tar(training_id: str, values: dict[str, Any]) -> bytes:
    """The trainer's `trained_model.tar` (lora.safetensors and config.yaml)."""
    folder = f"output/{TRAINER_JOB_NAME}"
    members = {
        f"{folder}/lora.safetensors": lora_safetensors(training_id),
        f"{folder}/config.yaml": _yaml(train_config(values)).encode(),
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def output_image(prediction_id: str, index: int, output_format: str) -> tuple[bytes, str]:
    """A small distinct image per (prediction, index); returns (bytes, content type)."""
    pil_format, content_type = _IMAGE_FORMATS.get(output_format, _IMAGE_FORMATS["webp"])
    r, g, b = hashlib.sha256(f"{prediction_id}:{index}".encode()).digest()[:3]
    image = Image.new("RGB", (64, 64), (r, g, b))
    draw = ImageDraw.Draw(image)
    draw.rectangle((8 + index * 10, 8, 18 + index * 10, 56), fill=(255 - r, 255 - g, 255 - b))
    buffer = io.BytesIO()
    image.save(buffer, format=pil_format, quality=90)
    return buffer.getvalue(), content_type


def image_extension(output_format: str) -> str:
    """File extension for an output_format value."""
    return output_format if output_format in _IMAGE_FORMATS else "webp"
