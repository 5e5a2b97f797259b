"""BriaStartTrainingOperator: start/reattach, validation before any change, waits, events, kill, over real HTTP."""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import pytest

from airflow_provider_bria._compat import TaskDeferred
from airflow_provider_bria.exceptions import (
    BriaInputError,
    BriaModelDeletedError,
    BriaNotFoundError,
    BriaTrainingError,
    BriaTrainingFailedError,
    BriaTrainingStoppedError,
    BriaTrainingTimeoutError,
    BriaTriggerEventError,
)
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.triggers.training import BriaTrainingTrigger

MODELS = "/v1/tailored-gen/models"


def _op(**kwargs: Any) -> BriaStartTrainingOperator:
    kwargs.setdefault("task_id", "train")
    kwargs.setdefault("poll_interval", 0.2)
    kwargs.setdefault("deferrable", False)
    return BriaStartTrainingOperator(**kwargs)


def _start_calls(emulator: Any, model_id: int) -> list[dict[str, Any]]:
    return [r for r in emulator.requests(path_prefix=f"{MODELS}/{model_id}/start_training") if r["method"] == "POST"]


# ------------------------------------------------------------------ construction


def test_template_fields_and_link() -> None:
    op = _op(model_id="{{ ti.xcom_pull('create_model') }}")
    assert set(op.template_fields) == {"bria_conn_id", "model_id", "training_parameters", "poll_interval", "timeout"}
    assert op.template_fields_renderers == {"training_parameters": "json"}
    assert [link.name for link in op.operator_extra_links] == ["Bria Model"]
    assert op.model_id == "{{ ti.xcom_pull('create_model') }}"  # kept verbatim for Jinja


def test_timeouts_accept_timedelta_and_reject_nonsense() -> None:
    op = _op(model_id=1, timeout=timedelta(hours=2), poll_interval=timedelta(seconds=30))
    assert (op.timeout, op.poll_interval) == (7200.0, 30.0)
    plain_text = _op(model_id=1, timeout="90", poll_interval=" 2.5 ")  # numeric text: not a template
    assert (plain_text.timeout, plain_text.poll_interval) == (90.0, 2.5)
    with pytest.raises(BriaInputError, match="timeout"):
        _op(model_id=1, timeout=0)
    with pytest.raises(BriaInputError, match="poll_interval"):
        _op(model_id=1, poll_interval="fast")  # not a template: checked when the DAG is parsed
    for bad in (float("inf"), "nan", True):
        with pytest.raises(BriaInputError, match="timeout"):
            _op(model_id=1, timeout=bad)


