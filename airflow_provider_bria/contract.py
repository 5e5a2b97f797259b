"""The Bria Tailored Generation API contract in one place: enums, paths, limits and validation rules.

The hook, the operators and the emulator all import from here, so a rule is written once and the client
rejects exactly what the emulator (and, as far as the documentation says, Bria) rejects. Sources are in
``docs/api-choices.md``; section numbers below refer to the project's API contract notes.

This module imports nothing beyond the standard library and :mod:`airflow_provider_bria.exceptions`.
"""

from __future__ import annotations

import enum
import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

from airflow_provider_bria._compat import EnumBody, str_enum
from airflow_provider_bria.exceptions import BriaInputError

log = logging.getLogger(__name__)

#: The Airflow connection id every Bria hook, operator, sensor, trigger and the UI plugin use by default (also
#: ``airflow_provider_bria.hooks.DEFAULT_CONN_NAME``; here so that defining a task imports no ``hooks`` package).
DEFAULT_CONN_NAME = "bria_default"
DEFAULT_HOST = "https://engine.prod.bria-api.com"
DEFAULT_CONSOLE_URL = "https://platform.bria.ai"
API_TOKEN_HEADER = "api_token"  # noqa: S105 (a header name, not a secret)


# --------------------------------------------------------------------------------------------
# Enums (exact spellings from the API)
# --------------------------------------------------------------------------------------------


@str_enum
class IpMedium(str, EnumBody):
    """``ip_medium`` of a project."""

    PHOTOGRAPHY = "photography"
    ILLUSTRATION = "illustration"


@str_enum
class IpType(str, EnumBody):
    """``ip_type`` of a project."""

    MULTI_OBJECT_SET = "multi_object_set"
    OBJECT_VARIANTS = "object_variants"
    ICONS = "icons"
    DEFINED_CHARACTER = "defined_character"
    CHARACTER_VARIANTS = "character_variants"
    STYLIZED_SCENE = "stylized_scene"
    OTHER = "other"


#: ip_types allowed only with ``ip_medium=illustration`` (§3.1).
ILLUSTRATION_ONLY_IP_TYPES = frozenset(
    {IpType.OBJECT_VARIANTS, IpType.MULTI_OBJECT_SET, IpType.ICONS, IpType.CHARACTER_VARIANTS}
)
#: ip_types that require ``ip_name`` (1-3 words).
IP_NAME_REQUIRED_TYPES = frozenset({IpType.DEFINED_CHARACTER})
#: ip_types that require ``ip_description`` (<= 6 words).
IP_DESCRIPTION_REQUIRED_TYPES = frozenset({IpType.DEFINED_CHARACTER, IpType.OBJECT_VARIANTS})
#: ip_types supported by the legacy generate_prefix endpoint.
PREFIX_IP_TYPES = frozenset({IpType.STYLIZED_SCENE, IpType.DEFINED_CHARACTER, IpType.OBJECT_VARIANTS})

IP_NAME_MAX_WORDS = 3
IP_DESCRIPTION_MAX_WORDS = 6


@str_enum
class TrainingFamily(str, EnumBody):
    """The two families a project can be locked to."""

    FIBO = "fibo"
    LEGACY = "legacy"


#: Dataset spellings of training_version (§4.1). The model spellings differ (§6.1).
DATASET_TRAINING_VERSIONS = ("max", "light", "3.2", "2.3", "fibo")
MODEL_TRAINING_VERSIONS = ("light", "max", "bria-2.3", "bria-3.2", "fibo")
DEFAULT_DATASET_TRAINING_VERSION = "max"

_VERSION_ALIASES = {
    "fibo": "fibo",
    "max": "max",
    "light": "light",
    "3.2": "3.2",
    "bria-3.2": "3.2",
    "2.3": "2.3",
    "bria-2.3": "2.3",
}


def canonical_training_version(version: str) -> str:
    """Map any documented spelling to the dataset spelling (``bria-3.2`` -> ``3.2``).

    :param version: a dataset or model ``training_version``.
    :raises BriaInputError: for an unknown version.
    """
    key = str(version).strip().lower()
    if key not in _VERSION_ALIASES:
        allowed = sorted(set(DATASET_TRAINING_VERSIONS) | set(MODEL_TRAINING_VERSIONS))
        raise BriaInputError(f"Unknown training_version {version!r}; expected one of {allowed}")
    return _VERSION_ALIASES[key]


