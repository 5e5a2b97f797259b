"""Start and stop the training of a Bria model.

:class:`BriaStartTrainingOperator` starts (or, on an Airflow retry, reattaches to) a model's training and then
returns, waits on the worker, or defers to :class:`~airflow_provider_bria.triggers.training.BriaTrainingTrigger`
so no worker slot is held for the hours a training takes. :class:`BriaStopTrainingOperator` stops a training
idempotently. See ``docs/training.md`` for the timeout and kill semantics.
"""

from __future__ import annotations

import ast
import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, cast

from airflow_provider_bria._compat import (
    AIRFLOW_VERSION,
    alias_event_extra,
    conf,
    trigger_on_kill_supported,
    warn_once,
)
from airflow_provider_bria.contract import ModelStatus, validate_training_parameters
from airflow_provider_bria.exceptions import (
    BriaConflictError,
    BriaInputError,
    BriaTrainingTimeoutError,
)
from airflow_provider_bria.links.bria import BriaModelLink, model_console_url, push_console_xcoms
from airflow_provider_bria.operators._reconcile import apply_then_check, coerce_id
from airflow_provider_bria.operators.base import BriaBaseOperator

if TYPE_CHECKING:
    import logging

    from airflow.sdk import Context

    from airflow_provider_bria.hooks.bria import BriaHook
    from airflow_provider_bria.results import TrainingSummary

DEFAULT_POLL_INTERVAL = 60.0
#: Bria says a training "typically takes 4-6 hours" (overview; the spec says 2-4): 24 h leaves room for queues
#: and slow runs, since a timeout with ``stop_on_timeout`` ends the training for good (see docs/training.md).
DEFAULT_TIMEOUT = 24 * 3600.0
#: Statuses in which a start_training call has evidently been applied (by this or an earlier attempt).
STARTED_STATUSES = frozenset(
    {ModelStatus.IN_PROGRESS, ModelStatus.COMPLETED, ModelStatus.SYNCING, ModelStatus.UPLOADED_COMPLETED}
)


# --------------------------------------------------------------------------------------------
# Helpers (also used by the training sensor)
# --------------------------------------------------------------------------------------------


def coerce_seconds(value: Any, field: str, *, allow_zero: bool = False) -> float:
    """Return a duration in seconds from a number, a number's text (a rendered template) or a timedelta.

    :param value: seconds (int/float, or a string such as ``"30"`` or ``"0.5"``) or a timedelta.
    :param field: the argument name, for the message.
    :param allow_zero: whether 0 is accepted.
    :raises BriaInputError: when it is not a finite positive duration.
    """
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, str):
        try:
            seconds = float(seconds.strip())
        except ValueError:
            raise BriaInputError(
                f"{field} must be a number of seconds or a timedelta, got {value!r}"
                + (" (an unrendered template?)" if "{{" in value else "")
            ) from None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds):
        raise BriaInputError(f"{field} must be a number of seconds or a timedelta, got {value!r}")
    if seconds < 0 or (seconds == 0 and not allow_zero):
        raise BriaInputError(f"{field} must be {'>= 0' if allow_zero else '> 0'} seconds, got {value!r}")
    return float(seconds)


def _seconds_or_template(value: Any, field: str) -> float | str:
    """A Jinja template as given (checked once rendered), anything else as seconds (checked now)."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return value
    return coerce_seconds(value, field)


def coerce_training_parameters(value: Any) -> dict[str, Any] | None:
    """Accept expert training parameters as a dict, or as its JSON/Python-literal text from a template.

    :param value: ``None``, a mapping, or a string holding one.
    :raises BriaInputError: when it is not a mapping.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            value = json.loads(text)
        except ValueError:
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                raise BriaInputError(
                    f"training_parameters must be a dict (or JSON text of one), got {text[:200]!r}"
                ) from None
    if not isinstance(value, Mapping):
        raise BriaInputError(f"training_parameters must be a dict, got {type(value).__name__}")
    return dict(value)


