"""A soft-deleted model (``DELETE`` -> status ``Deleted``) is terminal for every training wait, over real HTTP.

Bria's Delete Model "Changes status to Deleted"; the emulator follows it, so these tests delete the model the
way a user does (``DELETE /models/{id}``); a model turning ``Deleted`` in the middle of a synchronous wait is in
test_start_training.py (``test_sync_wait_fails_when_training_fails``).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaModelDeletedError, BriaTrainingError
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.sensors.training import BriaTrainingSensor
from airflow_provider_bria.triggers.training import BriaTrainingTrigger

MODELS = "/v1/tailored-gen/models"


def _deleted_model(hook: Any, model_factory: Any) -> dict[str, Any]:
    model = model_factory()
    hook.delete_model(model["id"])
    assert hook.get_model(model["id"])["status"] == "Deleted"  # the emulator's soft delete, as the spec says
    return model


def _assert_deleted_error(info: pytest.ExceptionInfo[BriaModelDeletedError], model_id: int) -> None:
    assert str(info.value) == f"Model {model_id} was deleted; create a new model"
    assert (info.value.model_id, info.value.status) == (model_id, "Deleted")


async def test_trigger_ends_with_a_deleted_event_at_once(bria_hook: Any, model_factory: Any) -> None:
    model = _deleted_model(bria_hook, model_factory)
    trigger = BriaTrainingTrigger(model_id=model["id"], bria_conn_id="bria_default", poll_interval=30,
                                  end_time=time.time() + 3600)
    events = [event.payload for event in [e async for e in trigger.run()]]
    assert len(events) == 1
    event = events[0]
    assert (event["status"], event["reason"], event["model_status"]) == ("deleted", "deleted", "Deleted")
    assert event["message"] == f"Model {model['id']} was deleted; create a new model"
    assert event["model"]["id"] == model["id"]


def test_sensor_poke_raises_deleted(bria_hook: Any, model_factory: Any, make_context: Any) -> None:
    model = _deleted_model(bria_hook, model_factory)
    sensor = BriaTrainingSensor(task_id="wait", model_id=model["id"], poke_interval=0.2, timeout=60,
                                deferrable=False)
    with pytest.raises(BriaModelDeletedError) as info:
        sensor.poke(make_context())
    _assert_deleted_error(info, model["id"])


def test_sensor_and_operator_map_a_deleted_event(make_context: Any) -> None:
    event = {"status": "deleted", "model_id": 5, "model_status": "Deleted", "message": "m", "reason": "deleted"}
    sensor = BriaTrainingSensor(task_id="wait", model_id=5, timeout=60, deferrable=False)
    with pytest.raises(BriaModelDeletedError) as info:
        sensor.execute_complete(make_context(), event)
    _assert_deleted_error(info, 5)
    op = BriaStartTrainingOperator(task_id="train", model_id=5, stop_on_timeout=False, deferrable=False)
    with pytest.raises(BriaModelDeletedError) as info:
        op.execute_complete(make_context(), event)
    _assert_deleted_error(info, 5)
    assert issubclass(BriaModelDeletedError, BriaTrainingError)  # caught by existing `except BriaTrainingError`


def test_start_training_on_a_deleted_model_raises_without_starting(
    bria_conn: Any, bria_hook: Any, model_factory: Any, make_context: Any
) -> None:
    model = _deleted_model(bria_hook, model_factory)
    op = BriaStartTrainingOperator(task_id="train", model_id=model["id"], poll_interval=0.2, deferrable=False)
    with pytest.raises(BriaModelDeletedError) as info:
        op.execute(make_context())
    _assert_deleted_error(info, model["id"])
    starts = [r for r in bria_conn.requests(path_prefix=f"{MODELS}/{model['id']}/start_training")
              if r["method"] == "POST"]
    assert starts == []

