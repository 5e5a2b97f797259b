"""Ambiguous-failure reconciliation of the create operators, at the HTTP level (requests-mock).

Each test scripts the API: the create ``POST`` fails ambiguously (dropped connection, read timeout or 5xx)
and the lookup ``GET`` then finds the object (no second POST) or does not (exactly one more POST).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import requests
from kit import FAST_HOOK, conn_json
from kit import TEST_TOKEN as TOKEN

from airflow_provider_bria.exceptions import BriaServerError, BriaTransportError
from airflow_provider_bria.operators.dataset import BriaCloneDatasetOperator, BriaCreateDatasetOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator

BASE = "https://bria.test"
TG = f"{BASE}/v1/tailored-gen"
PROJECT = {"id": 11, "project_name": "Brand X", "ip_type": "stylized_scene", "ip_medium": "illustration",
           "training_version": "fibo", "status": "active"}
DATASET = {"id": 22, "project_id": 11, "name": "d1", "upload_type": "basic", "training_version": "fibo",
           "status": "draft", "images_count": 0}
COMPLETED = {**DATASET, "status": "completed", "images_count": 5}
MODEL = {"id": 33, "name": "m1", "dataset_id": 22, "project_id": 11, "training_mode": "fully_automated",
         "training_version": "fibo", "status": "Created"}


@pytest.fixture(autouse=True)
def _conn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BRIA_DEFAULT", conn_json(BASE))


def _ambiguous(kind: str) -> dict[str, Any]:
    if kind == "dropped":
        return {"exc": requests.exceptions.ConnectionError("Connection aborted: RemoteDisconnected")}
    if kind == "timeout":
        return {"exc": requests.exceptions.ReadTimeout("read timed out")}
    return {"status_code": 502, "json": {"message": "Bad Gateway"}}


def _calls(rm: Any, method: str, url: str) -> int:
    return sum(1 for r in rm.request_history if r.method == method and r.url.split("?")[0] == url)


def _project_op(**kw: Any) -> BriaCreateProjectOperator:
    return BriaCreateProjectOperator(task_id="p", project_name="Brand X", ip_medium="illustration",
                                     ip_type="stylized_scene", training_version="fibo", hook_params=FAST_HOOK, **kw)


@pytest.mark.parametrize("kind", ["dropped", "timeout", "5xx"])
def test_project_found_after_ambiguous_failure_is_not_posted_again(
    requests_mock: Any, make_context: Any, kind: str
) -> None:
    requests_mock.get(f"{TG}/projects", [{"json": []}, {"json": [PROJECT]}])
    requests_mock.post(f"{TG}/projects", [_ambiguous(kind)])
    ctx = make_context()
    assert _project_op().execute(ctx) == 11
    assert _calls(requests_mock, "POST", f"{TG}/projects") == 1
    assert _calls(requests_mock, "GET", f"{TG}/projects") == 2
    assert ctx["ti"].xcoms["project_id"] == 11


def test_project_missing_after_ambiguous_failure_is_posted_exactly_once_more(
    requests_mock: Any, make_context: Any
) -> None:
    requests_mock.get(f"{TG}/projects", [{"json": []}, {"json": []}])
    requests_mock.post(f"{TG}/projects", [_ambiguous("dropped"), {"status_code": 201, "json": PROJECT}])
    assert _project_op().execute(make_context()) == 11
    assert _calls(requests_mock, "POST", f"{TG}/projects") == 2
    assert _calls(requests_mock, "GET", f"{TG}/projects") == 2


def test_project_two_ambiguous_failures_raise_after_a_last_lookup(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(f"{TG}/projects", json=[])
    requests_mock.post(f"{TG}/projects", [_ambiguous("5xx"), _ambiguous("5xx")])
    with pytest.raises(BriaServerError):
        _project_op().execute(make_context())
    assert _calls(requests_mock, "POST", f"{TG}/projects") == 2
    assert _calls(requests_mock, "GET", f"{TG}/projects") == 3


def test_dataset_found_after_dropped_connection(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(f"{TG}/projects/11", json=PROJECT)
    requests_mock.get(f"{TG}/projects/11/datasets", [{"json": []}, {"json": [DATASET]}])
    requests_mock.post(f"{TG}/datasets", [_ambiguous("dropped")])
    op = BriaCreateDatasetOperator(task_id="d", project_id="11", name="d1", hook_params=FAST_HOOK)
    ctx = make_context()
    assert op.execute(ctx) == 22
    assert _calls(requests_mock, "POST", f"{TG}/datasets") == 1
    # training_version is not in Bria's spec: not sent unless the user set it (the project's lock decides).
    assert "training_version" not in requests_mock.request_history[2].json()
    assert ctx["ti"].xcoms["dataset_id"] == 22


def test_dataset_missing_after_timeout_is_created_once_more(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(f"{TG}/projects/11", json=PROJECT)
    requests_mock.get(f"{TG}/projects/11/datasets", json=[])
    requests_mock.post(f"{TG}/datasets", [_ambiguous("timeout"), {"status_code": 201, "json": DATASET}])
    op = BriaCreateDatasetOperator(task_id="d", project_id=11, name="d1", hook_params=FAST_HOOK)
    assert op.execute(make_context()) == 22
    assert _calls(requests_mock, "POST", f"{TG}/datasets") == 2


def test_model_found_after_5xx(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(f"{TG}/datasets/22", json=COMPLETED)
    requests_mock.get(f"{TG}/models", [{"json": []}, {"json": [MODEL]}])
    requests_mock.post(f"{TG}/models", [_ambiguous("5xx")])
    op = BriaCreateModelOperator(task_id="m", dataset_id=22, name="m1", hook_params=FAST_HOOK)
    ctx = make_context()
    assert op.execute(ctx) == 33
    assert _calls(requests_mock, "POST", f"{TG}/models") == 1
    assert ctx["ti"].xcoms["model_url"].endswith("/tailored-generation/projects/11/models/33")


def test_model_two_dropped_connections_raise(requests_mock: Any, make_context: Any) -> None:
    requests_mock.get(f"{TG}/datasets/22", json=COMPLETED)
    requests_mock.get(f"{TG}/models", json=[])
    requests_mock.post(f"{TG}/models", [_ambiguous("dropped"), _ambiguous("dropped")])
    op = BriaCreateModelOperator(task_id="m", dataset_id=22, name="m1", hook_params=FAST_HOOK)
    with pytest.raises(BriaTransportError):
        op.execute(make_context())
    assert _calls(requests_mock, "POST", f"{TG}/models") == 2
    assert _calls(requests_mock, "GET", f"{TG}/models") == 3


def test_clone_found_after_dropped_connection(requests_mock: Any, make_context: Any) -> None:
    clone = {**DATASET, "id": 23, "name": "Copy of d1"}
    requests_mock.get(f"{TG}/datasets/22", json=COMPLETED)
    requests_mock.get(f"{TG}/projects/11/datasets", [{"json": [COMPLETED]}, {"json": [COMPLETED, clone]}])
    requests_mock.post(f"{TG}/datasets/22/clone", [_ambiguous("dropped")])
    op = BriaCloneDatasetOperator(task_id="c", dataset_id=22, hook_params=FAST_HOOK)
    assert op.execute(make_context()) == 23
    assert _calls(requests_mock, "POST", f"{TG}/datasets/22/clone") == 1


def test_token_never_in_logs_or_errors(requests_mock: Any, make_context: Any, caplog: Any, capsys: Any) -> None:
    caplog.set_level(logging.DEBUG)
    requests_mock.get(f"{TG}/projects", json=[])
    requests_mock.post(f"{TG}/projects", [_ambiguous("5xx"), _ambiguous("5xx")])
    op = _project_op()
    with pytest.raises(BriaServerError) as info:
        op.execute(make_context())
    assert TOKEN not in str(info.value)
    assert TOKEN not in repr(info.value)
    logs = capsys.readouterr().out + caplog.text
    assert "failed ambiguously" in logs  # the operator's log is captured here
    assert TOKEN not in logs
    assert "Bad Gateway" in str(info.value)
    assert all(r.headers.get("api_token") == TOKEN for r in requests_mock.request_history)
