"""BriaTrainingSensor executed directly: poke results, poke-mode timeout, deferral arguments, event mapping."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from airflow.sdk import PokeReturnValue

from airflow_provider_bria._compat import AirflowSensorTimeout, AirflowTaskTimeout, TaskDeferred
from airflow_provider_bria.exceptions import (
    BriaInputError,
    BriaTrainingError,
    BriaTrainingFailedError,
    BriaTrainingStoppedError,
    BriaTriggerEventError,
)
from airflow_provider_bria.sensors.training import BriaTrainingSensor
from airflow_provider_bria.triggers.training import BriaTrainingTrigger


def _sensor(**kwargs: Any) -> BriaTrainingSensor:
    kwargs.setdefault("task_id", "wait")
    kwargs.setdefault("poke_interval", 0.2)
    kwargs.setdefault("timeout", 60)
    kwargs.setdefault("deferrable", False)
    return BriaTrainingSensor(**kwargs)


def test_template_fields_and_defaults() -> None:
    from airflow_provider_bria.operators.base import BriaBaseOperator

    sensor = _sensor(model_id="{{ ti.xcom_pull('model') }}", hook_params={"timeout": 5})
    assert isinstance(sensor, BriaBaseOperator)
    assert sensor.hook_params == {"timeout": 5}
    assert set(sensor.template_fields) == {"bria_conn_id", "model_id"}
    assert sensor.bria_conn_id == "bria_default"
    assert [link.name for link in sensor.operator_extra_links] == ["Bria Model"]
    with pytest.raises(BriaInputError):
        _sensor(model_id=1, max_consecutive_failures=-2)


def test_deferrable_sensor_rejects_hook_params_the_trigger_cannot_carry() -> None:
    bad = {"timeout": timedelta(seconds=5)}
    with pytest.raises(BriaInputError, match="hook_params"):
        _sensor(model_id=1, deferrable=True, hook_params=bad)
    assert _sensor(model_id=1, deferrable=False, hook_params=bad).hook_params == bad  # poke mode: any value


def test_poke_is_false_while_training_and_true_with_summary_when_completed(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    sensor = _sensor(model_id=str(model["id"]))
    context = make_context()
    assert sensor.poke(context) is False  # Created: not started yet, keep waiting
    assert context["ti"].xcoms["model_id"] == model["id"]
    bria_hook.start_training(model["id"])
    bria_conn.set_model_status(model["id"], "Completed")
    result = sensor.poke(context)
    assert isinstance(result, PokeReturnValue)
    assert result.is_done
    assert result.xcom_value["model_id"] == model["id"]
    assert result.xcom_value["status"] == "Completed"


@pytest.mark.parametrize(
    ("status", "error"),
    [("Failed", BriaTrainingFailedError), ("Stopped", BriaTrainingStoppedError),
     ("Stopping", BriaTrainingStoppedError)],
)
def test_poke_raises_for_a_dead_training(
    bria_conn: Any, model_factory: Any, make_context: Any, status: str, error: type[Exception]
) -> None:
    model = model_factory()
    bria_conn.set_model_status(model["id"], status)
    with pytest.raises(error):
        _sensor(model_id=model["id"]).poke(make_context())


def test_poke_mode_waits_until_completed(bria_conn: Any, bria_hook: Any, model_factory: Any,
                                         make_context: Any) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    result = _sensor(model_id=model["id"]).execute(make_context())
    assert result["status"] == "Completed"
    assert result["model_id"] == model["id"]


def test_poke_mode_times_out(
    slow_hook: Any, slow_emulator: Any, slow_model_factory: Any, make_context: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    real_sleep = time.sleep
    slept: list[float] = []

    def recording_sleep(seconds: float) -> None:
        slept.append(seconds)
        real_sleep(seconds)

    monkeypatch.setattr(time, "sleep", recording_sleep)
    path = f"/v1/tailored-gen/models/{model['id']}"
    before = len(slow_emulator.requests(path_prefix=path))
    with pytest.raises(AirflowSensorTimeout):
        _sensor(model_id=model["id"], bria_conn_id="bria_slow", timeout=0.6, poke_interval=0.2).execute(
            make_context()
        )
    # It stopped poking once the 0.6 s timeout passed: at most ceil(0.6 / 0.2) + 1 pokes, a poke_interval apart.
    assert slept
    assert all(seconds == pytest.approx(0.2) for seconds in slept), slept
    assert len(slept) <= 4
    pokes = len(slow_emulator.requests(path_prefix=path)) - before
    assert pokes == len(slept) + 1
    assert slow_hook.get_model(model["id"])["status"] == "InProgress"


def test_deferrable_pokes_once_then_defers_with_the_sensor_timeout(
    slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    sensor = _sensor(model_id=model["id"], bria_conn_id="bria_slow", deferrable=True, timeout=300,
                     poke_interval=5, execution_timeout=timedelta(seconds=100))
    before = time.time()
    with pytest.raises(TaskDeferred) as info:
        sensor.execute(make_context())
    assert info.value.timeout == timedelta(seconds=300)
    assert info.value.method_name == "execute_complete"
    trigger = info.value.trigger
    assert isinstance(trigger, BriaTrainingTrigger)
    assert before + 299 <= trigger.end_time <= time.time() + 300
    assert before + 99 <= trigger.execution_deadline <= time.time() + 100
    assert trigger.poll_interval == 5
    assert (trigger.stop_on_kill, trigger.stop_on_timeout) == (False, False)  # a sensor only watches


def test_deferrable_returns_at_once_when_already_completed(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = model_factory()
    bria_hook.start_training(model["id"])
    bria_conn.set_model_status(model["id"], "Completed")
    result = _sensor(model_id=model["id"], deferrable=True).execute(make_context())
    assert result["status"] == "Completed"


@pytest.mark.parametrize(
    ("event", "error"),
    [
        (None, BriaTriggerEventError),
        ({"status": "done", "model_id": 3}, BriaTriggerEventError),
        ({"status": "failed", "model_id": 3, "model_status": "Failed"}, BriaTrainingFailedError),
        ({"status": "stopped", "model_id": 3, "model_status": "Stopped"}, BriaTrainingStoppedError),
        ({"status": "error", "model_id": 3, "message": "503"}, BriaTrainingError),
        ({"status": "timeout", "model_id": 3, "reason": "timeout"}, AirflowSensorTimeout),
        ({"status": "timeout", "model_id": 3, "reason": "execution_timeout"}, AirflowTaskTimeout),
    ],
)
def test_execute_complete_maps_events(event: Any, error: type[Exception], make_context: Any) -> None:
    with pytest.raises(error) as info:
        _sensor(model_id=3).execute_complete(make_context(), event)
    assert type(info.value) is error


def test_execute_complete_success_returns_the_summary(bria_conn: Any, make_context: Any) -> None:
    event = {"status": "success", "model_id": 3, "model_status": "Completed", "message": "ok",
             "model": {"id": 3, "name": "m", "status": "Completed", "project_id": 1, "dataset_id": 2}}
    result = _sensor(model_id=3).execute_complete(make_context(), event)
    assert result["model_id"] == 3
    assert result["model_url"] == "https://platform.bria.ai/tailored-generation/projects/1/models/3"


def test_soft_fail_skips_on_timeout_event(make_context: Any) -> None:
    from airflow_provider_bria._compat import AirflowSkipException

    sensor = _sensor(model_id=3, soft_fail=True)
    with pytest.raises(AirflowSkipException):
        sensor.resume_execution("execute_complete", {"event": {"status": "timeout", "model_id": 3}},
                                make_context())