def parse_model_status(model: Mapping[str, Any]) -> ModelStatus:
    """Return the parsed ``status`` of a model object.

    :param model: a model object from the API.
    """
    return ModelStatus.parse(str(model.get("status")))


def training_summary(model: Mapping[str, Any], console_url: str | None) -> TrainingSummary:
    """The small JSON-safe dict the training operator and sensor return.

    :param model: a model object (or the summary carried by a trigger event).
    :param console_url: the console base URL (``hook.console_url``).
    :return: ``{"model_id", "status", "model_url", "model_name", "project_id", "dataset_id", "training_mode",
        "active_model_version", "checkpoint_steps"}`` (keys whose value is unknown are left out).
    """
    from airflow_provider_bria.triggers._training_events import model_summary

    summary = model_summary(model)
    model_id = int(summary.pop("id"))
    out: dict[str, Any] = {"model_id": model_id, "status": summary.pop("status", None)}
    project_id = summary.get("project_id")
    if project_id is not None:
        out["model_url"] = model_console_url(console_url, project_id, model_id)
    if "name" in summary:
        out["model_name"] = summary.pop("name")
    out.update({key: value for key, value in summary.items() if value is not None})
    return cast("TrainingSummary", out)


def stop_training_if_running(
    hook: BriaHook,
    model_id: int,
    log: logging.Logger | Any,
    *,
    model: Mapping[str, Any] | None = None,
) -> tuple[ModelStatus, bool]:
    """Stop a model's training if, and only if, it is ``InProgress``; safe to call any number of times.

    ``stop_training`` is a POST the hook never retries blindly; after an ambiguous failure (5xx, timeout,
    dropped connection) or a 409 the model is read again and its status decides. One more attempt is made
    when it is still ``InProgress`` after an ambiguous failure.

    :param hook: the hook.
    :param model_id: the model.
    :param log: where to log.
    :param model: the model object if the caller just read it (saves a GET).
    :return: ``(status after the call, whether this call requested the stop)``.
    """
    from airflow_provider_bria.results import loose

    if model is None:
        model = hook.get_model(model_id)
    status = parse_model_status(model)
    if status is not ModelStatus.IN_PROGRESS:
        log.info("Model %s is %s: nothing to stop", model_id, status.value)
        return status, False

    def stopped_model() -> dict[str, Any] | None:
        current = loose(hook.get_model(model_id))
        return None if parse_model_status(current) is ModelStatus.IN_PROGRESS else current

    outcome = apply_then_check(
        lambda: hook.stop_training(model_id), stopped_model, what=f"stop_training for model {model_id}",
        retries=1, delay=0.0, lookup_after=(BriaConflictError,), log=log,
    )
    answer = outcome.value
    if outcome.reconciled and answer is not None:
        status = parse_model_status(answer)
        if isinstance(outcome.after, BriaConflictError):
            log.info("stop_training for model %s answered 409 (%s); model is %s", model_id, outcome.after.message,
                     status.value)
            return status, False
        log.info("stop_training for model %s failed ambiguously (%s) but was applied: model is %s",
                 model_id, outcome.after, status.value)
        return status, True
    log.info("Requested stop of the training of model %s", model_id)
    if isinstance(answer, Mapping) and answer.get("status"):
        try:
            return parse_model_status(answer), True
        except BriaInputError:
            pass
    return ModelStatus.STOPPING, True


# --------------------------------------------------------------------------------------------
# Start training
# --------------------------------------------------------------------------------------------