def model_training_version(version: str) -> str:
    """Map any documented spelling to the model spelling (``3.2`` -> ``bria-3.2``).

    :param version: a dataset or model ``training_version``.
    """
    canon = canonical_training_version(version)
    return {"3.2": "bria-3.2", "2.3": "bria-2.3"}.get(canon, canon)


def training_family(version: str | None) -> TrainingFamily | None:
    """Return the family of a training version, or ``None`` for ``None``.

    :param version: any spelling of ``training_version``.
    """
    if version is None:
        return None
    canon = canonical_training_version(version)
    return TrainingFamily.FIBO if canon == "fibo" else TrainingFamily.LEGACY


@str_enum
class UploadType(str, EnumBody):
    """``upload_type`` of a dataset."""

    BASIC = "basic"
    ADVANCED = "advanced"


@str_enum
class DatasetStatus(str, EnumBody):
    """``status`` of a dataset (lowercase)."""

    DRAFT = "draft"
    COMPLETED = "completed"


@str_enum
class CaptionsUpdateStatus(str, EnumBody):
    """``captions_update_status`` of a dataset."""

    EMPTY = "empty"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"


@str_enum
class CaptionSource(str, EnumBody):
    """``caption_source`` of an image."""

    PENDING = "pending"
    AUTOMATIC = "automatic"
    MANUAL = "manual"
    UNKNOWN = "unknown"


