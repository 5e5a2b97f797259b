"""The training trigger's argument checks, light enough for a DAG file's parse.

``BriaStartTrainingOperator`` and ``BriaTrainingSensor`` check the trigger's arguments when the task is
defined, so a bad value fails at parse time; this module imports nothing but the exceptions, and the
``hook_params`` rule (:func:`airflow_provider_bria.waiting.events.check_hook_params`) only when there are
``hook_params`` to check. Also importable from :mod:`airflow_provider_bria.triggers._training_events` and
:mod:`airflow_provider_bria.triggers.training`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from airflow_provider_bria.exceptions import BriaInputError


def _is_number(value: Any) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def _check_model_id(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise BriaInputError(f"model_id must be an int, got {value!r}")
    return value


def _check_conn_id(value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise BriaInputError(f"bria_conn_id must be a non-empty string, got {value!r}")
    return value


def _check_poll_interval(value: Any) -> float:
    if not _is_number(value):
        raise BriaInputError(f"poll_interval must be a number, got {value!r}")
    if value <= 0:
        raise BriaInputError(f"poll_interval must be > 0, got {value!r}")
    return float(value)


def _check_end_time(value: Any) -> float:
    if not _is_number(value):
        raise BriaInputError(f"end_time must be a number, got {value!r}")
    return float(value)


def _check_execution_deadline(value: Any) -> float | None:
    if value is not None and not _is_number(value):
        raise BriaInputError(f"execution_deadline must be a number or None, got {value!r}")
    return float(value) if value is not None else None


def _check_max_consecutive_failures(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise BriaInputError(f"max_consecutive_failures must be an int >= 0, got {value!r}")
    return value


def _check_hook_params(value: Any) -> dict[str, Any]:
    if value is None or (isinstance(value, Mapping) and not value):
        return {}  # nothing to carry: no need to load the event contract (a parse builds this check)
    from airflow_provider_bria.waiting.events import check_hook_params

    return check_hook_params(value)


_TRIGGER_ARG_CHECKS: dict[str, Any] = {
    "model_id": _check_model_id,
    "bria_conn_id": _check_conn_id,
    "poll_interval": _check_poll_interval,
    "end_time": _check_end_time,
    "execution_deadline": _check_execution_deadline,
    "stop_on_timeout": bool,
    "stop_on_kill": bool,
    "max_consecutive_failures": _check_max_consecutive_failures,
    "hook_params": _check_hook_params,
}


def check_trigger_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Validate (any subset of) :class:`BriaTrainingTrigger`'s keyword arguments; return them normalised.

    The trigger checks its arguments with this function, and the operator and the sensor call it too, before
    anything remote happens: ``BriaStartTrainingOperator`` at construction (what is known then) and again in
    ``execute`` before starting the training, so a bad value (say a ``timedelta`` in ``hook_params``, which
    the triggerer cannot deserialise) fails the task before a training starts, not after, on every retry.

    :param kwargs: trigger keyword arguments, e.g. ``check_trigger_kwargs(hook_params=..., poll_interval=...)``.
    :return: the values as the trigger stores them (floats for times, a dict copy of ``hook_params``).
    :raises BriaInputError: naming the first bad argument.
    :raises TypeError: for an argument the trigger does not take.
    """
    unknown = sorted(set(kwargs) - set(_TRIGGER_ARG_CHECKS))
    if unknown:
        raise TypeError(f"BriaTrainingTrigger takes no argument(s) {unknown}")
    return {name: _TRIGGER_ARG_CHECKS[name](value) for name, value in kwargs.items()}


__all__ = ["check_trigger_kwargs"]