def test_templated_waits_are_kept_then_coerced_after_rendering(
    bria_conn: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    op = _op(model_id="{{ params.model }}", poll_interval="{{ params.poll }}",
             timeout="{{ params.hours * 3600 }}", wait_for_completion=False)
    assert (op.poll_interval, op.timeout) == ("{{ params.poll }}", "{{ params.hours * 3600 }}")
    op.render_template_fields({"params": {"model": model["id"], "poll": 0.25, "hours": 0.5}})
    assert (op.poll_interval, op.timeout) == ("0.25", "1800.0")  # rendered text
    op.execute(make_context())
    assert (op.poll_interval, op.timeout) == (0.25, 1800.0)


@pytest.mark.parametrize(
    ("field", "rendered"),
    [("poll_interval", "0"), ("poll_interval", "soon"), ("timeout", "-5"), ("timeout", ""), ("timeout", "{{ x }}")],
)
def test_bad_rendered_waits_raise_before_any_request(
    bria_conn: Any, model_factory: Any, make_context: Any, field: str, rendered: str
) -> None:
    model = model_factory()
    op = _op(model_id=model["id"], **{field: "{{ params.value }}"})
    op.render_template_fields({"params": {"value": rendered}})
    before = len(bria_conn.requests())
    with pytest.raises(BriaInputError, match=field):
        op.execute(make_context())
    assert len(bria_conn.requests()) == before


def test_deferrable_rejects_hook_params_the_trigger_cannot_carry_at_construction() -> None:
    bad = {"timeout": timedelta(seconds=5)}
    with pytest.raises(BriaInputError, match="hook_params"):
        _op(model_id=1, deferrable=True, hook_params=bad)
    assert _op(model_id=1, deferrable=False, hook_params=bad).hook_params == bad  # waits on the worker: fine
    with pytest.warns(UserWarning, match="no effect"):
        assert _op(model_id=1, deferrable=True, wait_for_completion=False, hook_params=bad).hook_params == bad


def test_trigger_arguments_are_checked_before_the_training_starts(
    bria_conn: Any, model_factory: Any, make_context: Any
) -> None:
    """A value the trigger cannot take fails the task before start_training, not when deferring after it."""
    model = model_factory()
    op = _op(model_id=model["id"], deferrable=True)
    op.hook_params = {"timeout": timedelta(seconds=5)}  # e.g. set after construction
    before = len(bria_conn.requests())
    with pytest.raises(BriaInputError, match="hook_params"):
        op.execute(make_context())
    assert len(bria_conn.requests()) == before
    assert bria_conn.state()["counts"]["trainings_started"] == 0


def test_deferrable_without_waiting_warns() -> None:
    with pytest.warns(UserWarning, match="no effect"):
        _op(model_id=1, deferrable=True, wait_for_completion=False)


def test_deferrable_default_follows_config(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    import airflow_provider_bria.operators.training as module

    monkeypatch.setenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE", "True")
    try:
        reloaded = importlib.reload(module)
        assert reloaded.BriaStartTrainingOperator(task_id="t", model_id=1).deferrable is True
    finally:
        monkeypatch.delenv("AIRFLOW__OPERATORS__DEFAULT_DEFERRABLE")
        importlib.reload(module)


# ------------------------------------------------------------------ bad input: raised before any remote change


@pytest.mark.parametrize("model_id", ["abc", "", None, 0, -3, "1.5"])
def test_bad_model_id_raises_before_any_request(bria_conn: Any, make_context: Any, model_id: Any) -> None:
    before = len(bria_conn.requests())
    with pytest.raises(BriaInputError, match="model_id"):
        _op(model_id=model_id).execute(make_context())
    assert len(bria_conn.requests()) == before


def test_unknown_model_raises_not_found_without_starting(bria_conn: Any, make_context: Any) -> None:
    with pytest.raises(BriaNotFoundError):
        _op(model_id=424242).execute(make_context())
    assert bria_conn.state()["counts"]["trainings_started"] == 0


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"rank": 1000}, "rank"),
        ({"learning_rate": 0.5}, "learning_rate"),
        ({"total_training_steps": 0}, "total_training_steps"),
        ({"lr_scheduler": "sideways"}, "lr_scheduler"),
        ("not json", "training_parameters"),
        ([1, 2], "training_parameters"),
    ],
)
def test_out_of_range_expert_parameters_raise_before_starting(
    bria_conn: Any, model_factory: Any, make_context: Any, params: Any, match: str
) -> None:
    model = model_factory(training_mode="expert")
    with pytest.raises(BriaInputError, match=match):
        _op(model_id=model["id"], training_parameters=params).execute(make_context())
    assert bria_conn.state()["counts"]["trainings_started"] == 0
    assert _start_calls(bria_conn, model["id"]) == []