@str_enum
class BulkUploadStatus(str, EnumBody):
    """``status`` of a bulk upload job."""

    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop."""
        return self in (BulkUploadStatus.COMPLETED, BulkUploadStatus.FAILED)

    @classmethod
    def from_body(cls, body: Any) -> BulkUploadStatus | None:
        """Return the job status of a ``GET .../bulk-upload/status`` body, or ``None`` when it describes no job.

        Tolerates case and surrounding spaces (``" Completed "`` -> ``COMPLETED``); a missing, empty or unknown
        ``status`` (or a body that is not an object) means "no job".

        :param body: the decoded response body.
        """
        if not isinstance(body, Mapping):
            return None
        try:
            return cls(str(body.get("status") or "").strip().lower())
        except ValueError:
            return None


@str_enum
class ModelStatus(str, EnumBody):
    """``status`` of a model (PascalCase; uploaded models report lowercase ``syncing``/``completed``).

    ``Deleted``: Bria's Delete Model "Changes status to Deleted" (a soft delete); such a model is terminal and
    unusable (create a new one).
    """

    CREATED = "Created"
    IN_PROGRESS = "InProgress"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPING = "Stopping"
    STOPPED = "Stopped"
    DELETED = "Deleted"
    SYNCING = "syncing"
    UPLOADED_COMPLETED = "completed"

    @classmethod
    def parse(cls, value: str) -> ModelStatus:
        """Parse a status, tolerating case and separator variants (``in_progress`` -> ``InProgress``).

        :param value: the status string from the API.
        :raises BriaInputError: for an unknown status.
        """
        try:
            return cls(value)
        except ValueError:
            pass
        folded = str(value).replace("_", "").replace(" ", "").lower()
        for member in (cls.CREATED, cls.IN_PROGRESS, cls.COMPLETED, cls.FAILED, cls.STOPPING, cls.STOPPED, cls.DELETED):
            if member.value.lower() == folded:
                return member
        if folded == "syncing":
            return cls.SYNCING
        raise BriaInputError(f"Unknown model status {value!r}")

    @property
    def is_terminal(self) -> bool:
        """Whether the model will not change state on its own any more."""
        return self in MODEL_TERMINAL_STATUSES

    @property
    def is_success(self) -> bool:
        """Whether the model is trained and usable."""
        return self in (ModelStatus.COMPLETED, ModelStatus.UPLOADED_COMPLETED)


MODEL_TERMINAL_STATUSES = frozenset(
    {
        ModelStatus.COMPLETED,
        ModelStatus.FAILED,
        ModelStatus.STOPPED,
        ModelStatus.DELETED,
        ModelStatus.UPLOADED_COMPLETED,
    }
)
MODEL_TRAINING_STATUSES = frozenset({ModelStatus.IN_PROGRESS, ModelStatus.STOPPING, ModelStatus.SYNCING})


@str_enum
class TrainingMode(str, EnumBody):
    """``training_mode`` of a model."""

    FULLY_AUTOMATED = "fully_automated"
    EXPERT = "expert"


@str_enum
class LrScheduler(str, EnumBody):
    """``lr_scheduler`` expert training parameter."""

    LINEAR = "linear"
    COSINE = "cosine"
    COSINE_WITH_RESTARTS = "cosine_with_restarts"
    POLYNOMIAL = "polynomial"
    CONSTANT = "constant"
    CONSTANT_WITH_WARMUP = "constant_with_warmup"


@str_enum
class JobStatus(str, EnumBody):
    """Status of a v2 asynchronous job (``GET /v2/status/{request_id}``).

    Only ``COMPLETED``, ``ERROR``/``FAILED`` and the 404 ``NOT_FOUND`` end a wait. ``UNKNOWN`` (documented as
    an unexpected internal error, "should not occur") and any value Bria may add later keep the wait polling
    until its deadline: Bria's own SDK keeps polling on ``UNKNOWN`` too.
    """

    IN_PROGRESS = "IN_PROGRESS"
    COMPLETED = "COMPLETED"
    ERROR = "ERROR"
    FAILED = "FAILED"
    UNKNOWN = "UNKNOWN"
    NOT_FOUND = "NOT_FOUND"

    @classmethod
    def parse(cls, value: str | None) -> JobStatus:
        """Parse a job status case-insensitively; ``PENDING``/``RUNNING``/``QUEUED`` mean in progress.

        An unrecognised value parses as ``UNKNOWN`` (which is not terminal).

        :param value: the status string from the API.
        """
        text = str(value or "").strip().upper()
        if text in ("PENDING", "RUNNING", "QUEUED", "PROCESSING", "IN PROGRESS"):
            return cls.IN_PROGRESS
        try:
            return cls(text)
        except ValueError:
            return cls.UNKNOWN

    @property
    def is_terminal(self) -> bool:
        """Whether polling can stop (``COMPLETED``, ``ERROR``, ``FAILED``, ``NOT_FOUND``)."""
        return self in (JobStatus.COMPLETED, JobStatus.ERROR, JobStatus.FAILED, JobStatus.NOT_FOUND)

    @property
    def is_failure(self) -> bool:
        """Whether the job ended without a result (``ERROR``, ``FAILED``, or ``NOT_FOUND`` for an expired id)."""
        return self in (JobStatus.ERROR, JobStatus.FAILED, JobStatus.NOT_FOUND)


#: v2 aspect ratios and their (width, height) ratio parts (§7.1).
ASPECT_RATIOS: dict[str, tuple[int, int]] = {
    "1:1": (1, 1),
    "2:3": (2, 3),
    "3:2": (3, 2),
    "3:4": (3, 4),
    "4:3": (4, 3),
    "4:5": (4, 5),
    "5:4": (5, 4),
    "9:16": (9, 16),
    "16:9": (16, 9),
}
DEFAULT_ASPECT_RATIO = "1:1"

LEGACY_GUIDANCE_METHODS = (
    "controlnet_canny",
    "controlnet_depth",
    "controlnet_recoloring",
    "controlnet_color_grid",
)

# --------------------------------------------------------------------------------------------
# Limits
# --------------------------------------------------------------------------------------------

IMAGE_FORMATS = ("jpg", "jpeg", "png", "webp")
#: Pillow format names accepted for dataset images.
PIL_IMAGE_FORMATS = frozenset({"JPEG", "PNG", "WEBP"})
BASIC_MAX_IMAGES = 200
ADVANCED_MAX_IMAGES = 5000
MIN_RESOLUTION = 1024
MIN_UPSCALE_RESOLUTION = 256
#: Create Dataset: "Minimum 5 images required to mark as completed" (Bria's spec, for every dataset; an older
#: docs page said 1 for legacy, superseded). Both names are kept for callers.
MIN_IMAGES_TO_COMPLETE = 5
FIBO_MIN_IMAGES_TO_COMPLETE = MIN_IMAGES_TO_COMPLETE
LEGACY_MIN_IMAGES_TO_COMPLETE = MIN_IMAGES_TO_COMPLETE
VISUAL_SCHEMA_MIN_IMAGES = 5
VISUAL_SCHEMA_MAX_IMAGES = 10
PREFIX_MIN_IMAGES = 1
PREFIX_MAX_IMAGES = 6
MAX_IMAGES_QUERY_MIN = 1
MAX_IMAGES_QUERY_MAX = 200
BULK_ZIP_MAX_BYTES = 5 * 1024**3

#: Expert training parameters: name -> (type, minimum, maximum). ``None`` means unbounded.
EXPERT_PARAMETERS: dict[str, tuple[type, float | None, float | None]] = {
    "learning_rate": (float, 0.000001, 0.001),
    "total_training_steps": (int, 1, 5000),
    "rank": (int, 4, 256),
    "checkpoint_interval": (int, 100, None),
    "lr_warmup_steps": (int, 0, 1000),
    "max_train_steps": (int, 1, 5000),
    "lr_scheduler": (str, None, None),
}
FIBO_DEFAULT_TRAINING_PARAMETERS: dict[str, Any] = {
    "learning_rate": 0.0001,
    "lr_scheduler": "constant_with_warmup",
    "rank": 128,
    "total_training_steps": 750,
    "checkpoint_interval": 500,
    "lr_warmup_steps": 100,
}
LEGACY_DEFAULT_TRAINING_PARAMETERS: dict[str, Any] = {
    "learning_rate": 0.0001,
    "lr_scheduler": "constant",
    "rank": 128,
    "total_training_steps": 1500,
    "checkpoint_interval": 500,
    "lr_warmup_steps": None,
}
EXPERT_ONLY_MESSAGE = "Advanced training parameters are only supported when training_mode is set to 'expert'."

#: v2 generation numeric parameters: name -> (minimum, maximum).
V2_RANGES: dict[str, tuple[float, float]] = {
    "tailored_model_influence": (0.0, 1.5),
    "guidance_scale": (3, 5),
    "steps_num": (20, 50),
}

# --------------------------------------------------------------------------------------------
# Paths (§3-§8). Every function returns a path relative to the host.
# --------------------------------------------------------------------------------------------

TG = "/v1/tailored-gen"


class Paths:
    """Request paths of the API, relative to the host."""

    PROJECTS = f"{TG}/projects"
    DATASETS = f"{TG}/datasets"
    MODELS = f"{TG}/models"
    UPLOAD_MODEL = f"{TG}/models/upload_model"
    GENERATE_VISUAL_SCHEMA = f"{TG}/generate_visual_schema"
    GENERATE_PREFIX = f"{TG}/generate_prefix"
    REFINE_STRUCTURED_PROMPT = f"{TG}/refine_structured_prompt"
    V2_IMAGE = "/v2/image/generate/tailored"
    V2_STRUCTURED_PROMPT = "/v2/structured_prompt/generate/tailored"
    V2_IMAGE_TO_VIDEO = "/v2/video/generate/tailored/image-to-video"

    @staticmethod
    def project(project_id: int | str) -> str:
        """``/v1/tailored-gen/projects/{project_id}``."""
        return f"{TG}/projects/{project_id}"

    @staticmethod
    def project_datasets(project_id: int | str) -> str:
        """Datasets of a project."""
        return f"{TG}/projects/{project_id}/datasets"

    @staticmethod
    def project_models(project_id: int | str) -> str:
        """Models of a project."""
        return f"{TG}/projects/{project_id}/models"

    @staticmethod
    def dataset(dataset_id: int | str) -> str:
        """One dataset."""
        return f"{TG}/datasets/{dataset_id}"

    @staticmethod
    def dataset_clone(dataset_id: int | str) -> str:
        """Clone a dataset as draft."""
        return f"{TG}/datasets/{dataset_id}/clone"

    @staticmethod
    def dataset_download(dataset_id: int | str) -> str:
        """Download an advanced dataset (the documented path has no ``tailored-gen`` segment)."""
        return f"/v1/datasets/{dataset_id}/download"

    @staticmethod
    def dataset_images(dataset_id: int | str) -> str:
        """Images of a dataset (POST upload, GET list, PUT regenerate all captions)."""
        return f"{TG}/datasets/{dataset_id}/images"

    @staticmethod
    def dataset_image(dataset_id: int | str, image_id: int | str) -> str:
        """One image of a dataset."""
        return f"{TG}/datasets/{dataset_id}/images/{image_id}"

    @staticmethod
    def bulk_upload(dataset_id: int | str, *, alias: bool = False) -> str:
        """Bulk upload (``/images/bulk-upload``; ``alias=True`` gives the ``/images/bulk`` spelling)."""
        return f"{TG}/datasets/{dataset_id}/images/{'bulk' if alias else 'bulk-upload'}"

    @staticmethod
    def bulk_upload_status(dataset_id: int | str) -> str:
        """Status of a dataset's bulk upload."""
        return f"{TG}/datasets/{dataset_id}/images/bulk-upload/status"

    @staticmethod
    def model(model_id: int | str) -> str:
        """One model."""
        return f"{TG}/models/{model_id}"

    @staticmethod
    def start_training(model_id: int | str) -> str:
        """Start training a model."""
        return f"{TG}/models/{model_id}/start_training"

    @staticmethod
    def stop_training(model_id: int | str) -> str:
        """Stop training a model."""
        return f"{TG}/models/{model_id}/stop_training"

    @staticmethod
    def model_checkpoints(model_id: int | str) -> str:
        """Checkpoints of an expert model."""
        return f"{TG}/models/{model_id}/checkpoints"

    @staticmethod
    def model_checkpoint(model_id: int | str, step: int | str) -> str:
        """One checkpoint."""
        return f"{TG}/models/{model_id}/checkpoints/{step}"

    @staticmethod
    def model_download(model_id: int | str) -> str:
        """Download a model's weights."""
        return f"{TG}/models/{model_id}/download"

    @staticmethod
    def v1_text_to_image(model_id: int | str) -> str:
        """Legacy v1 tailored text-to-image."""
        return f"/v1/text-to-image/tailored/{model_id}"

    @staticmethod
    def v2_status(request_id: str) -> str:
        """Status of a v2 job."""
        return f"/v2/status/{request_id}"


