"""Deferrable wait for a Bria training: :class:`BriaTrainingTrigger` and its event contract.

The trigger polls ``GET /v1/tailored-gen/models/{model_id}`` with the hook's async client until the model
reaches a terminal status or a deadline passes, then fires exactly one event::

    {"status": "success" | "failed" | "stopped" | "timeout" | "error",
     "model_id": int, "model_status": str | None, "message": str,
     "reason": str,            # why: "completed", "failed", "stopped", "timeout", "execution_timeout",
                               # "not_found", "auth", "transient", "unexpected"
     "model": dict | None}     # a small JSON-safe summary of the model (on success/failed/stopped)

Deadlines are absolute epoch seconds computed by the operator before deferring, so a triggerer restart (the
trigger is re-created from :meth:`BriaTrainingTrigger.serialize`) never resets them. The trigger never stops a
training on a timeout: the operator's ``execute_complete`` does that on a worker (one owner for the decision,
and the stop is logged in the task log). A user killing the deferred task (mark failed/success, clear) makes
Airflow >= 3.3 call :meth:`BriaTrainingTrigger.on_kill`, which stops the training when ``stop_on_kill``.

:func:`validate_training_event`, :func:`training_error_for_event` and :func:`check_trigger_kwargs` are shared
by the start-training operator and the training sensor.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from airflow_provider_bria.contract import ModelStatus
from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaError,
    BriaInputError,
    BriaNotFoundError,
    BriaRateLimitError,
    BriaServerError,
    BriaTrainingError,
    BriaTrainingFailedError,
    BriaTrainingStoppedError,
    BriaTrainingTimeoutError,
    BriaTransportError,
    BriaTriggerEventError,
)

EVENT_SUCCESS = "success"
EVENT_FAILED = "failed"
EVENT_STOPPED = "stopped"
EVENT_TIMEOUT = "timeout"
EVENT_ERROR = "error"
#: Every status a training event can carry.
TRAINING_EVENT_STATUSES = frozenset({EVENT_SUCCESS, EVENT_FAILED, EVENT_STOPPED, EVENT_TIMEOUT, EVENT_ERROR})

REASON_TIMEOUT = "timeout"
REASON_EXECUTION_TIMEOUT = "execution_timeout"

#: Errors of one poll that may go away on their own (after the hook's own retries were used up).
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (BriaServerError, BriaTransportError, BriaRateLimitError)

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

#: Upper bound of the trigger's on_kill stop call; Airflow gives on_kill ``[triggerer] on_kill_timeout`` (30 s).
ON_KILL_TIMEOUT_SECONDS = 20.0


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

    :param status: the parsed model status.
    """
    if status.is_success:
        return EVENT_SUCCESS
    if status is ModelStatus.FAILED:
        return EVENT_FAILED
    if status in (ModelStatus.STOPPED, ModelStatus.STOPPING):
        return EVENT_STOPPED
    return None


def _check_json(name: str, value: Any) -> None:
    """Fail fast when a trigger argument would not survive Airflow's serde round trip."""
    from airflow.sdk.serde import deserialize, serialize

    try:
        json.dumps(value)
        if deserialize(serialize(value)) != value:
            raise TypeError("value changed in a serde round trip")
    except (TypeError, ValueError) as err:
        raise BriaInputError(
            f"{name} must hold only JSON values (str, int, float, bool, None, lists, dicts): {err}"
        ) from err


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
    if value is not None and not isinstance(value, Mapping):
        raise BriaInputError(f"hook_params must be a dict, got {type(value).__name__}")
    params = dict(value or {})
    _check_json("hook_params", params)
    return params


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


