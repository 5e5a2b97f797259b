"""Integrity of the example DAGs: they parse offline with no import errors, and are built as documented."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXAMPLE_DAG_IDS = {"bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining"}
MODEL_ASSET_URI = "bria://models/bria-demo/demo-model"
DATASET_ASSET_URI = "bria://datasets/bria-demo/demo-dataset"
NEW_IMAGES_ASSET_URI = "bria://new-images/bria-demo/demo-dataset"

# Parses dags/ with every outgoing connection and DNS lookup failing, and reports what happened.
OFFLINE_PARSE = r"""
import json, socket, sys, time
attempts = []
def _refuse(*args, **kwargs):
    attempts.append(repr(args[:2]))
    raise OSError("network unreachable (test)")
socket.socket.connect = _refuse
socket.socket.connect_ex = _refuse
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
import airflow  # noqa: F401  (Airflow's own import is not what is measured)
before = set(sys.modules)
from airflow_provider_bria._compat import DagBag
started = time.perf_counter()
bag = DagBag(dag_folder=sys.argv[1])
elapsed = time.perf_counter() - started
loaded = sorted(set(sys.modules) - before)
print(json.dumps({
    "import_errors": {str(k): str(v) for k, v in bag.import_errors.items()},
    "dag_ids": sorted(bag.dags),
    "attempts": attempts,
    "loaded": loaded,
    "seconds": elapsed,
    "files": {s.file: s.duration.total_seconds() for s in bag.dagbag_stats},
}))
"""


@pytest.fixture(scope="module")
def offline_parse(airflow_home: Path) -> dict[str, Any]:
    """Result of parsing ``dags/`` in a fresh interpreter with the network unreachable."""
    proc = subprocess.run(
        [sys.executable, "-c", OFFLINE_PARSE, str(DAGS)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dagbag_has_no_import_errors_offline(offline_parse: dict[str, Any]) -> None:
    """The examples, by name: a user's own DAG file dropped into dags/ does not break this test."""
    examples = {f"{dag_id}.py" for dag_id in EXAMPLE_DAG_IDS}
    assert {k: v for k, v in offline_parse["import_errors"].items() if Path(k).name in examples} == {}
    assert set(offline_parse["dag_ids"]) >= EXAMPLE_DAG_IDS


def test_parsing_makes_no_network_call(offline_parse: dict[str, Any]) -> None:
    assert offline_parse["attempts"] == []


def test_parsing_imports_nothing_heavy(offline_parse: dict[str, Any]) -> None:
    loaded = set(offline_parse["loaded"])
    heavy = {
        "airflow_provider_bria.emulator",
        "airflow_provider_bria.demo",
        "airflow_provider_bria.demo_images",
        "PIL",
        "PIL.Image",
        "uvicorn",
    }
    assert not heavy & loaded, sorted(heavy & loaded)
    print(f"parse of dags/: {offline_parse['seconds']:.3f} s; per file: {offline_parse['files']}")


def test_every_example_dag_has_its_own_file() -> None:
    for dag_id in EXAMPLE_DAG_IDS:
        assert (DAGS / f"{dag_id}.py").is_file(), dag_id


EXPECTED_TASKS = {
    "bria_dataset_preparation": {
        "settings",
        "create_project",
        "create_dataset",
        "route",
        "prepare_images",
        "generate_visual_schema",
        "choose_schema_path",
        "refine_visual_schema",
        "apply_refined_schema",
        "schema_ready",
        "upload_images",
        "review_schema_1",
        "refine_schema_1",
        "apply_schema_1",
        "regenerate_captions_1",
        "review_schema_2",
        "refine_schema_2",
        "apply_schema_2",
        "regenerate_captions_2",
        "review_schema_3",
        "review_captions",
        "complete_dataset",
        "publish_dataset",
    },
    "bria_training": {"resolve_dataset", "create_model", "train_model"},
    "bria_scheduled_generation": {"plan", "generate_images", "report"},
    "bria_retraining": {
        "plan",
        "prepare_new_images",
        "clone_dataset",
        "upload_new_images",
        "complete_dataset",
        "create_model",
        "train_model",
    },
}


@pytest.mark.parametrize("dag_id", sorted(EXAMPLE_DAG_IDS))
def test_tasks_and_retries(example_dags: dict[str, Any], dag_id: str) -> None:
    dag = example_dags[dag_id]
    assert set(dag.task_dict) == EXPECTED_TASKS[dag_id]
    for task in dag.tasks:
        assert getattr(task, "bria_conn_id", "bria_default") == "bria_default", task.task_id
        assert task.retries >= 2, f"{task.task_id} has retries={task.retries}"
        assert timedelta(seconds=1) <= task.retry_delay <= timedelta(minutes=1), task.task_id
    assert "bria" in dag.tags
    assert "example" in dag.tags
    assert dag.doc_md
    assert dag_id.split("_", 1)[1].split("_")[0] in dag.doc_md.lower()