# --------------------------------------------------------------------------------------------
# Validation rules, shared by client and emulator. Each raises BriaInputError with a specific message.
# --------------------------------------------------------------------------------------------


def word_count(text: str | None) -> int:
    """Count whitespace-separated words.

    :param text: the text, or ``None``.
    """
    return len(str(text or "").split())


def parse_enum(enum_cls: type[enum.Enum], value: Any, field: str) -> Any:
    """Return the enum member for ``value`` or raise a :class:`BriaInputError` naming the field.

    :param enum_cls: the enum class.
    :param value: the raw value.
    :param field: the field name for the message.
    """
    try:
        return enum_cls(value.value if isinstance(value, enum.Enum) else value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum_cls)
        raise BriaInputError(f"Invalid {field} {value!r}; expected one of: {allowed}") from None


def guidance(message: str, *, strict: bool) -> None:
    """Report soft guidance from Bria's docs: a logged warning, or a :class:`BriaInputError` when ``strict``.

    :param message: what the docs advise and what was given.
    :param strict: raise instead of warning (the emulator's ``--strict-limits``).
    """
    if strict:
        raise BriaInputError(message)
    log.warning("%s (Bria's guidance, not a documented rule: sending it anyway)", message)


def check_ip_words(ip_name: str | None, ip_description: str | None, *, strict: bool = False) -> None:
    """Check ``ip_name`` (1-3 words) and ``ip_description`` (up to 6 words) against Bria's guidance.

    The docs phrase both as advice ("e.g.", "a short phrase"), and Bria's own create-project example sends a
    9-word ``ip_description``: by default a longer text is logged as a warning, not refused.

    :param ip_name: the character name, or ``None``.
    :param ip_description: the IP description, or ``None``.
    :param strict: raise :class:`BriaInputError` instead of warning.
    """
    if ip_name is not None and ip_name.strip() and word_count(ip_name) > IP_NAME_MAX_WORDS:
        guidance(f"ip_name should be 1-{IP_NAME_MAX_WORDS} words, got {word_count(ip_name)}: {ip_name!r}",
                 strict=strict)
    if ip_description is not None and word_count(ip_description) > IP_DESCRIPTION_MAX_WORDS:
        guidance(f"ip_description should be at most {IP_DESCRIPTION_MAX_WORDS} words, got "
                 f"{word_count(ip_description)}: {ip_description!r}", strict=strict)


