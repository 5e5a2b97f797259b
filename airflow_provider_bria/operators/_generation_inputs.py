"""Checks and inputs shared by the generation operators: model readiness, image inputs, default output folder."""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import os
import re
from typing import TYPE_CHECKING, Any

from airflow_provider_bria.contract import ModelStatus, TrainingFamily, training_family
from airflow_provider_bria.exceptions import BriaInputError, BriaModelNotReadyError
from airflow_provider_bria.results import loose

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook

log = logging.getLogger(__name__)

#: Which model families an endpoint serves: v2 image/structured prompt = FIBO, v1 = legacy, video = both.
API_FAMILIES: dict[str, frozenset[TrainingFamily]] = {
    "v2": frozenset({TrainingFamily.FIBO}),
    "v1": frozenset({TrainingFamily.LEGACY}),
    "video": frozenset({TrainingFamily.FIBO, TrainingFamily.LEGACY}),
}
_SUGGEST = {
    "v2": "use BriaGenerateLegacyImagesOperator for legacy models",
    "v1": "use BriaGenerateImagesOperator (v2) for FIBO models",
    "video": "",
}


def check_model_ready(hook: BriaHook, model_id: int, *, api: str) -> dict[str, Any]:
    """Fetch a model and check it can serve ``api`` (``v2``, ``v1`` or ``video``) before any generation request.

    A model must be ``Completed`` (uploaded models: ``completed``). The v2 image and structured-prompt
    endpoints serve FIBO models only, the v1 endpoint legacy models only. A model that reports no
    ``training_version`` (the FIBO-only API era; some uploaded models) is not rejected by family.

    :param hook: the hook.
    :param model_id: the model id.
    :param api: ``v2``, ``v1`` or ``video``.
    :raises BriaModelNotReadyError: when the model cannot be used.
    """
    model = loose(hook.get_model(model_id))
    name = model.get("name")
    raw_status = model.get("status")
    try:
        status = ModelStatus.parse(str(raw_status))
    except BriaInputError:
        raise BriaModelNotReadyError(f"Model {model_id} ({name!r}) has an unknown status {raw_status!r}") from None
    if not status.is_success:
        hint = {
            ModelStatus.CREATED: "training has not been started",
            ModelStatus.IN_PROGRESS: "training is still running; wait for it (BriaTrainingSensor)",
            ModelStatus.SYNCING: "the uploaded model is still syncing",
            ModelStatus.FAILED: "training failed; create and train a new model",
            ModelStatus.STOPPING: "training was stopped; create and train a new model",
            ModelStatus.STOPPED: "training was stopped; create and train a new model",
            ModelStatus.DELETED: "the model was deleted; create a new model",
        }.get(status, "")
        raise BriaModelNotReadyError(
            f"Model {model_id} ({name!r}) is {status.value}, not Completed: it cannot generate"
            + (f" ({hint})" if hint else "")
        )
    version = model.get("training_version")
    if not version:
        # FIBO-only API era: no training_version at all (v2 is right); uploaded legacy models may not report one
        if api == "v1":
            log.warning("Model %s does not report a training_version; assuming it is a legacy model", model_id)
        log.info("Model %s (%r) is %s (no training_version reported)", model_id, name, status.value)
        return model
    try:
        family = training_family(version)
    except BriaInputError:
        log.warning("Model %s has an unrecognised training_version %r; not checking its family", model_id, version)
        return model
    if family is not None and family not in API_FAMILIES[api]:
        endpoint = {"v2": "v2 tailored generation", "v1": "legacy v1 text-to-image"}.get(api, api)
        raise BriaModelNotReadyError(
            f"Model {model_id} ({name!r}) is a {family.value} model (training_version={version!r}); the "
            f"{endpoint} endpoint does not serve it: {_SUGGEST[api]}"
        )
    log.info("Model %s (%r) is %s (training_version=%s)", model_id, name, status.value, version)
    return model


def safe_segment(text: str) -> str:
    """Make a string safe as one path segment of any object store (``manual__2025-01-01T00:00:00+00:00``).

    :param text: the text.
    """
    segment = re.sub(r"[^A-Za-z0-9._=-]+", "_", str(text)).strip("_") or "_"
    return segment if segment.strip(".") else segment.replace(".", "_")  # ".." must not climb out of the folder


def default_output_path(context: Any) -> str:
    """The default output folder: ``file://$AIRFLOW_HOME/bria_outputs/<dag_id>/<run_id>``.

    Retries of a task instance use the same folder (so they skip what exists); each DAG run gets its own.

    :param context: the task context.
    """
    ti = context.get("ti") if hasattr(context, "get") else None
    dag_id = getattr(ti, "dag_id", None) or getattr(context.get("dag"), "dag_id", None) or "dag"
    run_id = context.get("run_id") or getattr(ti, "run_id", None) or "run"
    home = os.path.abspath(os.path.expanduser(os.environ.get("AIRFLOW_HOME") or "~/airflow"))
    return f"file://{home}/bria_outputs/{safe_segment(dag_id)}/{safe_segment(run_id)}"


def read_image_input(image: Any) -> tuple[str, str]:
    """Turn an image input into what the API takes (URL or bare base64) and a stable identity for naming.

    Accepted: an ``http(s)`` URL (sent as is), a ``data:`` URI, bare base64 text, raw bytes, a local path, or
    any ``ObjectStoragePath`` (or URI such as ``s3://conn@bucket/key``), read and base64-encoded. Reading is
    shared with the other operators (:func:`~airflow_provider_bria.operators._image_inputs.encode_image`);
    bare base64 text is recognised here.

    :param image: the image input.
    :returns: ``(value_to_send, identity)``; the identity is the URL or the SHA-256 of the image bytes.
    """
    from airflow_provider_bria.hooks._inputs import sniff_image_format
    from airflow_provider_bria.operators._image_inputs import encode_image, is_url

    if isinstance(image, str):
        text = image.strip()
        if not text:
            raise BriaInputError("image must not be empty")
        if is_url(text):
            return text, text
        data = _bare_base64(text)
        if data is not None and sniff_image_format(data) is not None:
            return "".join(text.split()), "sha256:" + hashlib.sha256(data).hexdigest()
    elif image is None:
        raise BriaInputError("image is required: a URL, base64 text, a path or an object-store URI")
    encoded = encode_image(image)
    return encoded, "sha256:" + hashlib.sha256(base64.b64decode(encoded)).hexdigest()


def _bare_base64(text: str) -> bytes | None:
    """Decode ``text`` as bare base64 (not a path or URI), or return ``None``.

    :param text: the candidate text.
    """
    if len(text) < 16 or "://" in text or text.startswith(("/", ".", "~", "data:")) or os.path.exists(text):
        return None
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError):
        return None
