"""The training event contract and trigger-argument checks, without Airflow's trigger machinery.

:class:`~airflow_provider_bria.triggers.training.BriaTrainingTrigger` fires the events described here; the
start-training operator and the training sensor validate and map them. Those two modules are imported whenever a
DAG file using them is parsed, so they import this light module, and import the trigger itself (and with it
``airflow.triggers.base``, a sizeable share of the provider's import time) only on the code path that defers.
Every name here is also importable from :mod:`airflow_provider_bria.triggers.training`.

Event payload::

    {"status": "success" | "failed" | "stopped" | "deleted" | "timeout" | "error",
     "model_id": int, "model_status": str | None, "message": str,
     "reason": str,            # "completed", "failed", "stopped", "deleted", "timeout", "execution_timeout",
                               # "not_found", "auth", "transient", "unexpected"
     "model": dict | None}     # a small JSON-safe summary of the model (on success/failed/stopped/deleted)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from airflow_provider_bria.contract import ModelStatus
from airflow_provider_bria.exceptions import (
    RETRYABLE_ERRORS,
    BriaModelDeletedError,
    BriaTrainingError,
    BriaTrainingFailedError,
    BriaTrainingStoppedError,
    BriaTrainingTimeoutError,
)
from airflow_provider_bria.triggers._training_args import check_trigger_kwargs
from airflow_provider_bria.waiting.events import TRAINING_EVENTS, EventStatus, validate_event

EVENT_SUCCESS = EventStatus.SUCCESS.value
EVENT_FAILED = EventStatus.FAILED.value
EVENT_STOPPED = EventStatus.STOPPED.value
EVENT_DELETED = EventStatus.DELETED.value
EVENT_TIMEOUT = EventStatus.TIMEOUT.value
EVENT_ERROR = EventStatus.ERROR.value
#: Every status a training event can carry.
TRAINING_EVENT_STATUSES = TRAINING_EVENTS.status_values

REASON_TIMEOUT = "timeout"
REASON_EXECUTION_TIMEOUT = "execution_timeout"

#: Errors of one poll that may go away on their own (after the hook's own retries were used up): the taxonomy's
#: retryable reads, kept under this name for import compatibility.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = RETRYABLE_ERRORS

#: Model fields copied into events and operator return values (all small and JSON-safe).
MODEL_SUMMARY_FIELDS = (
    "id",
    "name",
    "status",
    "project_id",
    "dataset_id",
    "training_mode",
    "training_version",
    "active_model_version",
    "checkpoint_steps",
)

#: While the status does not change, log one poll in this many (status changes are always logged).
LOG_EVERY_N_POLLS = 10


def model_summary(model: Mapping[str, Any]) -> dict[str, Any]:
    """Return the small, JSON-safe subset of a model object that events and return values carry.

    :param model: a model object from the API.
    """
    out = {key: model.get(key) for key in MODEL_SUMMARY_FIELDS if key in model}
    try:
        json.dumps(out)
    except (TypeError, ValueError):
        out = {key: str(value) for key, value in out.items()}
    return out


def event_status_for_model(status: ModelStatus) -> str | None:
    """Map a model status to the event status that ends the wait, or ``None`` to keep waiting.

    ``Stopping`` ends the wait as ``stopped``: a stop cannot be undone and the model will never complete.
    ``Deleted`` (Bria's soft delete) ends it as ``deleted``: the model is gone for good.

    :param status: the parsed model status.
    """
    if status.is_success:
        return EVENT_SUCCESS
    if status is ModelStatus.FAILED:
        return EVENT_FAILED
    if status in (ModelStatus.STOPPED, ModelStatus.STOPPING):
        return EVENT_STOPPED
    if status is ModelStatus.DELETED:
        return EVENT_DELETED
    return None


def deleted_model_message(model_id: int | str) -> str:
    """The one message for a model found ``Deleted`` (training wait, sensor, operator, generation).

    :param model_id: the model id.
    """
    return f"Model {model_id} was deleted; create a new model"


# --------------------------------------------------------------------------------------------
# The event contract, shared by the operator and the sensor
# --------------------------------------------------------------------------------------------


def validate_training_event(event: Any) -> dict[str, Any]:
    """Check a training event and return it as a dict.

    :param event: the payload a deferred task resumed with.
    :raises BriaTriggerEventError: when the event is missing, not a dict, lacks ``status``/``model_id`` or
        carries an unknown status.
    """
    return validate_event(event, TRAINING_EVENTS)


def training_error_for_event(event: Mapping[str, Any]) -> BriaTrainingError | None:
    """Return the exception matching a validated non-success event (``None`` for ``success``).

    ``failed`` -> :class:`BriaTrainingFailedError`, ``stopped`` -> :class:`BriaTrainingStoppedError`,
    ``deleted`` -> :class:`BriaModelDeletedError`, ``timeout`` -> :class:`BriaTrainingTimeoutError`,
    ``error`` -> :class:`BriaTrainingError`.

    :param event: a validated event.
    """
    status = event["status"]
    if status == EVENT_SUCCESS:
        return None
    model_id = event["model_id"]
    model_status = event.get("model_status")
    message = str(event.get("message") or f"Training of model {model_id} ended with {status}")
    if status == EVENT_FAILED:
        return BriaTrainingFailedError(
            f"{message}. A failed model cannot be restarted: create a new model.", model_id=model_id,
            status=model_status,
        )
    if status == EVENT_STOPPED:
        return BriaTrainingStoppedError(
            f"{message}. A stopped model cannot be resumed: create a new model.", model_id=model_id,
            status=model_status,
        )
    if status == EVENT_DELETED:
        return BriaModelDeletedError(deleted_model_message(model_id), model_id=model_id, status=model_status)
    if status == EVENT_TIMEOUT:
        return BriaTrainingTimeoutError(message, model_id=model_id, status=model_status)
    return BriaTrainingError(message, model_id=model_id, status=model_status)


__all__ = [
    "EVENT_DELETED",
    "EVENT_ERROR",
    "EVENT_FAILED",
    "EVENT_STOPPED",
    "EVENT_SUCCESS",
    "EVENT_TIMEOUT",
    "LOG_EVERY_N_POLLS",
    "MODEL_SUMMARY_FIELDS",
    "REASON_EXECUTION_TIMEOUT",
    "REASON_TIMEOUT",
    "TRAINING_EVENT_STATUSES",
    "TRANSIENT_ERRORS",
    "check_trigger_kwargs",
    "deleted_model_message",
    "event_status_for_model",
    "model_summary",
    "training_error_for_event",
    "validate_training_event",
]