def validate_project_fields(
    *,
    project_name: str | None,
    ip_type: Any,
    ip_medium: Any,
    ip_name: str | None = None,
    ip_description: str | None = None,
    training_version: str | None = None,
    strict: bool = True,
) -> None:
    """Check a create-project request (§3.1).

    :param project_name: required, non-empty.
    :param ip_type: one of :class:`IpType`.
    :param ip_medium: one of :class:`IpMedium`.
    :param ip_name: required for ``defined_character``; 1-3 words advised.
    :param ip_description: required for ``defined_character`` and ``object_variants``; up to 6 words advised.
    :param training_version: optional family lock.
    :param strict: enforce the word-count guidance as rules (the client passes ``False``: warnings only).
    """
    if not project_name or not str(project_name).strip():
        raise BriaInputError("project_name is required and must not be empty")
    itype = parse_enum(IpType, ip_type, "ip_type")
    medium = parse_enum(IpMedium, ip_medium, "ip_medium")
    if itype in ILLUSTRATION_ONLY_IP_TYPES and medium is not IpMedium.ILLUSTRATION:
        raise BriaInputError(
            f"ip_type {itype.value!r} is only allowed with ip_medium 'illustration', not {medium.value!r}"
        )
    if itype in IP_NAME_REQUIRED_TYPES and not (ip_name and ip_name.strip()):
        raise BriaInputError(f"ip_name is required for ip_type {itype.value!r}")
    if itype in IP_DESCRIPTION_REQUIRED_TYPES and not (ip_description and ip_description.strip()):
        raise BriaInputError(f"ip_description is required for ip_type {itype.value!r}")
    check_ip_words(ip_name, ip_description, strict=strict)
    if training_version is not None:
        canonical_training_version(training_version)