class BriaStartTrainingOperator(BriaBaseOperator):
    """Start training a Bria model, or reattach to its training on an Airflow retry, and optionally wait.

    The operator reads the model first. ``Created``: expert parameters are validated client-side against
    the documented ranges and the model's ``training_mode`` (:class:`~airflow_provider_bria.exceptions.
    BriaInputError` before any remote change), then training starts. ``InProgress``/``Completed``: the
    training was started earlier (for example by a previous try): the operator reattaches instead of starting
    again. ``Failed``/``Stopping``/``Stopped``/``Deleted``: a specific exception, since such a model can never
    train again (``Deleted``, seen at the start or while waiting: :class:`~airflow_provider_bria.exceptions.
    BriaModelDeletedError`, "model N was deleted; create a new model").
    Right after, it pushes the XCom keys ``model_id``, ``model_url``, ``project_id``, ``project_url``,
    ``dataset_id``, ``dataset_url``.

    Returns the training summary ``{"model_id", "status", "model_url", "model_name", "project_id",
    "dataset_id", "training_mode", "active_model_version", "checkpoint_steps"}`` (unknown keys left out).

    Waiting: ``wait_for_completion=False`` returns at once; otherwise the operator waits synchronously
    (polling on the worker) or, with ``deferrable=True``, defers to
    :class:`~airflow_provider_bria.triggers.training.BriaTrainingTrigger` and holds no worker slot.

    Timeouts: ``timeout`` is the wait budget, measured from the start of this try. When it runs out the
    training is stopped if ``stop_on_timeout`` and :class:`~airflow_provider_bria.exceptions.
    BriaTrainingTimeoutError` is raised. The task's ``execution_timeout`` is honoured in both modes the same
    way (while deferred Airflow does not enforce it, so the trigger carries it as an absolute deadline).
    ``on_kill`` (and the trigger's ``on_kill`` on Airflow >= 3.3 while deferred) stops the training when
    ``stop_on_kill``.

    :param model_id: the model to train (templated; int or str from XCom).
    :param training_parameters: expert training parameters (templated; dict or JSON text). Only for
        ``training_mode="expert"`` models; ``None`` for fully automated training.
    :param wait_for_completion: wait until the training ends (default ``True``).
    :param deferrable: wait in the triggerer instead of on the worker (default
        ``[operators] default_deferrable``).
    :param poll_interval: seconds between polls of the model (templated; number, numeric text or timedelta;
        default 60).
    :param timeout: the wait budget (templated; seconds as a number or numeric text, or a timedelta;
        default 24 hours: Bria says trainings typically take 4-6 hours, and stopping one cannot be undone).
        Non-template values are checked when the DAG is parsed, rendered ones in ``execute`` before anything
        remote happens.
    :param stop_on_timeout: stop the training when the wait times out (default ``True``).
    :param stop_on_kill: stop the training when the task is killed (default ``True``).
    :param max_consecutive_failures: transient poll failures in a row tolerated while waiting (default 5).
    :param hook_params: extra keyword arguments for :class:`~airflow_provider_bria.hooks.bria.BriaHook`; JSON
        values only when ``deferrable`` (the trigger carries them), checked at construction.
    :return: ``{"model_id", "status", "model_url", "model_name", "project_id", "dataset_id",
        "training_mode", "active_model_version", "checkpoint_steps"}``.
    """

    template_fields: Sequence[str] = ("bria_conn_id", "model_id", "training_parameters", "poll_interval", "timeout")
    template_fields_renderers = {"training_parameters": "json"}
    operator_extra_links = (BriaModelLink(),)

    def __init__(
        self,
        *,
        model_id: int | str,
        training_parameters: dict[str, Any] | str | None = None,
        wait_for_completion: bool = True,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float | str | timedelta = DEFAULT_POLL_INTERVAL,
        timeout: float | str | timedelta = DEFAULT_TIMEOUT,
        stop_on_timeout: bool = True,
        stop_on_kill: bool = True,
        max_consecutive_failures: int = 5,
        **kwargs: Any,
    ) -> None:
        from airflow_provider_bria.triggers._training_args import check_trigger_kwargs

        super().__init__(**kwargs)
        self.model_id = model_id
        self.training_parameters = training_parameters
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        # Templates are kept as given and checked after rendering (in execute); anything else is checked now.
        self.poll_interval: float | str = _seconds_or_template(poll_interval, "poll_interval")
        self.timeout: float | str = _seconds_or_template(timeout, "timeout")
        self.stop_on_timeout = stop_on_timeout
        self.stop_on_kill = stop_on_kill
        checks: dict[str, Any] = {"max_consecutive_failures": max_consecutive_failures}
        if deferrable and wait_for_completion:
            checks["hook_params"] = self.hook_params  # the trigger must be able to carry them
        self.max_consecutive_failures: int = check_trigger_kwargs(**checks)["max_consecutive_failures"]
        if deferrable and not wait_for_completion:
            warnings.warn(
                "deferrable=True has no effect when wait_for_completion=False", UserWarning, stacklevel=2
            )
        self._active_model_id: int | None = None
        self._stop_requested = False

    # ------------------------------------------------------------------ execute

    def execute(self, context: Context) -> TrainingSummary:
        """Start or reattach, publish the model's id and URL, then return, wait or defer.

        :param context: the task context.
        """
        from airflow_provider_bria.results import loose
        from airflow_provider_bria.triggers._training_events import event_status_for_model, training_error_for_event

        started = time.time()
        model_id = coerce_id(self.model_id, "model_id")
        params = coerce_training_parameters(self.training_parameters)
        self.poll_interval = coerce_seconds(self.poll_interval, "poll_interval")
        self.timeout = coerce_seconds(self.timeout, "timeout")
        if self.wait_for_completion and self.deferrable:
            # Everything the trigger will get, checked before the training starts (not when deferring after it).
            self._trigger_kwargs(model_id, started)
        hook = self.hook
        try_number = getattr(context.get("ti"), "try_number", None)
        model = loose(hook.get_model(model_id))
        status = parse_model_status(model)
        body = validate_training_parameters(model.get("training_mode"), params)
        self._active_model_id = model_id

        if status is ModelStatus.CREATED:
            self.log.info("Starting the training of model %s (%s, %s) on try %s", model_id,
                          model.get("training_mode"), f"expert parameters {sorted(body)}" if body else "defaults",
                          try_number)
            model = {**model, **self._start(model_id, body)}
        elif status in STARTED_STATUSES:
            self.log.info("Model %s is already %s: reattaching, not starting again (try %s)", model_id,
                          status.value, try_number)
            self._warn_if_parameters_differ(model, body)
        else:
            raise training_error_for_event(_terminal_event(model_id, status))  # type: ignore[misc]

        push_console_xcoms(context, hook.console_url, project_id=model.get("project_id"),
                           dataset_id=model.get("dataset_id"), model_id=model_id)
        status = parse_model_status(model)
        if not self.wait_for_completion:
            self.log.info("Model %s is %s; not waiting (wait_for_completion=False)", model_id, status.value)
            return training_summary(model, hook.console_url)
        if event_status_for_model(status) is not None:
            return self._finish(context, model)
        if self.deferrable:
            self._defer(model_id, started)
        return self._wait_sync(context, model_id, started)

    def _start(self, model_id: int, body: dict[str, Any]) -> dict[str, Any]:
        """Call start_training; after a 409 or an ambiguous failure let the model's status decide."""
        from airflow_provider_bria.results import loose

        hook = self.hook

        def started_model() -> dict[str, Any] | None:
            model = loose(hook.get_model(model_id))
            return None if parse_model_status(model) is ModelStatus.CREATED else model

        outcome = apply_then_check(
            lambda: hook.start_training(model_id, body or None), started_model,
            what=f"start_training for model {model_id}", retries=1, delay=0.0,
            lookup_after=(BriaConflictError,), log=self.log,
        )
        answer = outcome.value
        if isinstance(outcome.after, BriaConflictError):
            self.log.info("start_training for model %s answered 409 (%s): it was already started; "
                          "reattaching", model_id, outcome.after.message)
            return dict(answer)
        if outcome.reconciled:
            self.log.info("It was applied: model %s is %s; not starting again", model_id, answer.get("status"))
            return dict(answer)
        if isinstance(answer, Mapping) and answer.get("status") and answer.get("id") is not None:
            self.log.info("Training of model %s started: %s", model_id, answer.get("status"))
            return dict(answer)
        return loose(hook.get_model(model_id))

    def _warn_if_parameters_differ(self, model: Mapping[str, Any], body: Mapping[str, Any]) -> None:
        current = model.get("training_parameters") or {}
        if not body or not isinstance(current, Mapping):
            return
        differing = sorted(k for k, v in body.items() if k in current and current[k] != v)
        if differing:
            self.log.warning("Model %s was started with other values for %s than requested now; a started "
                             "training cannot change them (create a new model to train with new parameters)",
                             model.get("id"), differing)

    def _trigger_kwargs(self, model_id: int, started: float) -> dict[str, Any]:
        """The trigger's keyword arguments, validated by ``check_trigger_kwargs``."""
        from airflow_provider_bria.operators._training_wait import training_trigger_kwargs

        return training_trigger_kwargs(self, model_id, started, poll_interval=float(self.poll_interval),
                                       budget=float(self.timeout), stop_on_timeout=self.stop_on_timeout,
                                       stop_on_kill=self.stop_on_kill)

    def _defer(self, model_id: int, started: float) -> None:
        from airflow_provider_bria.operators._training_wait import defer_training_wait

        kwargs = self._trigger_kwargs(model_id, started)
        if self.stop_on_kill and not trigger_on_kill_supported():
            warn_once("trigger_on_kill", "Airflow %s does not call a trigger's on_kill: killing this task while it "
                      "is deferred leaves model %s training (stop it with BriaStopTrainingOperator; timeouts still "
                      "stop it)", AIRFLOW_VERSION, model_id)
        self.log.info("Deferring until model %s finishes training (poll every %g s, wait budget %g s)",
                      model_id, self.poll_interval, self.timeout)
        # timeout=None: a framework timeout would fail the task without execute_complete or on_kill, leaking the
        # training. The trigger enforces timeout and execution_timeout itself (absolute deadlines).
        defer_training_wait(self, kwargs, timeout=None)

    def _wait_sync(self, context: Context, model_id: int, started: float) -> TrainingSummary:
        from airflow_provider_bria._compat import AirflowTaskTimeout
        from airflow_provider_bria.operators._training_wait import wait_for_training_sync
        from airflow_provider_bria.waiting.policy import PollTimeout

        try:
            return self._finish(context, wait_for_training_sync(self, model_id, started))
        except PollTimeout:
            self._handle_timeout(model_id, f"Model {model_id} did not finish training within the timeout of "
                                           f"{self.timeout:.0f} s")
            raise  # pragma: no cover - _handle_timeout raises
        except AirflowTaskTimeout:
            # execution_timeout fired on the worker: treat it like the wait timeout, then let Airflow fail the task.
            if self.stop_on_timeout:
                self._stop_quietly(model_id, "execution_timeout reached")
            raise

    # ------------------------------------------------------------------ outcomes

    def _finish(self, context: Context, model: Mapping[str, Any]) -> TrainingSummary:
        """Turn a terminal model into the return value (success) or the matching exception."""
        from airflow_provider_bria.triggers._training_events import (
            EVENT_SUCCESS,
            event_status_for_model,
            training_error_for_event,
        )

        model_id = int(model["id"]) if model.get("id") is not None else coerce_id(self.model_id, "model_id")
        status = parse_model_status(model)
        outcome = event_status_for_model(status)
        if outcome != EVENT_SUCCESS:
            raise training_error_for_event(_terminal_event(model_id, status))  # type: ignore[misc]
        self._emit_asset_events(context, model)
        summary = training_summary({**model, "id": model_id}, self.hook.console_url)
        self.log.info("Model %s finished training: %s", model_id, summary)
        return summary

    def _handle_timeout(self, model_id: int, message: str) -> None:
        status: str | None = None
        if self.stop_on_timeout:
            status = self._stop_quietly(model_id, "wait timed out")
            message += f"; the training was stopped (model is {status})" if status else (
                "; stopping the training failed: it may still be running")
        else:
            message += "; stop_on_timeout=False: the training keeps running"
        raise BriaTrainingTimeoutError(message, model_id=model_id, status=status)

    def _stop_quietly(self, model_id: int, why: str) -> str | None:
        """Stop the training best-effort; return the model status, or ``None`` when stopping failed."""
        try:
            status, requested = stop_training_if_running(self.hook, model_id, self.log)
        except Exception as err:
            self.log.error("%s: could not stop the training of model %s: %s", why, model_id, err)
            return None
        self._stop_requested = self._stop_requested or requested
        if requested:
            self.log.warning("%s: stopped the training of model %s", why, model_id)
        return status.value

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> TrainingSummary:
        """Resume after the trigger fired: map the event to the return value or a specific exception.

        ``success`` returns the summary; ``failed``/``stopped`` raise
        :class:`~airflow_provider_bria.exceptions.BriaTrainingFailedError` /
        :class:`~airflow_provider_bria.exceptions.BriaTrainingStoppedError`; ``timeout`` stops the training
        when ``stop_on_timeout`` and raises :class:`~airflow_provider_bria.exceptions.BriaTrainingTimeoutError`;
        ``error`` (polling kept failing) raises :class:`~airflow_provider_bria.exceptions.BriaTrainingError`
        without stopping anything: the training itself may be fine, and an Airflow retry reattaches to it.

        :param context: the task context.
        :param event: the trigger event.
        :raises BriaTriggerEventError: when the event is missing or malformed.
        """
        from airflow_provider_bria.operators._training_wait import resumed_event
        from airflow_provider_bria.triggers._training_events import (
            EVENT_ERROR,
            EVENT_TIMEOUT,
            REASON_EXECUTION_TIMEOUT,
            training_error_for_event,
        )

        event, model = resumed_event(self.hook, event)
        model_id = event["model_id"]
        self._active_model_id = model_id
        status = event["status"]
        if model is not None:
            return self._finish(context, model)
        if status == EVENT_TIMEOUT:
            what = "execution_timeout" if event.get("reason") == REASON_EXECUTION_TIMEOUT else "timeout"
            self.log.error("Deferred wait for model %s hit its %s", model_id, what)
            self._handle_timeout(model_id, str(event.get("message") or f"Training wait hit its {what}"))
        if status == EVENT_ERROR:
            self.log.error("Polling model %s failed: %s. The training is left running (polling errors are often "
                           "transient); an Airflow retry reattaches to it.", model_id, event.get("message"))
        raise training_error_for_event(event)  # type: ignore[misc]

    def on_kill(self) -> None:
        """Stop the training best-effort when the task is killed and ``stop_on_kill`` (never raises)."""
        if not self.stop_on_kill or self._active_model_id is None or self._stop_requested:
            return
        self._stop_quietly(self._active_model_id, "Task killed")

    # ------------------------------------------------------------------ assets

    def _emit_asset_events(self, context: Context, model: Mapping[str, Any]) -> None:
        """Attach the model id to every ``bria://models/...`` outlet (and add one per asset alias)."""
        emit_model_asset_events(self, context, model)


