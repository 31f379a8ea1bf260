"""The trainer's inputs, checked against the trainer version's own schema before money is spent.

Replicate validates a training's input only once the training runs: a value out of range fails
a paid run minutes later. So every configured input is checked against the version's
`openapi_schema.components.schemas.TrainingInput` first: inputs the trainer does not have are
left out (and logged), values outside its types, enums or bounds are refused by setting name.
"""

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lib.errors import ConfigError
from lib.settings import Settings

if TYPE_CHECKING:
    from lib.adapters.replicate import Replicate

logger = logging.getLogger(__name__)

# Sent with every training (the ZIP and the model's trigger word): a trainer without them cannot
# train a model that answers to its trigger word.
SENT_WITH_EVERY_RUN = ("input_images", "trigger_word")
CAPTION_PREFIX = "autocaption_prefix"
# The subject class a caption names, from the model's free-text gender (anything else: a person).
SUBJECTS = {
    "female": "a woman",
    "woman": "a woman",
    "f": "a woman",
    "male": "a man",
    "man": "a man",
    "m": "a man",
}
_TYPES: dict[str, tuple[type, ...]] = {
    "integer": (int,),
    "number": (int, float),
    "boolean": (bool,),
    "string": (str,),
}
_TYPE_WORDS = {
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "string": "a string",
}


def training_input(replicate: "Replicate", settings: Settings) -> dict[str, object]:
    """The configured trainer inputs the trainer version accepts; 503 config_invalid otherwise."""
    trainer = f"{settings.trainer_model}:{replicate.trainer_version()}"
    return checked_input(
        replicate.trainer_schema(), settings.full_training_input(), trainer=trainer
    )


def for_run(
    accepted: Mapping[str, object], *, trigger_word: str, gender: str | None, input_images: str
) -> dict[str, object]:
    """The input of one run: the accepted configured inputs, its trigger word and ZIP, and the
    captions' prefix with {trigger_word} and {subject} (from `gender`) filled in (none if "")."""
    run_input = {**accepted, "trigger_word": trigger_word, "input_images": input_images}
    prefix = run_input.pop(CAPTION_PREFIX, None)
    if prefix:
        subject = SUBJECTS.get((gender or "").strip().lower(), "a person")
        filled = str(prefix).replace("{trigger_word}", trigger_word).replace("{subject}", subject)
        run_input[CAPTION_PREFIX] = filled
    return run_input


def checked_input(
    openapi: Mapping[str, Any], configured: Mapping[str, object], *, trainer: str
) -> dict[str, object]:
    """`configured` without the inputs the schema lacks; ConfigError naming the first setting
    whose value the schema refuses, or an input the trainer needs that we cannot send."""
    schema = _training_input_schema(openapi, trainer)
    properties = schema["properties"]
    for name in SENT_WITH_EVERY_RUN:
        if name not in properties:
            raise _invalid(f"The trainer {trainer} has no {name} input")
    for name in schema.get("required", []):
        if name not in configured and name not in SENT_WITH_EVERY_RUN:
            raise _invalid(f"The trainer {trainer} requires TRAINING_INPUT.{name}")
    accepted = {}
    for name, value in configured.items():
        if name not in properties:
            logger.info("trainer input left out name=%s trainer=%s", name, trainer)
            continue
        problem = _problem(_resolved(properties[name], openapi), value)
        if problem:
            raise _invalid(f"TRAINING_INPUT.{name} must be {problem}")
        accepted[name] = value
    return accepted


def _training_input_schema(openapi: Mapping[str, Any], trainer: str) -> Mapping[str, Any]:
    try:
        schema = openapi["components"]["schemas"]["TrainingInput"]
        if not isinstance(schema["properties"], dict):
            raise TypeError
    except (KeyError, TypeError):
        raise _invalid(f"The trainer {trainer} publishes no TrainingInput schema") from None
    return schema


def _resolved(prop: Mapping[str, Any], openapi: Mapping[str, Any]) -> Mapping[str, Any]:
    """A property with Cog's `allOf: [{"$ref": "#/components/schemas/X"}]` (how it writes
    choices) merged in."""
    merged = dict(prop)
    for part in prop.get("allOf", []):
        ref = part.get("$ref", "") if isinstance(part, dict) else ""
        if ref.startswith("#/components/schemas/"):
            merged |= openapi["components"]["schemas"].get(ref.rsplit("/", 1)[1], {})
    return merged


def _problem(prop: Mapping[str, Any], value: object) -> str | None:
    """What the value must be instead, or None when the schema accepts it."""
    kind = prop.get("type")
    if kind in _TYPES and (
        not isinstance(value, _TYPES[kind]) or (isinstance(value, bool) and kind != "boolean")
    ):
        return _TYPE_WORDS[kind]
    if "enum" in prop and value not in prop["enum"]:
        return "one of " + ", ".join(repr(choice) for choice in prop["enum"])
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    bounds = (
        ("minimum", lambda limit: value < limit, "at least"),
        ("maximum", lambda limit: value > limit, "at most"),
        ("exclusiveMinimum", lambda limit: value <= limit, "more than"),
        ("exclusiveMaximum", lambda limit: value >= limit, "less than"),
    )
    for key, breaks, words in bounds:
        limit = prop.get(key)  # OpenAPI 3.0's boolean exclusiveMinimum is not a limit
        if isinstance(limit, int | float) and not isinstance(limit, bool) and breaks(limit):
            return f"{words} {limit}"
    return None


def _invalid(message: str) -> ConfigError:
    return ConfigError(message, code="config_invalid")