class BriaTrainingTrigger(BaseTrigger):
    """Wait asynchronously until a Bria model finishes training.

    :param model_id: the model whose training is awaited.
    :param bria_conn_id: Airflow connection id of type ``bria``.
    :param poll_interval: seconds between two polls of the model.
    :param end_time: absolute deadline (epoch seconds) of the wait; after it the trigger fires ``timeout``.
    :param execution_deadline: optional absolute deadline (epoch seconds) derived from the task's
        ``execution_timeout``; after it the trigger fires ``timeout`` with reason ``execution_timeout``.
    :param stop_on_timeout: recorded for the operator (the trigger itself never stops a training on timeout).
    :param stop_on_kill: stop the training when a user kills the deferred task (Airflow >= 3.3).
    :param max_consecutive_failures: how many polls in a row may fail with a transient error (5xx, 429,
        connection error, timeout; each after the hook's own retries) before the trigger gives up with an
        ``error`` event. Non-transient errors (401/403/404) end the wait at once.
    :param hook_params: JSON-only keyword arguments for :class:`~airflow_provider_bria.hooks.bria.BriaHook`.
    """

    def __init__(
        self,
        model_id: int,
        bria_conn_id: str,
        poll_interval: float,
        end_time: float,
        execution_deadline: float | None = None,
        stop_on_timeout: bool = True,
        stop_on_kill: bool = True,
        max_consecutive_failures: int = 5,
        hook_params: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        values = check_trigger_kwargs(
            model_id=model_id,
            bria_conn_id=bria_conn_id,
            poll_interval=poll_interval,
            end_time=end_time,
            execution_deadline=execution_deadline,
            stop_on_timeout=stop_on_timeout,
            stop_on_kill=stop_on_kill,
            max_consecutive_failures=max_consecutive_failures,
            hook_params=hook_params,
        )
        self.model_id: int = values["model_id"]
        self.bria_conn_id: str = values["bria_conn_id"]
        self.poll_interval: float = values["poll_interval"]
        self.end_time: float = values["end_time"]
        self.execution_deadline: float | None = values["execution_deadline"]
        self.stop_on_timeout: bool = values["stop_on_timeout"]
        self.stop_on_kill: bool = values["stop_on_kill"]
        self.max_consecutive_failures: int = values["max_consecutive_failures"]
        self.hook_params: dict[str, Any] = values["hook_params"]

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Return the class path and the exact keyword arguments that re-create this trigger."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "model_id": self.model_id,
                "bria_conn_id": self.bria_conn_id,
                "poll_interval": self.poll_interval,
                "end_time": self.end_time,
                "execution_deadline": self.execution_deadline,
                "stop_on_timeout": self.stop_on_timeout,
                "stop_on_kill": self.stop_on_kill,
                "max_consecutive_failures": self.max_consecutive_failures,
                "hook_params": self.hook_params,
            },
        )

    def _hook(self) -> Any:
        from airflow_provider_bria.hooks.bria import BriaHook

        return BriaHook(bria_conn_id=self.bria_conn_id, **self.hook_params)

    def _event(
        self,
        status: str,
        message: str,
        *,
        reason: str,
        model_status: str | None = None,
        model: Mapping[str, Any] | None = None,
    ) -> TriggerEvent:
        payload = {
            "status": status,
            "model_id": self.model_id,
            "model_status": model_status,
            "message": message,
            "reason": reason,
            "model": model_summary(model) if model is not None else None,
        }
        return TriggerEvent(payload)

    def _deadline_passed(self, now: float) -> tuple[str, float] | None:
        """Return ``(reason, deadline)`` of the earliest deadline already passed, if any."""
        passed = []
        if self.execution_deadline is not None and now >= self.execution_deadline:
            passed.append((REASON_EXECUTION_TIMEOUT, self.execution_deadline))
        if now >= self.end_time:
            passed.append((REASON_TIMEOUT, self.end_time))
        return min(passed, key=lambda item: item[1]) if passed else None

    def _next_deadline(self) -> float:
        if self.execution_deadline is None:
            return self.end_time
        return min(self.end_time, self.execution_deadline)

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll the model until it is terminal or a deadline passes; yield exactly one event."""
        event = await self._wait()
        yield event

    async def _wait(self) -> TriggerEvent:
        failures = 0
        polls = 0
        last_status: str | None = None
        try:
            async with self._hook() as hook:
                while True:
                    try:
                        model = await hook.aget_model(self.model_id)
                    except TRANSIENT_ERRORS as err:
                        failures += 1
                        if failures > self.max_consecutive_failures:
                            return self._event(
                                EVENT_ERROR,
                                f"Polling model {self.model_id} failed {failures} times in a row; last error: {err}",
                                reason="transient",
                                model_status=last_status,
                            )
                        self.log.warning(
                            "Polling model %s failed (%d/%d consecutive failures tolerated): %s",
                            self.model_id, failures, self.max_consecutive_failures, err,
                        )
                    except BriaNotFoundError as err:
                        return self._event(
                            EVENT_ERROR, f"Model {self.model_id} not found: {err}", reason="not_found"
                        )
                    except BriaAuthError as err:
                        return self._event(
                            EVENT_ERROR, f"Not allowed to read model {self.model_id}: {err}", reason="auth"
                        )
                    else:
                        failures = 0
                        raw_status = str(model.get("status"))
                        try:
                            status = ModelStatus.parse(raw_status)
                        except BriaInputError as err:
                            return self._event(EVENT_ERROR, str(err), reason="unexpected", model_status=raw_status)
                        polls += 1
                        if status.value != last_status or polls % LOG_EVERY_N_POLLS == 0:
                            self.log.info("Model %s is %s (poll %d; next in %.1f s)", self.model_id, status.value,
                                          polls, self.poll_interval)
                        last_status = status.value
                        outcome = event_status_for_model(status)
                        if outcome is not None:
                            return self._event(
                                outcome,
                                f"Model {self.model_id} training ended with status {status.value}",
                                reason=outcome if outcome != EVENT_SUCCESS else "completed",
                                model_status=status.value,
                                model=model,
                            )
                    now = time.time()
                    passed = self._deadline_passed(now)
                    if passed is not None:
                        reason, deadline = passed
                        what = "execution_timeout" if reason == REASON_EXECUTION_TIMEOUT else "timeout"
                        return self._event(
                            EVENT_TIMEOUT,
                            f"Model {self.model_id} still {last_status or 'unknown'} when the wait's {what} "
                            f"deadline passed ({now - deadline:.1f} s ago)",
                            reason=reason,
                            model_status=last_status,
                        )
                    await asyncio.sleep(max(0.0, min(self.poll_interval, self._next_deadline() - now)))
        except BriaError as err:
            return self._event(EVENT_ERROR, f"Polling model {self.model_id} failed: {err}", reason="unexpected",
                               model_status=last_status)
        except Exception as err:
            self.log.exception("Unexpected error while polling model %s", self.model_id)
            return self._event(
                EVENT_ERROR,
                f"Unexpected {type(err).__name__} while polling model {self.model_id}: {err}",
                reason="unexpected",
                model_status=last_status,
            )

    async def on_kill(self) -> None:
        """Stop the training when the user kills the deferred task (Airflow >= 3.3); never raises."""
        if not self.stop_on_kill:
            self.log.info("Task killed; stop_on_kill=False, leaving model %s training", self.model_id)
            return
        try:
            status = await asyncio.wait_for(self._stop(), timeout=ON_KILL_TIMEOUT_SECONDS)
            self.log.info("Task killed; model %s is now %s", self.model_id, status)
        except Exception as err:
            self.log.warning("Task killed; could not stop the training of model %s: %s", self.model_id, err)

    async def _stop(self) -> str:
        async with self._hook() as hook:
            model = await hook.aget_model(self.model_id)
            status = ModelStatus.parse(str(model.get("status")))
            if status is not ModelStatus.IN_PROGRESS:
                self.log.info("Model %s is %s: nothing to stop", self.model_id, status.value)
                return status.value
            self.log.info("Stopping the training of model %s", self.model_id)
            try:
                await hook.astop_training(self.model_id)
            except BriaError as err:
                # A 409 (already stopping) or an ambiguous failure: the model status tells what happened.
                model = await hook.aget_model(self.model_id)
                status = ModelStatus.parse(str(model.get("status")))
                if status is ModelStatus.IN_PROGRESS:
                    raise BriaTrainingError(f"stop_training failed: {err}", model_id=self.model_id,
                                            status=status.value) from err
                return status.value
            return ModelStatus.STOPPING.value


# --------------------------------------------------------------------------------------------
# The event contract, shared by the operator and the sensor
# --------------------------------------------------------------------------------------------


def validate_training_event(event: Any) -> dict[str, Any]:
    """Check a training event and return it as a dict.

    :param event: the payload a deferred task resumed with.
    :raises BriaTriggerEventError: when the event is missing, not a dict, lacks ``status``/``model_id`` or
        carries an unknown status.
    """
    if event is None:
        raise BriaTriggerEventError("The task resumed without a trigger event")
    if not isinstance(event, Mapping):
        raise BriaTriggerEventError(f"Trigger event must be a dict, got {type(event).__name__}")
    status = event.get("status")
    if status not in TRAINING_EVENT_STATUSES:
        raise BriaTriggerEventError(
            f"Unknown trigger event status {status!r}; expected one of {sorted(TRAINING_EVENT_STATUSES)}"
        )
    model_id = event.get("model_id")
    if isinstance(model_id, bool) or not isinstance(model_id, int):
        raise BriaTriggerEventError(f"Trigger event has no integer model_id: {model_id!r}")
    return dict(event)


def training_error_for_event(event: Mapping[str, Any]) -> BriaTrainingError | None:
    """Return the exception matching a validated non-success event (``None`` for ``success``).

    ``failed`` -> :class:`BriaTrainingFailedError`, ``stopped`` -> :class:`BriaTrainingStoppedError`,
    ``timeout`` -> :class:`BriaTrainingTimeoutError`, ``error`` -> :class:`BriaTrainingError`.

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
    if status == EVENT_TIMEOUT:
        return BriaTrainingTimeoutError(message, model_id=model_id, status=model_status)
    return BriaTrainingError(message, model_id=model_id, status=model_status)