def emit_model_asset_events(task: BriaStartTrainingOperator, context: Context, model: Mapping[str, Any]) -> None:
    """Attach the model id to every ``bria://models/...`` outlet of ``task`` (and add one per asset alias).

    :param task: the operator whose outlets get the events.
    :param context: the task context.
    :param model: the finished model.
    """
    from airflow.sdk import Asset, AssetAlias

    from airflow_provider_bria.assets import MODEL_ASSET_PREFIX, bria_model_asset, model_asset_extra

    outlets = list(task.outlets or [])
    if not outlets:
        return
    outlet_events = context["outlet_events"]
    model_url = None
    if model.get("project_id") is not None:
        model_url = model_console_url(task.hook.console_url, model["project_id"], model["id"])
    extra = model_asset_extra(model, model_url=model_url, model_name=model.get("name"))
    for outlet in outlets:
        if isinstance(outlet, Asset) and outlet.uri.startswith(MODEL_ASSET_PREFIX):
            outlet_events[outlet].extra.update(extra)
            task.log.info("Asset event %s carries model_id %s", outlet.uri, extra["model_id"])
        elif isinstance(outlet, AssetAlias):
            project = task.hook.get_project(int(model["project_id"]))
            asset = bria_model_asset(project["project_name"], str(model.get("name")))
            alias_extra = alias_event_extra({**extra, "project_name": project["project_name"]})
            outlet_events[outlet].add(asset, extra=alias_extra)
            task.log.info("Asset event %s (via alias %s) carries model_id %s", asset.uri, outlet.name,
                          extra["model_id"])