def check_family_compatible(project_version: str | None, dataset_version: str) -> None:
    """Check that a dataset's training version fits a project's lock (§4.1).

    :param project_version: the project's ``training_version`` (``None`` = unlocked).
    :param dataset_version: the dataset's ``training_version``.
    """
    if project_version is None:
        return
    pf, df = training_family(project_version), training_family(dataset_version)
    if pf is not df:
        raise BriaInputError(
            f"training_version {dataset_version!r} ({df.value if df else None}) does not match the project's "
            f"{pf.value if pf else None} family (locked to {project_version!r}); FIBO and legacy cannot be mixed"
        )


def expert_parameter_errors(params: Mapping[str, Any], *, strict: bool = True) -> list[dict[str, Any]]:
    """Return the field errors of expert training parameters, in the API's ``errors`` shape (§6.7).

    Types, enums and ranges are the spec's. Two checks are not Bria's stated rules and apply only when
    ``strict`` (the emulator under ``--strict-limits``): unknown keys and ``checkpoint_interval`` above the
    total steps; with ``strict=False`` (the client) see :func:`expert_parameter_guidance`.

    :param params: the start_training body.
    :param strict: also report unknown keys and ``checkpoint_interval > total_training_steps``.
    """
    errors: list[dict[str, Any]] = []
    for name, value in params.items():
        if name not in EXPERT_PARAMETERS:
            if strict:
                errors.append({"msg": "Extra inputs are not permitted", "field_name": name,
                               "field_input": str(value)})
            continue
        kind, lo, hi = EXPERT_PARAMETERS[name]
        if name == "lr_warmup_steps" and value is None:
            continue
        if kind is str:
            allowed = [s.value for s in LrScheduler]
            if value not in allowed:
                errors.append({"msg": f"Input should be {', '.join(repr(a) for a in allowed)}",
                               "field_name": name, "field_input": str(value)})
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            errors.append({"msg": f"Input should be a valid {'integer' if kind is int else 'number'}",
                           "field_name": name, "field_input": str(value)})
            continue
        if kind is int and (isinstance(value, float) and not value.is_integer()):
            errors.append({"msg": "Input should be a valid integer", "field_name": name, "field_input": str(value)})
            continue
        if isinstance(value, float) and not math.isfinite(value):
            errors.append({"msg": "Input should be a finite number", "field_name": name, "field_input": str(value)})
            continue
        if lo is not None and value < lo:
            errors.append({"msg": f"Input should be greater than or equal to {_fmt(lo)}",
                           "field_name": name, "field_input": str(value)})
        elif hi is not None and value > hi:
            errors.append({"msg": f"Input should be less than or equal to {_fmt(hi)}",
                           "field_name": name, "field_input": str(value)})
    if strict:
        errors.extend({"msg": text, "field_name": field, "field_input": str(params.get(field))}
                      for field, text in _unstated_training_rules(params) if field == "checkpoint_interval"
                      and not any(e["field_name"] == field for e in errors))
    return errors