@pytest.mark.parametrize("dag_id", sorted(EXAMPLE_DAG_IDS))
def test_param_defaults_are_valid_and_hold_no_ids(example_dags: dict[str, Any], dag_id: str) -> None:
    dag = example_dags[dag_id]
    resolved = dag.params.validate()
    for name, value in resolved.items():
        if name.endswith("_id"):
            assert value is None, f"{dag_id}: Param {name} must default to None (no hard-coded ids)"
        assert not (isinstance(value, str) and value.startswith("/")), f"{dag_id}: {name} is a hard-coded path"


def test_asset_wiring(example_dags: dict[str, Any]) -> None:
    from airflow.sdk import Asset

    from airflow_provider_bria._compat import AssetOrTimeSchedule, CronTriggerTimetable

    prep = example_dags["bria_dataset_preparation"]
    assert [o.uri for o in prep.get_task("publish_dataset").outlets] == [DATASET_ASSET_URI]

    training = example_dags["bria_training"]
    assert isinstance(training.timetable.asset_condition, Asset)
    assert training.timetable.asset_condition.uri == DATASET_ASSET_URI

    generation = example_dags["bria_scheduled_generation"]
    assert isinstance(generation.timetable, AssetOrTimeSchedule)
    assert generation.timetable.asset_condition.uri == MODEL_ASSET_URI
    assert isinstance(generation.timetable.timetable, CronTriggerTimetable)
    assert [i.uri for i in generation.get_task("plan").inlets] == [MODEL_ASSET_URI]

    retraining = example_dags["bria_retraining"]
    assert isinstance(retraining.timetable, AssetOrTimeSchedule)
    assert retraining.timetable.asset_condition.uri == NEW_IMAGES_ASSET_URI

    for dag in (training, retraining):
        train = dag.get_task("train_model")
        assert train.deferrable is True
        assert [o.uri for o in train.outlets] == [MODEL_ASSET_URI]
        # Wait settings are templates rendered at run time (Param, else Variable), not read at parse time.
        assert "training_poll_interval" in train.poll_interval
        assert "training_timeout_hours" in train.timeout


def test_generation_is_mapped_and_rate_share_is_bounded(example_dags: dict[str, Any]) -> None:
    generation = example_dags["bria_scheduled_generation"]
    task = generation.get_task("generate_images")
    assert task.is_mapped
    assert task.partial_kwargs["max_active_tis_per_dagrun"] >= 1


def test_no_catchup_and_single_active_run(example_dags: dict[str, Any]) -> None:
    for dag in example_dags.values():
        assert dag.catchup is False
        assert dag.max_active_runs == 1


@pytest.mark.parametrize(
    ("dag_id", "unpaused_at", "first_run"),
    [
        # 1 h after the daily 06:00 (within 10% of the 24 h gap): tomorrow 06:00, not an immediate run.
        ("bria_scheduled_generation", "2025-06-10T07:00:00+00:00", "2025-06-11T06:00:00+00:00"),
        ("bria_scheduled_generation", "2025-06-10T05:59:00+00:00", "2025-06-10T06:00:00+00:00"),
        # 2 h after Monday 03:00 (within 10% of the week): next Monday 03:00.
        ("bria_retraining", "2025-06-09T05:00:00+00:00", "2025-06-16T03:00:00+00:00"),
    ],
)
def test_unpausing_after_a_cron_time_waits_for_the_next_one(
    example_dags: dict[str, Any], monkeypatch: pytest.MonkeyPatch, dag_id: str, unpaused_at: str, first_run: str
) -> None:
    """The scheduler's view (the serialized DAG) of the first run: never a "just missed" one."""
    import pendulum
    from airflow.timetables import trigger

    from airflow_provider_bria._compat import DagSerialization

    serialized = DagSerialization.from_dict(DagSerialization.to_dict(example_dags[dag_id]))
    monkeypatch.setattr(trigger, "utcnow", lambda: pendulum.parse(unpaused_at))
    try:
        info = serialized.next_dagrun_info(last_automated_run_info=None)
    except TypeError:  # Airflow < 3.2 names the argument last_automated_dagrun
        info = serialized.next_dagrun_info(None)
    assert info is not None
    assert info.run_after == pendulum.parse(first_run)