def test_expert_parameters_on_a_fully_automated_model_raise(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    with pytest.raises(BriaInputError, match="expert"):
        _op(model_id=model["id"], training_parameters={"rank": 64}).execute(make_context())
    assert bria_hook.get_model(model["id"])["status"] == "Created"
    assert _start_calls(bria_conn, model["id"]) == []


# ------------------------------------------------------------------ start, reattach


def test_start_without_waiting_pushes_xcoms_and_returns(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    model = model_factory()
    context = make_context()
    result = _op(model_id=str(model["id"]), wait_for_completion=False).execute(context)
    from kit import TEST_TOKEN as TOKEN

    assert TOKEN not in json.dumps([result, context["ti"].xcoms]) + capsys.readouterr().out
    assert result["model_id"] == model["id"]
    assert result["status"] == "InProgress"
    url = f"https://platform.bria.ai/tailored-generation/projects/{model['project_id']}/models/{model['id']}"
    assert result["model_url"] == url
    xcoms = context["ti"].xcoms
    assert xcoms["model_id"] == model["id"]
    assert xcoms["model_url"] == url
    assert xcoms["project_id"] == model["project_id"]
    assert xcoms["dataset_id"] == model["dataset_id"]
    assert bria_conn.state()["trainings_per_model"] == {str(model["id"]): 1}
    assert bria_hook.get_model(model["id"])["status"] == "InProgress"


def test_console_url_comes_from_the_connection(
    bria_conn: Any, model_factory: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kit import conn_json

    model = model_factory()
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_CONSOLE", conn_json(bria_conn.url, console_url="https://console.example/"))
    context = make_context()
    _op(model_id=model["id"], bria_conn_id="bria_console", wait_for_completion=False).execute(context)
    assert context["ti"].xcoms["model_url"] == (
        f"https://console.example/tailored-generation/projects/{model['project_id']}/models/{model['id']}"
    )


def test_retry_reattaches_instead_of_starting_again(
    bria_conn: Any, model_factory: Any, make_context: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    model = model_factory()
    _op(model_id=model["id"], wait_for_completion=False).execute(make_context(try_number=1))
    capsys.readouterr()
    second = _op(model_id=model["id"], wait_for_completion=False).execute(make_context(try_number=2))
    assert second["status"] in ("InProgress", "Completed")
    assert "reattaching, not starting again (try 2)" in capsys.readouterr().out
    state = bria_conn.state()
    assert state["counts"]["trainings_started"] == 1
    assert state["trainings_per_model"] == {str(model["id"]): 1}
    assert len(_start_calls(bria_conn, model["id"])) == 1


def test_retry_after_completion_succeeds_without_starting(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    bria_conn.set_model_status(model["id"], "Completed")
    result = _op(model_id=model["id"]).execute(make_context(try_number=3))
    assert result["status"] == "Completed"
    assert bria_conn.state()["counts"]["trainings_started"] == 1


def test_expert_parameters_are_sent(bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any) -> None:
    model = model_factory(training_mode="expert")
    params = {"rank": 64, "total_training_steps": 800, "checkpoint_interval": 200, "learning_rate": 0.0002}
    _op(model_id=model["id"], training_parameters=params, wait_for_completion=False).execute(make_context())
    stored = bria_hook.get_model(model["id"])["training_parameters"]
    assert {k: stored[k] for k in params} == params


def test_expert_parameters_as_json_text_from_a_template(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory(training_mode="expert")
    _op(model_id=model["id"], training_parameters='{"rank": 32}', wait_for_completion=False).execute(make_context())
    assert bria_hook.get_model(model["id"])["training_parameters"]["rank"] == 32


@pytest.mark.parametrize(
    ("status", "error"),
    [("Failed", BriaTrainingFailedError), ("Stopped", BriaTrainingStoppedError),
     ("Stopping", BriaTrainingStoppedError)],
)
def test_dead_model_raises_specific_error_without_starting(
    bria_conn: Any, model_factory: Any, make_context: Any, status: str, error: type[Exception]
) -> None:
    model = model_factory()
    bria_conn.set_model_status(model["id"], status)
    with pytest.raises(error, match="new model") as info:
        _op(model_id=model["id"]).execute(make_context())
    assert info.value.model_id == model["id"]
    assert info.value.status == status
    assert _start_calls(bria_conn, model["id"]) == []


# ------------------------------------------------------------------ synchronous wait


def test_sync_wait_returns_the_summary_when_completed(
    bria_conn: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    result = _op(model_id=model["id"], timeout=60).execute(make_context())
    assert result["status"] == "Completed"
    assert result["model_id"] == model["id"]
    assert result["model_name"] == model["name"]
    assert result["project_id"] == model["project_id"]
    assert result["dataset_id"] == model["dataset_id"]


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [("Failed", BriaTrainingFailedError, "is Failed"),
     ("Deleted", BriaModelDeletedError, "was deleted; create a new model")],  # Bria's soft delete mid-wait
)
def test_sync_wait_fails_when_training_fails(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any, status: str, error: type[Exception],
    message: str,
) -> None:
    import threading

    model = model_factory()
    bria_hook.start_training(model["id"])
    timer = threading.Timer(0.3, bria_conn.set_model_status, args=(model["id"], status))
    timer.start()
    try:
        with pytest.raises(error, match=message):  # not a BriaTrainingTimeoutError at the deadline
            _op(model_id=model["id"], timeout=60).execute(make_context())
    finally:
        timer.cancel()


def test_sync_wait_timeout_stops_the_training(
    slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = slow_model_factory()
    real_sleep = time.sleep
    sleeps: list[tuple[float, float]] = []

    def recording_sleep(seconds: float) -> None:
        sleeps.append((seconds, time.monotonic()))
        real_sleep(min(seconds, 0.5))  # a whole poll interval (a regression) is caught below, not waited for

    monkeypatch.setattr(time, "sleep", recording_sleep)
    deadline = time.monotonic() + 0.8
    with pytest.raises(BriaTrainingTimeoutError, match="stopped") as info:
        _op(model_id=model["id"], bria_conn_id="bria_slow", timeout=0.8, poll_interval=3600).execute(make_context())
    # Every sleep was cut to the time left before the wait's deadline, never the 3600 s poll interval.
    assert sleeps
    for seconds, at in sleeps:
        assert 0 <= seconds <= deadline - at + 0.05, (seconds, deadline - at)
    assert info.value.model_id == model["id"]
    assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")


def test_sync_wait_timeout_keeps_training_when_stop_on_timeout_is_false(
    slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    model = slow_model_factory()
    with pytest.raises(BriaTrainingTimeoutError, match="keeps running"):
        _op(model_id=model["id"], bria_conn_id="bria_slow", timeout=0.5, stop_on_timeout=False).execute(
            make_context()
        )
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"


# ------------------------------------------------------------------ deferral


def test_deferrable_defers_with_absolute_deadlines(
    bria_conn: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    op = _op(model_id=model["id"], deferrable=True, timeout=3600, poll_interval=30,
             execution_timeout=timedelta(minutes=10), hook_params={"retry_limit": 2})
    context = make_context()
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(context)
    deferred = info.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout is None  # the trigger enforces the deadlines, so execute_complete always runs
    trigger = deferred.trigger
    assert isinstance(trigger, BriaTrainingTrigger)
    _, kwargs = trigger.serialize()
    assert kwargs["model_id"] == model["id"]
    assert kwargs["poll_interval"] == 30
    assert before + 3600 - 1 <= kwargs["end_time"] <= time.time() + 3600
    assert before + 600 - 1 <= kwargs["execution_deadline"] <= time.time() + 600
    assert kwargs["hook_params"] == {"retry_limit": 2}
    assert kwargs["stop_on_kill"] is True
    # model_id and model_url were pushed before deferring
    assert context["ti"].xcoms["model_id"] == model["id"]
    assert "model_url" in context["ti"].xcoms
    assert bria_conn.state()["counts"]["trainings_started"] == 1


def test_deferrable_does_not_defer_when_already_completed(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    bria_conn.set_model_status(model["id"], "Completed")
    result = _op(model_id=model["id"], deferrable=True).execute(make_context())
    assert result["status"] == "Completed"


# ------------------------------------------------------------------ execute_complete: the event table


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, BriaTriggerEventError),
        ("success", BriaTriggerEventError),
        ({"model_id": 5}, BriaTriggerEventError),
        ({"status": "weird", "model_id": 5}, BriaTriggerEventError),
        ({"status": "success"}, BriaTriggerEventError),
        ({"status": "success", "model_id": "5"}, BriaTriggerEventError),
        ({"status": "failed", "model_id": 5, "model_status": "Failed", "message": "m"}, BriaTrainingFailedError),
        ({"status": "stopped", "model_id": 5, "model_status": "Stopped", "message": "m"}, BriaTrainingStoppedError),
        ({"status": "error", "model_id": 5, "model_status": "InProgress", "message": "poll"}, BriaTrainingError),
        ({"status": "timeout", "model_id": 5, "model_status": "InProgress", "message": "late"},
         BriaTrainingTimeoutError),
    ],
)
def test_execute_complete_maps_events_to_exceptions(event: Any, error: type[Exception], make_context: Any) -> None:
    op = _op(model_id=5, stop_on_timeout=False)
    with pytest.raises(error) as info:
        op.execute_complete(make_context(), event)
    assert type(info.value) is error  # the exact class, not a parent
    if isinstance(info.value, BriaTrainingError):
        assert info.value.model_id == 5


def test_execute_complete_error_event_does_not_stop_the_training(
    slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    event = {"status": "error", "model_id": model["id"], "model_status": "InProgress", "message": "503s"}
    with pytest.raises(BriaTrainingError):
        _op(model_id=model["id"], bria_conn_id="bria_slow").execute_complete(make_context(), event)
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"


def test_execute_complete_timeout_stops_the_training(
    slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    event = {"status": "timeout", "model_id": model["id"], "model_status": "InProgress", "message": "late",
             "reason": "execution_timeout"}
    with pytest.raises(BriaTrainingTimeoutError, match="stopped"):
        _op(model_id=model["id"], bria_conn_id="bria_slow").execute_complete(make_context(), event)
    assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")


def test_execute_complete_success_returns_the_summary(bria_conn: Any, make_context: Any) -> None:
    event = {
        "status": "success", "model_id": 5, "model_status": "Completed", "message": "done", "reason": "completed",
        "model": {"id": 5, "name": "m5", "status": "Completed", "project_id": 2, "dataset_id": 3,
                  "training_mode": "fully_automated"},
    }
    result = _op(model_id=5).execute_complete(make_context(), event)
    assert result == {
        "model_id": 5,
        "status": "Completed",
        "model_url": "https://platform.bria.ai/tailored-generation/projects/2/models/5",
        "model_name": "m5",
        "project_id": 2,
        "dataset_id": 3,
        "training_mode": "fully_automated",
    }


# ------------------------------------------------------------------ on_kill


def test_on_kill_stops_the_training(slow_hook: Any, slow_model_factory: Any, make_context: Any) -> None:
    model = slow_model_factory()
    op = _op(model_id=model["id"], bria_conn_id="bria_slow", wait_for_completion=False)
    op.execute(make_context())
    op.on_kill()
    assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")


def test_on_kill_during_a_sync_wait_stops_the_training(
    slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    """As Airflow does: SIGTERM (or execution_timeout) calls on_kill while execute is still waiting."""
    import threading

    model = slow_model_factory()
    op = _op(model_id=model["id"], bria_conn_id="bria_slow", timeout=3, stop_on_timeout=False)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            op.execute(make_context())
        except BaseException as err:  # the wait ends with a stopped training
            errors.append(err)

    thread = threading.Thread(target=run)
    thread.start()
    deadline = time.monotonic() + 20
    while slow_hook.get_model(model["id"])["status"] != "InProgress" and time.monotonic() < deadline:
        time.sleep(0.05)
    op.on_kill()
    thread.join(30)
    assert isinstance(errors[0], BriaTrainingStoppedError)
    assert slow_hook.get_model(model["id"])["status"] in ("Stopping", "Stopped")


def test_on_kill_respects_stop_on_kill_false(slow_hook: Any, slow_model_factory: Any, make_context: Any) -> None:
    model = slow_model_factory()
    op = _op(model_id=model["id"], bria_conn_id="bria_slow", wait_for_completion=False, stop_on_kill=False)
    op.execute(make_context())
    op.on_kill()
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"


def test_on_kill_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    from kit import conn_json

    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEAD", conn_json("http://127.0.0.1:9"))
    op = _op(model_id=5, bria_conn_id="bria_dead", hook_params={"retry_limit": 0})
    op._active_model_id = 5
    op.on_kill()  # connection refused: logged, not raised
    BriaStartTrainingOperator(task_id="fresh", model_id=5).on_kill()  # never started: nothing to do


def test_default_wait_deadline_is_24_hours(bria_conn: Any, model_factory: Any, make_context: Any) -> None:
    """Bria says trainings typically take 4-6 hours; the default deadline must not stop a normal one."""
    model = model_factory()
    op = _op(model_id=model["id"], deferrable=True)
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        op.execute(make_context())
    _, kwargs = info.value.trigger.serialize()
    assert before + 24 * 3600 - 1 <= kwargs["end_time"] <= time.time() + 24 * 3600