def _unstated_training_rules(params: Mapping[str, Any]) -> list[tuple[str, str]]:
    """``(field, message)`` for start_training inputs Bria's spec neither allows nor forbids."""
    out = [(name, f"{name!r} is not a documented training parameter") for name in params
           if name not in EXPERT_PARAMETERS]
    total = params.get("total_training_steps", params.get("max_train_steps"))
    interval = params.get("checkpoint_interval")
    if (isinstance(total, int) and isinstance(interval, int) and not isinstance(interval, bool)
            and not isinstance(total, bool) and interval > total):
        out.append(("checkpoint_interval",
                    f"Input should be less than or equal to total_training_steps ({total})"))
    return out


def expert_parameter_guidance(params: Mapping[str, Any]) -> list[str]:
    """Warnings for start_training inputs the spec does not forbid: unknown keys (sent as given) and a
    ``checkpoint_interval`` larger than the total steps (no checkpoint would be saved before the end).

    :param params: the start_training body.
    """
    return [f"{field}={params.get(field)!r}: {text}" for field, text in _unstated_training_rules(params)]


def _fmt(value: float) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def validate_training_parameters(training_mode: str | None, params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Check a start_training body client-side; return it without ``None`` values.

    The spec's types and ranges are enforced; unknown keys and ``checkpoint_interval`` above the total steps
    are not Bria's stated rules: they are passed through with a logged warning.

    :param training_mode: the model's training mode (``None`` when unknown: only ranges are checked).
    :param params: the expert parameters, or ``None``/empty for fully automated training.
    :raises BriaInputError: when a parameter is sent for a fully automated model or is out of range.
    """
    body = {k: v for k, v in (params or {}).items() if v is not None}
    if body and training_mode is not None and training_mode != TrainingMode.EXPERT.value:
        raise BriaInputError(EXPERT_ONLY_MESSAGE + f" Model training_mode is {training_mode!r}; got {sorted(body)}.")
    errors = expert_parameter_errors(body, strict=False)
    if errors:
        text = "; ".join(f"{e['field_name']}={e['field_input']}: {e['msg']}" for e in errors)
        raise BriaInputError(f"Invalid expert training parameters: {text}")
    for warning in expert_parameter_guidance(body):
        log.warning("start_training: %s (not a documented rule: sending it anyway)", warning)
    return body


def validate_v2_generation(
    *,
    prompt: str | None,
    structured_prompt: str | None,
    aspect_ratio: str | None = None,
    numbers: Mapping[str, Any] | None = None,
    seed: Any = None,
    seed_rule: bool = True,
) -> None:
    """Check a v2 tailored image/structured prompt request (§7.1-7.2).

    :param prompt: text prompt.
    :param structured_prompt: JSON string from a previous result.
    :param aspect_ratio: one of :data:`ASPECT_RATIOS`.
    :param numbers: numeric parameters checked against :data:`V2_RANGES`.
    :param seed: optional integer seed (the spec types it ``integer`` and states no range).
    :param seed_rule: enforce the spec's "``structured_prompt`` alone recreates an image (requires seed)"
        (the image endpoint; the structured-prompt endpoint always has a prompt).
    """
    has_prompt = bool(prompt and str(prompt).strip())
    has_sp = bool(structured_prompt and str(structured_prompt).strip())
    if not has_prompt and not has_sp:
        raise BriaInputError("Either prompt or structured_prompt (or both, to refine) is required")
    if has_sp:
        import json

        try:
            json.loads(structured_prompt)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise BriaInputError("structured_prompt must be a string holding valid JSON") from None
    if aspect_ratio is not None and aspect_ratio not in ASPECT_RATIOS:
        raise BriaInputError(f"Invalid aspect_ratio {aspect_ratio!r}; expected one of: {', '.join(ASPECT_RATIOS)}")
    for name, value in (numbers or {}).items():
        if value is None:
            continue
        lo, hi = V2_RANGES[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise BriaInputError(f"{name} must be a number, got {value!r}")
        if name in ("guidance_scale", "steps_num") and isinstance(value, float) and not value.is_integer():
            raise BriaInputError(f"{name} must be an integer, got {value!r}")
        if not lo <= value <= hi:
            raise BriaInputError(f"{name} must be between {lo} and {hi}, got {value!r}")
    validate_seed(seed)
    if seed_rule and has_sp and not has_prompt and seed is None:
        raise BriaInputError("structured_prompt without prompt recreates a previous image and requires seed "
                             "(Bria's input combination rules); pass the seed of that result")


def validate_seed(seed: Any) -> None:
    """Check an optional seed: an integer (the spec states no range, so negative values are sent as given).

    :param seed: ``None`` or an integer.
    """
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise BriaInputError(f"seed must be an integer, got {seed!r}")


def validate_image_count(n: int, *, minimum: int, maximum: int, what: str) -> None:
    """Check the number of images of a helper call.

    :param n: how many images were given.
    :param minimum: inclusive minimum.
    :param maximum: inclusive maximum.
    :param what: the call, for the message.
    """
    if not minimum <= n <= maximum:
        raise BriaInputError(f"{what} needs {minimum}-{maximum} images, got {n}")


def image_format_from_name(name: str) -> str | None:
    """Return the lowercase extension of a file name if it is an accepted image format, else ``None``.

    :param name: a file name or path.
    """
    ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return ext if ext in IMAGE_FORMATS else None


def check_resolution(width: int, height: int, *, increase_resolution: bool) -> None:
    """Check an upload's resolution against the dataset rules (§4.9).

    :param width: pixels.
    :param height: pixels.
    :param increase_resolution: whether the server may upscale images from 256x256.
    """
    floor = MIN_UPSCALE_RESOLUTION if increase_resolution else MIN_RESOLUTION
    if width < floor or height < floor:
        hint = "" if increase_resolution else " (set increase_resolution=True to allow upscaling from 256x256)"
        raise BriaInputError(f"Image resolution {width}x{height} is below the minimum {floor}x{floor}{hint}")


def aspect_ratio_size(aspect_ratio: str, *, long_side: int = 1024) -> tuple[int, int]:
    """Pixel size for an aspect ratio, the long side fixed.

    :param aspect_ratio: one of :data:`ASPECT_RATIOS`.
    :param long_side: pixels of the longer side.
    """
    w, h = ASPECT_RATIOS[aspect_ratio]
    if w >= h:
        return long_side, round(long_side * h / w)
    return round(long_side * w / h), long_side


def all_values(enum_cls: Iterable[enum.Enum]) -> list[str]:
    """Return the string values of an enum.

    :param enum_cls: the enum class.
    """
    return [str(m.value) for m in enum_cls]