def _terminal_event(model_id: int, status: ModelStatus) -> dict[str, Any]:
    from airflow_provider_bria.triggers._training_events import EVENT_ERROR, event_status_for_model

    outcome = event_status_for_model(status)
    return {
        "status": outcome or EVENT_ERROR,
        "model_id": model_id,
        "model_status": status.value,
        "message": f"Model {model_id} is {status.value}",
    }


# --------------------------------------------------------------------------------------------
# Stop training
# --------------------------------------------------------------------------------------------


class BriaStopTrainingOperator(BriaBaseOperator):
    """Stop a model's training; idempotent, so safe under Airflow retries.

    Already ``Stopping``/``Stopped``/``Completed``/``Failed`` (or never started, ``Created``): no call is made
    and the status is returned. ``InProgress``: ``stop_training`` is called; a 409 or an ambiguous failure
    is settled by reading the model again. With ``wait_for_stopped`` the operator then polls until the model
    leaves ``Stopping``. Pushes ``model_id``/``model_url`` (and the project and dataset keys) to XCom.

    Returns ``{"model_id", "status", "stop_requested": <bool>, "model_url"}``.

    :param model_id: the model (templated; int or str from XCom).
    :param wait_for_stopped: wait until the model is ``Stopped`` (default ``True``).
    :param poll_interval: seconds between polls while waiting (default 5).
    :param timeout: seconds to wait for ``Stopped`` before :class:`~airflow_provider_bria.exceptions.
        BriaTrainingTimeoutError` (default 600).
    :return: ``{"model_id", "status", "stop_requested", "model_url"}``.
    """

    template_fields: Sequence[str] = ("bria_conn_id", "model_id")
    operator_extra_links = (BriaModelLink(),)

    def __init__(
        self,
        *,
        model_id: int | str,
        wait_for_stopped: bool = True,
        poll_interval: float | timedelta = 5.0,
        timeout: float | timedelta = 600.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.model_id = model_id
        self.wait_for_stopped = wait_for_stopped
        self.poll_interval = coerce_seconds(poll_interval, "poll_interval")
        self.timeout = coerce_seconds(timeout, "timeout")

    def execute(self, context: Context) -> dict[str, Any]:
        """Stop the training if it runs, optionally wait for ``Stopped``.

        :param context: the task context.
        """
        model_id = coerce_id(self.model_id, "model_id")
        hook = self.hook
        model = hook.get_model(model_id)
        values = push_console_xcoms(context, hook.console_url, project_id=model.get("project_id"),
                                    dataset_id=model.get("dataset_id"), model_id=model_id)
        status, requested = stop_training_if_running(hook, model_id, self.log, model=model)
        if status is ModelStatus.CREATED:
            self.log.warning("Model %s was never started: nothing to stop", model_id)
        if self.wait_for_stopped and status in (ModelStatus.IN_PROGRESS, ModelStatus.STOPPING):
            status = self._wait_stopped(model_id)
        result: dict[str, Any] = {"model_id": model_id, "status": status.value, "stop_requested": requested}
        if "model_url" in values:
            result["model_url"] = values["model_url"]
        return result

    def _wait_stopped(self, model_id: int) -> ModelStatus:
        from airflow_provider_bria.operators._training_wait import wait_until_stopped

        return wait_until_stopped(self.hook, model_id, poll_interval=self.poll_interval, timeout=self.timeout,
                                  log=self.log)


__all__ = [
    "BriaStartTrainingOperator",
    "BriaStopTrainingOperator",
    "coerce_seconds",
    "coerce_training_parameters",
    "parse_model_status",
    "stop_training_if_running",
    "training_summary",
]
