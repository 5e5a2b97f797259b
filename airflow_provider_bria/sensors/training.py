"""Wait for a Bria model's training started elsewhere: :class:`BriaTrainingSensor`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue

from airflow_provider_bria._compat import AirflowSensorTimeout, AirflowTaskTimeout, conf, parsed_reschedule_dates
from airflow_provider_bria.links.bria import BriaModelLink, push_console_xcoms
from airflow_provider_bria.operators._reconcile import coerce_id
from airflow_provider_bria.operators.base import BriaBaseOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from airflow_provider_bria.results import TrainingSummary

#: The trigger needs a positive poll interval; a sensor's ``poke_interval`` may be 0.
MIN_TRIGGER_POLL_INTERVAL = 0.1


class BriaTrainingSensor(BaseSensorOperator, BriaBaseOperator):
    """Wait until a Bria model finishes training (started by another task or DAG, or by hand).

    ``Completed`` succeeds (the return value / XCom is the training summary); ``Failed`` raises
    :class:`~airflow_provider_bria.exceptions.BriaTrainingFailedError`; ``Stopping``/``Stopped`` raise
    :class:`~airflow_provider_bria.exceptions.BriaTrainingStoppedError`; ``Deleted`` raises
    :class:`~airflow_provider_bria.exceptions.BriaModelDeletedError` ("model N was deleted; create a new model");
    ``Created`` and ``InProgress`` keep waiting. The sensor never stops a training: it only watches.

    Modes: ``mode="poke"`` (holds a worker slot), ``mode="reschedule"`` (frees it between pokes) or
    ``deferrable=True`` (pokes once, then waits in the triggerer with
    :class:`~airflow_provider_bria.triggers.training.BriaTrainingTrigger`). The sensor ``timeout`` is honoured
    in every mode and always ends in :class:`~airflow.sdk.exceptions.AirflowSensorTimeout` (no retry; skipped
    with ``soft_fail``).

    Returns the training summary, as :class:`~airflow_provider_bria.operators.training.BriaStartTrainingOperator`.

    :param model_id: the model to watch (templated; int or str from XCom).
    :param bria_conn_id: Airflow connection id of type ``bria`` (templated).
    :param hook_params: extra keyword arguments for :class:`~airflow_provider_bria.hooks.bria.BriaHook`
        (JSON values only when deferrable).
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    :param max_consecutive_failures: transient poll failures in a row the trigger tolerates (default 5).
    :param poke_interval: seconds between pokes (default 60).
    :param timeout: seconds before the sensor times out (default ``[sensors] default_timeout``, 7 days).
    """

    template_fields: Sequence[str] = ("bria_conn_id", "model_id")
    operator_extra_links = (BriaModelLink(),)
    ui_color = "#e8e0ff"

    def __init__(
        self,
        *,
        model_id: int | str,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        max_consecutive_failures: int = 5,
        poke_interval: float | timedelta = 60,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_bria.triggers._training_args import check_trigger_kwargs

        super().__init__(poke_interval=poke_interval, **kwargs)
        self.model_id = model_id
        self.deferrable = deferrable
        checks: dict[str, Any] = {"max_consecutive_failures": max_consecutive_failures}
        if deferrable:
            checks["hook_params"] = self.hook_params  # the trigger must be able to carry them
        self.max_consecutive_failures: int = check_trigger_kwargs(**checks)["max_consecutive_failures"]
        self._published = False

    def poke(self, context: Context) -> bool | PokeReturnValue:
        """Read the model once: ``True`` (with the summary) when ``Completed``, raise when it failed or stopped.

        :param context: the task context.
        """
        from airflow_provider_bria.operators.training import parse_model_status, training_summary
        from airflow_provider_bria.triggers._training_events import (
            EVENT_SUCCESS,
            event_status_for_model,
            training_error_for_event,
        )

        model_id = coerce_id(self.model_id, "model_id")
        model = self.hook.get_model(model_id)
        if not self._published:
            push_console_xcoms(context, self.hook.console_url, project_id=model.get("project_id"),
                               dataset_id=model.get("dataset_id"), model_id=model_id)
            self._published = True
        status = parse_model_status(model)
        outcome = event_status_for_model(status)
        if outcome is None:
            self.log.info("Model %s is %s", model_id, status.value)
            return False
        if outcome == EVENT_SUCCESS:
            summary = training_summary({**model, "id": model_id}, self.hook.console_url)
            self.log.info("Model %s finished training: %s", model_id, summary)
            return PokeReturnValue(is_done=True, xcom_value=summary)
        raise training_error_for_event(  # type: ignore[misc]
            {"status": outcome, "model_id": model_id, "model_status": status.value,
             "message": f"Model {model_id} is {status.value}"}
        )

    def execute(self, context: Context) -> Any:
        """Poke/reschedule as any sensor, or (deferrable) poke once and then defer.

        :param context: the task context.
        """
        from airflow_provider_bria.operators._training_wait import defer_training_wait, training_trigger_kwargs

        if not self.deferrable:
            with parsed_reschedule_dates(context["ti"]):  # Airflow 3.0 hands reschedule dates over as strings
                return super().execute(context)
        started = time.time()
        result = self.poke(context)
        if result:
            return result.xcom_value if isinstance(result, PokeReturnValue) else None
        model_id = coerce_id(self.model_id, "model_id")
        kwargs = training_trigger_kwargs(self, model_id, started, budget=float(self.timeout),
                                         poll_interval=max(float(self.poke_interval), MIN_TRIGGER_POLL_INTERVAL),
                                         stop_on_timeout=False, stop_on_kill=False)  # a sensor only watches
        self.log.info("Deferring until model %s finishes training (timeout %.0f s)", model_id, self.timeout)
        defer_training_wait(self, kwargs, timeout=timedelta(seconds=self.timeout))
        return None  # not reached: defer() raises TaskDeferred

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> TrainingSummary:
        """Resume after the trigger fired: the summary on success, a specific exception otherwise.

        ``timeout`` raises :class:`~airflow.sdk.exceptions.AirflowSensorTimeout` (a sensor timeout: not
        retried; skipped with ``soft_fail``), or :class:`~airflow.sdk.exceptions.AirflowTaskTimeout` when the
        task's ``execution_timeout`` ran out first (as in poke mode).

        :param context: the task context.
        :param event: the trigger event.
        :raises BriaTriggerEventError: when the event is missing or malformed.
        """
        from airflow_provider_bria.operators._training_wait import resumed_event
        from airflow_provider_bria.operators.training import training_summary
        from airflow_provider_bria.triggers._training_events import (
            EVENT_TIMEOUT,
            REASON_EXECUTION_TIMEOUT,
            training_error_for_event,
        )

        event, model = resumed_event(self.hook, event)
        if model is not None:
            summary = training_summary(model, self.hook.console_url)
            self.log.info("Model %s finished training: %s", event["model_id"], summary)
            return summary
        if event["status"] == EVENT_TIMEOUT:
            message = str(event.get("message") or "Sensor timed out")
            if event.get("reason") == REASON_EXECUTION_TIMEOUT:
                raise AirflowTaskTimeout(message)
            raise AirflowSensorTimeout(message)
        raise training_error_for_event(event)  # type: ignore[misc]
