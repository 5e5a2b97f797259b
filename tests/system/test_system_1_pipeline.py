"""The example DAGs in a real deployment: triggered through the REST API, chained by assets, deferred training.

The ``pipeline`` fixture (session) unpauses the three example DAGs, triggers ``bria_dataset_preparation`` and
follows the chain; these tests check what each step left behind in Airflow (REST API), in the emulator and on
disk.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from system_pipeline import GEN, PREP, TRAIN, TRAIN_TASK, PipelineResult, is_png
from system_rest import AirflowClient

from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL, aspect_ratio_size
from airflow_provider_bria.links.bria import model_console_url

pytestmark = pytest.mark.timeout(900)

TRIGGER_CLASSPATH = "airflow_provider_bria.triggers.training.BriaTrainingTrigger"
MODEL_ASSET = "bria://models/bria-demo/demo-model"
DATASET_ASSET = "bria://datasets/bria-demo/demo-dataset"


def _states(tis: list[dict[str, Any]]) -> dict[str, str]:
    return {t["task_id"] if t["map_index"] < 0 else f"{t['task_id']}[{t['map_index']}]": t["state"] for t in tis}


def _train_result(client: AirflowClient, pipeline: PipelineResult) -> dict[str, Any]:
    return client.xcom_value(TRAIN, pipeline.train_run["dag_run_id"], TRAIN_TASK, "return_value")


def test_preparation_succeeded_and_published_the_dataset(pipeline: PipelineResult, client: AirflowClient) -> None:
    states = _states(pipeline.prep_tis)
    assert pipeline.prep_run["run_type"] == "manual"
    # No refine instruction: the refine branch is skipped; human_review is off: every review round is skipped;
    # everything else ran once and succeeded.
    review_rounds = {f"review_schema_{n}" for n in (1, 2, 3)} | {
        f"{step}_{n}" for step in ("refine_schema", "apply_schema", "regenerate_captions") for n in (1, 2)
    }
    expected_skipped = {"refine_visual_schema", "apply_refined_schema", *review_rounds}
    assert {t for t, s in states.items() if s == "skipped"} == expected_skipped
    assert {s for t, s in states.items() if s != "skipped"} == {"success"}
    published = client.xcom_value(PREP, pipeline.prep_run["dag_run_id"], "publish_dataset", "return_value")
    assert published["images"] == 6
    # The dataset asset event scheduled the training run, and names that dataset.
    events = client.get(
        f"/api/v2/dags/{TRAIN}/dagRuns/{pipeline.train_run['dag_run_id']}/upstreamAssetEvents"
    )["asset_events"]
    assert [e["uri"] for e in events] == [DATASET_ASSET]
    assert events[0]["extra"]["dataset_id"] == published["dataset_id"]
    assert events[0]["source_dag_id"] == PREP


def test_training_task_was_deferred_while_the_model_trained(pipeline: PipelineResult) -> None:
    assert pipeline.train_run["run_type"] == "asset_triggered"
    deferred = [s for s in pipeline.samples if s.state == "deferred"]
    assert deferred, f"train_model never seen deferred; states seen: {pipeline.train_states}"
    # The deferred samples come between running and success (the task resumed on a worker to finish).
    order = [s for s in pipeline.train_states if s in ("running", "deferred", "success")]
    assert order.index("deferred") < order.index("success")
    # While deferred, the BriaTrainingTrigger was assigned to the triggerer...
    assert {s.trigger_classpath for s in deferred} == {TRIGGER_CLASSPATH}
    assert any(s.triggerer_id for s in deferred), "no triggerer ever picked the trigger up"
    # ... and the model was really training in the emulator at the same time.
    training_samples = [s for s in deferred if s.model_statuses.get("InProgress")]
    assert training_samples, "the model was never InProgress while the task was deferred"
    # No worker slot was held: no running task instance, the default pool counts the task as deferred (not
    # running), and the task process that deferred had exited.
    idle = [s for s in training_samples if s.pool_running == 0 and s.running_tis == 0 and s.pool_deferred >= 1]
    assert idle, [vars(s) for s in training_samples]
    # The process that deferred exits right after handing over (it may still be closing at the first sample).
    assert not idle[-1].pid_alive, f"task process {idle[-1].pid} still alive {idle[-1].t} s into the deferral"
    assert {s.try_number for s in deferred} == {1}
    # Training took several seconds: the deferral covered most of it.
    assert deferred[-1].t - deferred[0].t >= 5


def test_training_finished_once_with_a_completed_model(
    pipeline: PipelineResult, client: AirflowClient, emulators: dict[str, Any]
) -> None:
    assert set(_states(pipeline.train_tis).values()) == {"success"}
    ti = next(t for t in pipeline.train_tis if t["task_id"] == TRAIN_TASK)
    assert ti["try_number"] == 1  # no retry was needed
    result = _train_result(client, pipeline)
    assert result["status"] == "Completed"
    state = emulators["bria_default"].state()
    assert state["trainings_per_model"] == {str(result["model_id"]): 1}
    assert state["models_by_status"] == {"Completed": 1}
    assert all(not dups for dups in state["duplicates"].values()), state["duplicates"]
    # The model id and console URL are published for links and downstream tasks.
    assert client.xcom_value(TRAIN, pipeline.train_run["dag_run_id"], TRAIN_TASK, "model_id") == result["model_id"]


def test_model_asset_event_scheduled_the_generation(pipeline: PipelineResult, client: AirflowClient) -> None:
    result = _train_result(client, pipeline)
    assert pipeline.gen_run["run_type"] == "asset_triggered"
    assert pipeline.gen_run["state"] == "success", _states(pipeline.gen_tis)
    events = client.get(
        f"/api/v2/dags/{GEN}/dagRuns/{pipeline.gen_run['dag_run_id']}/upstreamAssetEvents"
    )["asset_events"]
    assert [e["uri"] for e in events] == [MODEL_ASSET]
    assert events[0]["extra"]["model_id"] == result["model_id"]
    assert events[0]["source_dag_id"] == TRAIN
    assert events[0]["source_task_id"] == TRAIN_TASK


def test_generated_images_landed_on_disk(pipeline: PipelineResult, client: AirflowClient) -> None:
    result = _train_result(client, pipeline)
    uris = client.xcom_value(GEN, pipeline.gen_run["dag_run_id"], "report", "return_value")
    # Defaults of bria_scheduled_generation: 3 prompts x 2 images per prompt.
    assert len(uris) == 6
    assert len(set(uris)) == 6
    root = Path(pipeline.data_dir) / "outputs" / f"model-{result['model_id']}"
    for uri in uris:
        assert uri.startswith("file://")
        path = Path(uri[len("file://"):])
        assert root in path.parents, path
        assert is_png(path) == aspect_ratio_size("1:1", long_side=512)
    assert sorted(p.name for p in root.rglob("*.png")) == sorted(Path(u).name for u in uris)


def test_training_task_extra_link_points_at_the_model_console_page(
    pipeline: PipelineResult, client: AirflowClient
) -> None:
    result = _train_result(client, pipeline)
    expected = model_console_url(DEFAULT_CONSOLE_URL, result["project_id"], result["model_id"])
    links = client.links(TRAIN, pipeline.train_run["dag_run_id"], TRAIN_TASK)
    assert links == {"Bria Model": expected}
    assert result["model_url"] == expected
