"""Deferrable wait for a Bria training: :class:`BriaTrainingTrigger` and its event contract.

The trigger polls ``GET /v1/tailored-gen/models/{model_id}`` with the hook's async client until the model
reaches a terminal status or a deadline passes, then fires exactly one event::

    {"status": "success" | "failed" | "stopped" | "deleted" | "timeout" | "error",
     "model_id": int, "model_status": str | None, "message": str,
     "reason": str,            # why: "completed", "failed", "stopped", "deleted", "timeout", "execution_timeout",
                               # "not_found", "auth", "transient", "unexpected"
     "model": dict | None}     # a small JSON-safe summary of the model (on success/failed/stopped/deleted)

Deadlines are absolute epoch seconds computed by the operator before deferring, so a triggerer restart (the
trigger is re-created from :meth:`BriaTrainingTrigger.serialize`) never resets them. The trigger never stops a
training on a timeout: the operator's ``execute_complete`` does that on a worker (one owner for the decision,
and the stop is logged in the task log). A user killing the deferred task (mark failed/success, clear) makes
Airflow >= 3.3 call :meth:`BriaTrainingTrigger.on_kill`, which stops the training when ``stop_on_kill``.

The event contract (:func:`validate_training_event`, :func:`training_error_for_event`, the ``EVENT_*``
constants) and :func:`check_trigger_kwargs` live in :mod:`airflow_provider_bria.triggers._training_events`, which
does not import Airflow's trigger machinery, so the operator and the sensor stay cheap to import when a DAG is
parsed; they are re-exported here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from airflow_provider_bria._state import TRAINING_TRIGGER, check_version
from airflow_provider_bria.contract import ModelStatus
from airflow_provider_bria.exceptions import (
    BriaAuthError,
    BriaError,
    BriaInputError,
    BriaNotFoundError,
    BriaTrainingError,
)
from airflow_provider_bria.triggers._training_events import (
    EVENT_DELETED,
    EVENT_ERROR,
    EVENT_FAILED,
    EVENT_STOPPED,
    EVENT_SUCCESS,
    EVENT_TIMEOUT,
    LOG_EVERY_N_POLLS,
    MODEL_SUMMARY_FIELDS,
    REASON_EXECUTION_TIMEOUT,
    REASON_TIMEOUT,
    TRAINING_EVENT_STATUSES,
    TRANSIENT_ERRORS,
    check_trigger_kwargs,
    deleted_model_message,
    event_status_for_model,
    model_summary,
    training_error_for_event,
    validate_training_event,
)
from airflow_provider_bria.waiting.policy import TRIGGER_FIRST_WAIT_JITTER, Deadline, PollFailed, PollTimeout
from airflow_provider_bria.waiting.trigger import BriaPollingTrigger

#: The first wait (after the immediate first poll) is ``poll_interval`` times a random factor in this range, so
#: triggers started together (a triggerer restart, a backfill) spread their later polls over half an interval
#: instead of polling in lock-step forever; later waits are the plain ``poll_interval``.
FIRST_WAIT_JITTER = TRIGGER_FIRST_WAIT_JITTER

#: Upper bound of the trigger's on_kill stop call; Airflow gives on_kill ``[triggerer] on_kill_timeout`` (30 s).
ON_KILL_TIMEOUT_SECONDS = 20.0


class _UnknownStatus(BriaInputError):
    """The model answered with a status this code does not know."""

    def __init__(self, raw: str, err: BriaInputError) -> None:
        self.raw = raw
        super().__init__(str(err))


class BriaTrainingTrigger(BriaPollingTrigger):
    """Wait asynchronously until a Bria model finishes training.

    :param model_id: the model whose training is awaited.
    :param bria_conn_id: Airflow connection id of type ``bria``.
    :param poll_interval: seconds between two polls of the model. The first poll is immediate; the wait after it
        is a random 50-100 % of ``poll_interval`` (so triggers started together do not poll in lock-step), every
        later wait the full interval; no wait goes past a deadline.
    :param end_time: absolute deadline (epoch seconds) of the wait; after it the trigger fires ``timeout``.
    :param execution_deadline: optional absolute deadline (epoch seconds) derived from the task's
        ``execution_timeout``; after it the trigger fires ``timeout`` with reason ``execution_timeout``.
    :param stop_on_timeout: recorded for the operator (the trigger itself never stops a training on timeout).
    :param stop_on_kill: stop the training when a user kills the deferred task (Airflow >= 3.3).
    :param max_consecutive_failures: how many polls in a row may fail with a transient error (5xx, 429,
        connection error, timeout; each after the hook's own retries) before the trigger gives up with an
        ``error`` event. Non-transient errors (401/403/404) end the wait at once.
    :param hook_params: JSON-only keyword arguments for :class:`~airflow_provider_bria.hooks.bria.BriaHook`.
    :param state_version: layout version of these kwargs (see :mod:`airflow_provider_bria._state`); ``None``
        for kwargs stored by release 0.1.0.
    """

    state_kind = TRAINING_TRIGGER

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
        state_version: int | None = None,
    ) -> None:
        super().__init__()
        check_version(TRAINING_TRIGGER, state_version)
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
        self.bria_conn_id = values["bria_conn_id"]
        self.poll_interval = values["poll_interval"]
        self.end_time: float = values["end_time"]
        self.execution_deadline: float | None = values["execution_deadline"]
        self.stop_on_timeout: bool = values["stop_on_timeout"]
        self.stop_on_kill: bool = values["stop_on_kill"]
        self.max_consecutive_failures: int = values["max_consecutive_failures"]
        self.hook_params = values["hook_params"]
        self._last_status: str | None = None
        self._polls = 0

    def kwargs(self) -> dict[str, Any]:
        """The exact keyword arguments that re-create this trigger."""
        return {
            "model_id": self.model_id,
            "bria_conn_id": self.bria_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
            "execution_deadline": self.execution_deadline,
            "stop_on_timeout": self.stop_on_timeout,
            "stop_on_kill": self.stop_on_kill,
            "max_consecutive_failures": self.max_consecutive_failures,
            "hook_params": self.hook_params,
        }

    def _event(
        self,
        status: str,
        message: str,
        *,
        reason: str,
        model_status: str | None = None,
        model: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return {
            "status": status,
            "model_id": self.model_id,
            "model_status": model_status,
            "message": message,
            "reason": reason,
            "model": model_summary(model) if model is not None else None,
        }

    def _deadlines(self) -> tuple[Deadline, ...]:
        # Listed so that, when both have passed at once, the earlier one (ties: execution_timeout) is reported.
        deadlines = [Deadline(self.end_time, REASON_TIMEOUT)]
        if self.execution_deadline is not None:
            deadlines.insert(0, Deadline(self.execution_deadline, REASON_EXECUTION_TIMEOUT))
        return tuple(deadlines)

    async def wait(self) -> dict[str, Any]:
        """Poll the model until it is terminal; return the event payload."""
        policy = self.policy(*self._deadlines(), max_consecutive_failures=self.max_consecutive_failures)
        model = await self.poll_until(policy, self._poll, self._finished, f"model {self.model_id}")
        status = ModelStatus.parse(str(model.get("status")))
        outcome = event_status_for_model(status) or EVENT_ERROR
        message = (deleted_model_message(self.model_id) if outcome == EVENT_DELETED
                   else f"Model {self.model_id} training ended with status {status.value}")
        return self._event(outcome, message, reason=outcome if outcome != EVENT_SUCCESS else "completed",
                           model_status=status.value, model=model)

    def _finished(self, model: Mapping[str, Any]) -> bool:
        """Whether a polled model ends the wait (status changes and every n-th poll are logged)."""
        raw = str(model.get("status"))
        try:
            status = ModelStatus.parse(raw)
        except BriaInputError as err:
            raise _UnknownStatus(raw, err) from None
        self._polls += 1
        if status.value != self._last_status or self._polls % LOG_EVERY_N_POLLS == 0:
            self.log.info("Model %s is %s (poll %d; next in %.1f s)", self.model_id, status.value, self._polls,
                          self.poll_interval)
        self._last_status = status.value
        return event_status_for_model(status) is not None

    async def _poll(self) -> dict[str, Any]:
        """One poll: the model's summary (a flat dict: nothing nested outlives the poll while the trigger sleeps)."""
        hook = await self.shared_hook()
        return model_summary(await hook.aget_model(self.model_id))

    def timeout_event(self, err: PollTimeout) -> dict[str, Any]:
        """A deadline passed while the model was still training."""
        reason = err.deadline.reason
        return self._event(EVENT_TIMEOUT, f"Model {self.model_id} still {self._last_status or 'unknown'} when the "
                           f"wait's {reason} deadline passed ({err.late:.1f} s ago)", reason=reason,
                           model_status=self._last_status)

    def failed_event(self, err: PollFailed) -> dict[str, Any]:
        """Polling kept failing with transient errors."""
        return self._event(EVENT_ERROR, f"Polling model {self.model_id} failed {err.failures} times in a row; last "
                           f"error: {err.error}", reason="transient", model_status=self._last_status)

    def error_event(self, err: Exception) -> dict[str, Any]:
        """A non-transient answer (404, 401/403, an unknown status) or a bug."""
        if isinstance(err, BriaNotFoundError):
            return self._event(EVENT_ERROR, f"Model {self.model_id} not found: {err}", reason="not_found")
        if isinstance(err, BriaAuthError):
            return self._event(EVENT_ERROR, f"Not allowed to read model {self.model_id}: {err}", reason="auth")
        if isinstance(err, _UnknownStatus):
            return self._event(EVENT_ERROR, str(err), reason="unexpected", model_status=err.raw)
        if isinstance(err, BriaError):
            return self._event(EVENT_ERROR, f"Polling model {self.model_id} failed: {err}", reason="unexpected",
                               model_status=self._last_status)
        self.log.exception("Unexpected error while polling model %s", self.model_id)
        return self._event(EVENT_ERROR, f"Unexpected {type(err).__name__} while polling model {self.model_id}: "
                           f"{err}", reason="unexpected", model_status=self._last_status)

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
        hook = await self.shared_hook()
        model = await hook.aget_model(self.model_id)
        status = ModelStatus.parse(str(model.get("status")))
        if status is not ModelStatus.IN_PROGRESS:
            self.log.info("Model %s is %s: nothing to stop", self.model_id, status.value)
            return str(status.value)
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
            return str(status.value)
        return ModelStatus.STOPPING.value


__all__ = [
    "EVENT_DELETED",
    "EVENT_ERROR",
    "EVENT_FAILED",
    "EVENT_STOPPED",
    "EVENT_SUCCESS",
    "EVENT_TIMEOUT",
    "FIRST_WAIT_JITTER",
    "LOG_EVERY_N_POLLS",
    "MODEL_SUMMARY_FIELDS",
    "ON_KILL_TIMEOUT_SECONDS",
    "REASON_EXECUTION_TIMEOUT",
    "REASON_TIMEOUT",
    "TRAINING_EVENT_STATUSES",
    "TRANSIENT_ERRORS",
    "BriaTrainingTrigger",
    "check_trigger_kwargs",
    "deleted_model_message",
    "event_status_for_model",
    "model_summary",
    "training_error_for_event",
    "validate_training_event",
]
