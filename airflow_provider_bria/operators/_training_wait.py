"""Waiting for a training, shared by :class:`BriaStartTrainingOperator` and :class:`BriaTrainingSensor`.

As the Databricks provider does, the deferral (building the trigger with absolute deadlines and deferring) and
the resumption (validating the event and reading the finished model) are written once here and called by both
tasks; the synchronous wait of the operator runs the waiting core's sync driver with the same policy knobs the
trigger uses.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import TYPE_CHECKING, Any, NoReturn

from airflow_provider_bria.contract import ModelStatus
from airflow_provider_bria.exceptions import BriaTrainingTimeoutError
from airflow_provider_bria.triggers._training_events import (
    EVENT_SUCCESS,
    LOG_EVERY_N_POLLS,
    check_trigger_kwargs,
    event_status_for_model,
    validate_training_event,
)
from airflow_provider_bria.waiting.policy import Deadline, PollFailed, PollPolicy, PollTimeout
from airflow_provider_bria.waiting.sync import wait_sync

if TYPE_CHECKING:
    from airflow_provider_bria.hooks.bria import BriaHook


def execution_deadline(task: Any, started: float) -> float | None:
    """The absolute epoch deadline of the task's ``execution_timeout`` (``None`` without one).

    :param task: the operator or sensor.
    :param started: ``time.time()`` when this try started.
    """
    if task.execution_timeout is None:
        return None
    return started + float(task.execution_timeout.total_seconds())


def training_trigger_kwargs(task: Any, model_id: int, started: float, *, poll_interval: float, budget: float,
                            stop_on_timeout: bool, stop_on_kill: bool) -> dict[str, Any]:
    """The :class:`~airflow_provider_bria.triggers.training.BriaTrainingTrigger` kwargs, checked.

    :param task: the operator or sensor (gives ``bria_conn_id``, ``hook_params``, ``max_consecutive_failures``,
        ``execution_timeout``).
    :param model_id: the model.
    :param started: ``time.time()`` when this try started (the deadlines are absolute, counted from it).
    :param poll_interval: seconds between polls.
    :param budget: the wait budget in seconds.
    :param stop_on_timeout: recorded for ``execute_complete``.
    :param stop_on_kill: the trigger's ``on_kill`` stops the training.
    """
    return check_trigger_kwargs(
        model_id=model_id,
        bria_conn_id=task.bria_conn_id,
        poll_interval=poll_interval,
        end_time=started + budget,
        execution_deadline=execution_deadline(task, started),
        stop_on_timeout=stop_on_timeout,
        stop_on_kill=stop_on_kill,
        max_consecutive_failures=task.max_consecutive_failures,
        hook_params=task.hook_params,
    )


def defer_training_wait(task: Any, trigger_kwargs: dict[str, Any], *, timeout: timedelta | None) -> NoReturn:
    """Defer ``task`` to a training trigger; it resumes in ``execute_complete``.

    :param task: the operator or sensor.
    :param trigger_kwargs: from :func:`training_trigger_kwargs`.
    :param timeout: Airflow's own deferral timeout (``None``: the trigger enforces the deadlines itself).
    """
    # Imported here: it pulls in Airflow's trigger machinery, which parsing a DAG does not need.
    from airflow_provider_bria.triggers.training import BriaTrainingTrigger

    task.defer(trigger=BriaTrainingTrigger(**trigger_kwargs), method_name="execute_complete", timeout=timeout)
    raise AssertionError("unreachable: defer() raises TaskDeferred")  # pragma: no cover


def resumed_event(hook: BriaHook, event: Any) -> tuple[dict[str, Any], Mapping[str, Any] | None]:
    """Validate the event a deferred training task resumed with; on success also return the finished model.

    :param hook: the task's hook (reads the model when the event carries no summary).
    :param event: the trigger event.
    :return: ``(event, model)``; ``model`` is ``None`` unless the status is ``success``.
    :raises BriaTriggerEventError: when the event is missing or malformed.
    """
    event = validate_training_event(event)
    if event["status"] != EVENT_SUCCESS:
        return event, None
    model = event.get("model") or hook.get_model(event["model_id"])
    return event, {**model, "id": event["model_id"]}


def poll_model_sync(hook: BriaHook, model_id: int, policy: PollPolicy, log: Any,
                    finished: Callable[[ModelStatus], bool], progress: str = "") -> Mapping[str, Any]:
    """Poll a model on the worker until ``finished(status)``; return the model.

    :param hook: the hook.
    :param model_id: the model.
    :param policy: the poll policy (deadlines in ``time.monotonic`` time).
    :param log: the task's logger.
    :param finished: whether a status ends the wait.
    :param progress: appended to the periodic status line.
    :raises PollTimeout: when the deadline passes first.
    :raises BriaAPIError: the last poll error, after more transient ones in a row than the policy tolerates.
    """
    seen: dict[str, Any] = {"polls": 0, "last": None}

    def done(model: Mapping[str, Any]) -> bool:
        status = ModelStatus.parse(str(model.get("status")))
        if finished(status):
            return True
        seen["polls"] += 1
        if status.value != seen["last"] or seen["polls"] % LOG_EVERY_N_POLLS == 0:
            log.info("Model %s is %s%s", model_id, status.value, progress)
        seen["last"] = status.value
        return False

    try:
        return wait_sync(policy, lambda: hook.get_model(model_id), done, what=f"model {model_id}", log=log)
    except PollFailed as err:
        raise err.error from None


def wait_for_training_sync(task: Any, model_id: int, started: float) -> Mapping[str, Any]:
    """The start operator's synchronous wait: until the model is terminal, or the wait budget runs out.

    :param task: the operator (``poll_interval``, ``timeout``, ``max_consecutive_failures``).
    :param model_id: the model.
    :param started: ``time.time()`` when this try started (the budget counts from it).
    :raises PollTimeout: when the budget runs out.
    """
    budget_left = float(task.timeout) - (time.time() - started)
    policy = PollPolicy(float(task.poll_interval), (Deadline(time.monotonic() + budget_left),),
                        max_consecutive_failures=task.max_consecutive_failures, poll_first=False)
    return poll_model_sync(task.hook, model_id, policy, task.log,
                           lambda status: event_status_for_model(status) is not None,
                           f" (wait budget {float(task.timeout):.0f} s)")


def wait_until_stopped(hook: BriaHook, model_id: int, *, poll_interval: float, timeout: float,
                       log: Any) -> ModelStatus:
    """Poll until the model leaves ``InProgress``/``Stopping``; transient errors are tolerated until the deadline.

    :param hook: the hook.
    :param model_id: the model.
    :param poll_interval: seconds between polls.
    :param timeout: seconds before :class:`BriaTrainingTimeoutError`.
    :param log: the task's logger.
    """
    policy = PollPolicy.within(poll_interval, timeout, time.monotonic(), max_consecutive_failures=None,
                               poll_first=False)
    try:
        model = poll_model_sync(hook, model_id, policy, log,
                                lambda status: status not in (ModelStatus.IN_PROGRESS, ModelStatus.STOPPING),
                                "; waiting for Stopped")
    except PollTimeout:
        raise BriaTrainingTimeoutError(f"Model {model_id} did not reach Stopped within {timeout:.0f} s",
                                       model_id=model_id) from None
    status = ModelStatus.parse(str(model.get("status")))
    log.info("Model %s is %s", model_id, status.value)
    return status
