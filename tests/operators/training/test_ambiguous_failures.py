"""Start/stop after ambiguous failures (5xx, read timeouts) and 409s: the model's status decides (requests-mock)."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from kit import conn_json

from airflow_provider_bria.contract import ModelStatus
from airflow_provider_bria.exceptions import BriaConflictError, BriaServerError, BriaTransportError
from airflow_provider_bria.operators.training import (
    BriaStartTrainingOperator,
    BriaStopTrainingOperator,
    stop_training_if_running,
)

HOST = "http://bria.test"
MODEL = f"{HOST}/v1/tailored-gen/models/12"
START = f"{MODEL}/start_training"
STOP = f"{MODEL}/stop_training"
HOOK_PARAMS = {"retry_delay": 0.01, "retry_max_delay": 0.02}


def _model(status: str) -> dict[str, Any]:
    return {"id": 12, "name": "m", "status": status, "project_id": 3, "dataset_id": 4,
            "training_mode": "fully_automated", "training_parameters": {}}


def _models(*statuses: str) -> list[dict[str, Any]]:
    return [{"json": _model(s), "status_code": 200} for s in statuses]


@pytest.fixture(autouse=True)
def _conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_MOCK", conn_json(HOST))


def _start(make_context: Any) -> dict[str, Any]:
    op = BriaStartTrainingOperator(task_id="t", model_id=12, bria_conn_id="bria_mock", wait_for_completion=False,
                                   hook_params=HOOK_PARAMS)
    return op.execute(make_context())


def _posts(requests_mock: Any, url: str) -> int:
    return sum(1 for r in requests_mock.request_history if r.method == "POST" and r.url == url)


def test_5xx_that_was_applied_is_not_sent_again(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(MODEL, _models("Created", "InProgress"))
    requests_mock.post(START, status_code=500, json={"message": "boom"})
    assert _start(make_context)["status"] == "InProgress"
    assert _posts(requests_mock, START) == 1


def test_read_timeout_that_was_applied_is_not_sent_again(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(MODEL, _models("Created", "InProgress"))
    requests_mock.post(START, exc=requests.exceptions.ReadTimeout)
    assert _start(make_context)["status"] == "InProgress"
    assert _posts(requests_mock, START) == 1


def test_5xx_that_was_not_applied_is_sent_once_more(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(MODEL, _models("Created", "Created"))
    requests_mock.post(START, [{"status_code": 503, "json": {"message": "down"}},
                               {"status_code": 200, "json": _model("InProgress")}])
    assert _start(make_context)["status"] == "InProgress"
    assert _posts(requests_mock, START) == 2


def test_two_unapplied_5xx_raise_after_exactly_two_posts(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(MODEL, _models("Created", "Created", "Created"))
    requests_mock.post(START, status_code=500, json={"message": "boom"})
    with pytest.raises(BriaServerError):
        _start(make_context)
    assert _posts(requests_mock, START) == 2


def test_409_on_a_started_model_reattaches(requests_mock: Any, make_context: Any,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    requests_mock.get(MODEL, _models("Created", "InProgress"))
    requests_mock.post(START, status_code=409, json={"message": "Training already started"})
    assert _start(make_context)["status"] == "InProgress"
    assert "it was already started; reattaching" in capsys.readouterr().out


def test_409_on_a_created_model_is_raised(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(MODEL, _models("Created", "Created"))
    requests_mock.post(START, status_code=409, json={"message": "conflict"})
    with pytest.raises(BriaConflictError):
        _start(make_context)


def test_start_body_is_empty_for_fully_automated(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(MODEL, _models("Created"))
    requests_mock.post(START, json=_model("InProgress"))
    _start(make_context)
    post = next(r for r in requests_mock.request_history if r.method == "POST")
    assert post.json() == {}
    assert post.headers["api_token"] == "test-token-7f3c9a1e5b"


# ------------------------------------------------------------------ stop


def _hook() -> Any:
    from airflow_provider_bria.hooks.bria import BriaHook

    return BriaHook("bria_mock", **HOOK_PARAMS)


def test_stop_409_when_already_stopping_is_accepted(requests_mock: Any) -> None:
    requests_mock.get(MODEL, _models("InProgress", "Stopping"))
    requests_mock.post(STOP, status_code=409, json={"message": "Training already stopped"})
    assert stop_training_if_running(_hook(), 12, logging.getLogger("t")) == (ModelStatus.STOPPING, False)


def test_stop_409_while_still_in_progress_is_raised(requests_mock: Any) -> None:
    requests_mock.get(MODEL, _models("InProgress", "InProgress"))
    requests_mock.post(STOP, status_code=409, json={"message": "??"})
    with pytest.raises(BriaConflictError):
        stop_training_if_running(_hook(), 12, logging.getLogger("t"))


def test_stop_5xx_that_was_applied_is_not_sent_again(requests_mock: Any) -> None:
    requests_mock.get(MODEL, _models("InProgress", "Stopping"))
    requests_mock.post(STOP, status_code=502, json={"message": "gateway"})
    assert stop_training_if_running(_hook(), 12, logging.getLogger("t")) == (ModelStatus.STOPPING, True)
    assert _posts(requests_mock, STOP) == 1


def test_stop_dropped_connection_not_applied_is_sent_once_more(requests_mock: Any) -> None:
    requests_mock.get(MODEL, _models("InProgress", "InProgress"))
    requests_mock.post(STOP, [{"exc": requests.exceptions.ReadTimeout}, {"status_code": 200, "json": {}}])
    assert stop_training_if_running(_hook(), 12, logging.getLogger("t")) == (ModelStatus.STOPPING, True)
    assert _posts(requests_mock, STOP) == 2


def test_stop_gives_up_after_two_ambiguous_failures(requests_mock: Any) -> None:
    requests_mock.get(MODEL, _models("InProgress", "InProgress", "InProgress"))
    requests_mock.post(STOP, exc=requests.exceptions.ReadTimeout)
    with pytest.raises(BriaTransportError):
        stop_training_if_running(_hook(), 12, logging.getLogger("t"))
    assert _posts(requests_mock, STOP) == 2


@pytest.mark.parametrize("status", ["Created", "Completed", "Failed", "Stopped", "Stopping"])
def test_stop_operator_makes_no_call_unless_in_progress(requests_mock: Any, make_context: Any, status: str) -> None:
    requests_mock.get(MODEL, _models(status))
    result = BriaStopTrainingOperator(task_id="s", model_id="12", bria_conn_id="bria_mock",
                                      wait_for_stopped=False, hook_params=HOOK_PARAMS).execute(make_context())
    assert result["status"] == status
    assert result["stop_requested"] is False
    assert _posts(requests_mock, STOP) == 0
