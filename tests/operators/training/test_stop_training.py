"""BriaStopTrainingOperator over real HTTP: stops once, idempotent on retries, clear errors for bad ids."""

from __future__ import annotations

from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaInputError, BriaNotFoundError
from airflow_provider_bria.operators.training import BriaStopTrainingOperator


def _stop(**kwargs: Any) -> BriaStopTrainingOperator:
    kwargs.setdefault("task_id", "stop")
    kwargs.setdefault("poll_interval", 0.1)
    kwargs.setdefault("bria_conn_id", "bria_slow")
    return BriaStopTrainingOperator(**kwargs)


def _stop_posts(emulator: Any, model_id: int) -> int:
    calls = emulator.requests(path_prefix=f"/v1/tailored-gen/models/{model_id}/stop_training")
    return sum(1 for c in calls if c["method"] == "POST")


def test_stops_a_running_training_and_waits_for_stopped(
    slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    context = make_context()
    result = _stop(model_id=model["id"], timeout=30).execute(context)
    assert result["model_id"] == model["id"]
    assert result["status"] == "Stopped"
    assert result["stop_requested"] is True
    assert result["model_url"].endswith(f"/projects/{model['project_id']}/models/{model['id']}")
    assert context["ti"].xcoms["model_id"] == model["id"]
    assert slow_hook.get_model(model["id"])["status"] == "Stopped"
    assert _stop_posts(slow_emulator, model["id"]) == 1


def test_retry_is_a_no_op(slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any) -> None:
    model = slow_model_factory()
    slow_hook.start_training(model["id"])
    first = _stop(model_id=model["id"], wait_for_stopped=False).execute(make_context(try_number=1))
    assert first["status"] in ("Stopping", "Stopped")
    second = _stop(model_id=str(model["id"])).execute(make_context(try_number=2))
    assert second["stop_requested"] is False
    assert second["status"] == "Stopped"
    assert _stop_posts(slow_emulator, model["id"]) == 1


def test_never_started_model_is_left_alone(
    slow_emulator: Any, slow_hook: Any, slow_model_factory: Any, make_context: Any
) -> None:
    model = slow_model_factory()
    result = _stop(model_id=model["id"]).execute(make_context())
    assert (result["status"], result["stop_requested"]) == ("Created", False)
    assert slow_hook.get_model(model["id"])["status"] == "Created"
    assert _stop_posts(slow_emulator, model["id"]) == 0


def test_unknown_model_raises_not_found(slow_hook: Any, make_context: Any) -> None:
    with pytest.raises(BriaNotFoundError):
        _stop(model_id=987654).execute(make_context())


def test_bad_model_id_raises_before_any_request(slow_emulator: Any, slow_hook: Any, make_context: Any) -> None:
    before = len(slow_emulator.requests())
    with pytest.raises(BriaInputError, match="model_id"):
        _stop(model_id="twelve").execute(make_context())
    assert len(slow_emulator.requests()) == before
