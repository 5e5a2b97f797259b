"""Secret hygiene after the system run: no api_token anywhere Airflow keeps or shows data.

Runs last (file order). Every connection's distinctive token is searched for, as is and base64-encoded, in:
every task and trigger log file, the captured output of the scheduler, dag-processor, triggerer and API
server, every XCom value and every task instance's rendered template fields (through the REST API), the
task logs served by the REST API, and a full SQL dump of the metadata database.
"""

from __future__ import annotations

import base64
import json
import sqlite3
from typing import Any

import pytest
from system_pipeline import TRAIN, TRAIN_TASK, PipelineResult
from system_rest import AirflowClient
from system_stack import AirflowStack

pytestmark = pytest.mark.timeout(900)


def _needles(tokens: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, token in tokens.items():
        out[f"{name} token"] = token
        out[f"{name} token (base64)"] = base64.b64encode(token.encode()).decode().rstrip("=")
    return out


def _find(text: str, needles: dict[str, str]) -> list[str]:
    return [label for label, needle in needles.items() if needle in text]


def _all_pages(client: AirflowClient, path: str, key: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    while True:
        body = client.get(path, params={"limit": 100, "offset": len(items), **params})
        items.extend(body[key])
        if not body[key] or len(items) >= body["total_entries"]:
            return items


@pytest.fixture(scope="module")
def needles(tokens: dict[str, str], stack: AirflowStack) -> dict[str, str]:
    """The search strings; checked to be live secrets that the searches below would find."""
    found = _needles(tokens)
    for conn_id, token in tokens.items():
        # Positive control: the token really is in the components' environment (the connection's password).
        assert token in stack.env[f"AIRFLOW_CONN_{conn_id.upper()}"]
        assert _find(f"x{token}x", found)
    return found


def test_no_token_in_log_files(
    pipeline: PipelineResult, stack: AirflowStack, needles: dict[str, str]
) -> None:
    files = list(stack.log_files())
    task_logs = [p for p in files if p.suffix == ".log" and "dag_id=" in str(p)]
    assert len(task_logs) >= 15, "too few task logs: is the log folder the right one?"
    names = {p.name for p in files}
    assert {"scheduler.log", "triggerer.log", "dag-processor.log", "api-server.log"} <= names
    leaks = {str(p): hits for p in files if (hits := _find(p.read_text(errors="replace"), needles))}
    assert not leaks, leaks


def test_no_token_in_task_logs_served_by_the_api(
    pipeline: PipelineResult, client: AirflowClient, needles: dict[str, str]
) -> None:
    run_id = pipeline.train_run["dag_run_id"]
    text = client.log(TRAIN, run_id, TRAIN_TASK, 1)
    assert "Deferring until model" in text  # the log holds the operator's and the trigger's lines
    assert not _find(text, needles)
    for ti in client.task_instances("bria_dataset_preparation", pipeline.prep_run["dag_run_id"]):
        if ti["try_number"]:
            assert not _find(client.log(ti["dag_id"], ti["dag_run_id"], ti["task_id"], ti["try_number"]), needles)


def test_no_token_in_xcom_or_rendered_fields(
    pipeline: PipelineResult, client: AirflowClient, needles: dict[str, str]
) -> None:
    tis = _all_pages(client, "/api/v2/dags/~/dagRuns/~/taskInstances", "task_instances")
    assert len(tis) >= 20
    rendered = json.dumps([ti.get("rendered_fields") for ti in tis])
    assert "bria_default" in rendered  # rendered fields were really returned (bria_conn_id is templated)
    assert not _find(rendered, needles)
    entries = _all_pages(client, "/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries", "xcom_entries")
    assert any(e["key"] == "model_url" for e in entries)
    leaks = []
    for entry in entries:
        value = client.xcom_value(entry["dag_id"], entry["run_id"], entry["task_id"], entry["key"],
                                  entry["map_index"])
        if hits := _find(json.dumps(value, default=str), needles):
            leaks.append((entry["dag_id"], entry["task_id"], entry["key"], hits))
    assert not leaks, leaks


def test_no_token_in_metadata_database_dump(
    pipeline: PipelineResult, stack: AirflowStack, needles: dict[str, str]
) -> None:
    source = sqlite3.connect(f"file:{stack.db_path}?mode=ro", uri=True, timeout=60)
    copy = sqlite3.connect(":memory:")
    try:
        source.backup(copy)  # a consistent snapshot while the services keep writing
        dump = "\n".join(copy.iterdump())
    finally:
        source.close()
        copy.close()
    assert "BriaTrainingTrigger" in dump or "bria_training" in dump  # the dump holds this run's data
    assert "model_url" in dump
    hits = _find(dump, needles)
    assert not hits, hits
