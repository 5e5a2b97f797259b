"""The four example DAGs on the CeleryExecutor with every input and output in S3.

The ``pipeline`` fixture puts the training images and the retraining images into S3 (as a user's ingestion
would), triggers ``bria_dataset_preparation``, follows the asset chain (training -> scheduled generation),
triggers ``bria_retraining`` and follows its chain to a second generation. While the first training runs it
samples, twice a second, the training task, the default pool and Celery's own list of active tasks.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from conftest import EXAMPLES_PREFIX, upload_demo_images
from system_rest import AirflowClient

from airflow_provider_bria.devstack.celery_stack import DATA_BUCKET, LOG_BUCKET, S3_CONN_ID, CeleryStack, node_name

pytestmark = pytest.mark.timeout(900)

PREP, TRAIN, GEN, RETRAIN = "bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining"
IMAGES, NEW_IMAGES = 6, 3
WORKERS = {"worker-1", "worker-2"}
EXPECTED_NODES = {node_name(w) for w in WORKERS}
# Seconds after the task instance turned deferred by which its Celery job has ended (the task process reports the
# deferral, exits, and the worker uploads its log to S3: 4-5 s measured on an idle 2-core machine).
JOB_ENDS_WITHIN = 12.0


@dataclass
class Pipeline:
    """What the distributed example chain did."""

    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    tis: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    input_keys: list[str] = field(default_factory=list)


def _follow(client: AirflowClient, stack: CeleryStack, dag_id: str, run: dict[str, Any], out: Pipeline,
            on_poll: Any = None) -> dict[str, Any]:
    done = client.wait_for_run(dag_id, run["dag_run_id"], timeout=420, interval=0.5,
                               on_poll=on_poll or stack.check_alive)
    tis = client.task_instances(dag_id, run["dag_run_id"])
    out.runs.setdefault(dag_id, []).append(done)
    out.tis.setdefault(dag_id, []).extend(tis)
    assert done["state"] == "success", {t["task_id"]: (t["state"], t["hostname"]) for t in tis}
    return done


@pytest.fixture(scope="module")
def pipeline(client: AirflowClient, stack: CeleryStack, emulators: dict[str, Any], artifacts: Path) -> Pipeline:
    """Run preparation -> training -> generation -> retraining -> generation on two workers."""
    out = Pipeline()
    out.input_keys = upload_demo_images(stack, f"{EXAMPLES_PREFIX}/images", IMAGES, seed=0)
    out.input_keys += upload_demo_images(stack, f"{EXAMPLES_PREFIX}/new-images", NEW_IMAGES, seed=1)
    for dag_id in (PREP, TRAIN, GEN, RETRAIN):
        assert client.set_paused(dag_id, False)["is_paused"] is False
    emulator = emulators["bria_default"]

    prep = client.trigger(PREP, {"generate_demo_images": False, "num_demo_images": IMAGES, "human_review": False})
    _follow(client, stack, PREP, prep, out)

    train = client.wait_for_new_run(TRAIN, run_type="asset_triggered", known=set(), timeout=120,
                                    on_poll=stack.check_alive)

    def celery_active() -> dict[str, int]:
        # A worker's main process may miss inspect's 2 s on a loaded machine: ask once more, for longer.
        active = stack.active_celery_tasks()
        if set(active) != EXPECTED_NODES:
            active = stack.active_celery_tasks(timeout=6.0)
        return active

    def observe() -> None:
        stack.check_alive()
        try:
            ti = client.task_instance(TRAIN, train["dag_run_id"], "train_model")
        except AssertionError:
            return
        if ti["state"] != "deferred":
            out.samples.append({"state": ti["state"], "t": time.monotonic()})
            return
        pool = client.pool()
        sample = {
            "state": ti["state"],
            "t": time.monotonic(),
            "pool_running": pool["running_slots"],
            "pool_deferred": pool["deferred_slots"],
            "celery_active": celery_active(),
            "model_statuses": dict(emulator.state().get("models_by_status", {})),
        }
        # The reads above are not one snapshot: only a sample bracketed by two "deferred" reads of the task
        # instance describes the deferral (the trigger may fire between them).
        if client.task_instance(TRAIN, train["dag_run_id"], "train_model")["state"] != "deferred":
            sample["state"] = "deferral-ended-while-sampling"
        out.samples.append(sample)

    try:
        _follow(client, stack, TRAIN, train, out, on_poll=observe)
    finally:
        (artifacts / "training-samples.json").write_text(json.dumps(out.samples, indent=1))
    gen = client.wait_for_new_run(GEN, run_type="asset_triggered", known=set(), timeout=180,
                                  on_poll=stack.check_alive)
    _follow(client, stack, GEN, gen, out)

    retrain = client.trigger(RETRAIN, {"generate_demo_images": False})
    _follow(client, stack, RETRAIN, retrain, out)
    gen2 = client.wait_for_new_run(GEN, run_type="asset_triggered", known={gen["dag_run_id"]}, timeout=180,
                                   on_poll=stack.check_alive)
    _follow(client, stack, GEN, gen2, out)
    return out


def _hosts(tis: list[dict[str, Any]]) -> set[str]:
    # EmptyOperator tasks (schema_ready) are marked successful by the scheduler itself: no worker, no hostname.
    return {t["hostname"] for t in tis if t["state"] == "success" and t["operator"] != "EmptyOperator"}


def test_every_run_succeeded_and_the_chain_followed_the_assets(pipeline: Pipeline) -> None:
    assert [len(pipeline.runs[d]) for d in (PREP, TRAIN, GEN, RETRAIN)] == [1, 1, 2, 1]
    assert [r["run_type"] for r in pipeline.runs[GEN]] == ["asset_triggered", "asset_triggered"]


def test_tasks_of_one_run_ran_on_both_workers(pipeline: Pipeline) -> None:
    # Hostnames come from each worker's own [core] hostname_callable: worker-1 / worker-2.
    assert _hosts(pipeline.tis[PREP]) == WORKERS, {t["task_id"]: t["hostname"] for t in pipeline.tis[PREP]}
    assert _hosts(pipeline.tis[RETRAIN]) <= WORKERS
    every = [t for tis in pipeline.tis.values() for t in tis]
    assert _hosts(every) == WORKERS


def test_training_was_deferred_with_no_worker_slot_taken(pipeline: Pipeline) -> None:
    deferred = [s for s in pipeline.samples if s["state"] == "deferred"]
    assert len(deferred) >= 3, pipeline.samples
    # While the model trained, the training task held no pool slot and no Celery worker ran anything.
    assert any(s["model_statuses"].get("InProgress") for s in deferred), deferred
    assert {s["pool_running"] for s in deferred} == {0}, deferred
    assert all(s["pool_deferred"] >= 1 for s in deferred), deferred
    assert all(set(s["celery_active"]) == EXPECTED_NODES for s in deferred), deferred
    # Celery's own view: the task's Celery job ends a moment after the task instance turned deferred (the task
    # process exits after reporting it); from then on, until the training ends, no worker runs anything.
    idle = [i for i, s in enumerate(deferred) if set(s["celery_active"].values()) == {0}]
    assert idle, deferred
    busy_for = deferred[idle[0]]["t"] - deferred[0]["t"]
    assert busy_for <= JOB_ENDS_WITHIN, f"a worker stayed busy for {busy_for:.1f} s after the deferral: {deferred}"
    tail = deferred[idle[0]:]
    assert len(tail) >= 3, deferred
    assert tail[-1]["t"] - tail[0]["t"] >= 3.0, deferred
    assert all(set(s["celery_active"].values()) == {0} for s in tail), deferred
    assert any(s["model_statuses"].get("InProgress") for s in tail), tail


def test_every_generated_image_is_in_s3_exactly_once(
    pipeline: Pipeline, client: AirflowClient, stack: CeleryStack
) -> None:
    uris: list[str] = []
    for run in pipeline.runs[GEN]:
        uris += client.xcom_value(GEN, run["dag_run_id"], "report", "return_value")
    prefix = f"s3://{S3_CONN_ID}@{DATA_BUCKET}/"
    assert uris
    assert all(u.startswith(prefix + f"{EXAMPLES_PREFIX}/outputs/") for u in uris), uris
    assert len(set(uris)) == len(uris) == 2 * 3 * 2  # 2 runs (two models) x 3 prompts x 2 images
    keys = stack.s3.keys(DATA_BUCKET, f"{EXAMPLES_PREFIX}/outputs/")
    pngs = [k for k in keys if k.endswith(".png")]
    assert sorted(pngs) == sorted(u[len(prefix):] for u in uris)  # nothing else, nothing twice
    assert not [k for k in keys if k.rsplit("/", 1)[-1].startswith(".")], keys  # no temporary leftovers
    body = stack.s3.client().get_object(Bucket=DATA_BUCKET, Key=pngs[0])["Body"].read()
    assert body[:8] == b"\x89PNG\r\n\x1a\n"


def test_nothing_was_read_from_a_workers_local_disk(pipeline: Pipeline, stack: CeleryStack,
                                                    client: AirflowClient) -> None:
    # Inputs came from S3: the dataset holds the images put there, and the run's settings name S3.
    prep_run = pipeline.runs[PREP][0]["dag_run_id"]
    source = client.xcom_value(PREP, prep_run, "settings", "image_source")
    assert source.startswith(f"s3://{S3_CONN_ID}@{DATA_BUCKET}/"), source
    summary = client.xcom_value(PREP, prep_run, "upload_images", "return_value")
    assert summary["images_in_dataset"] == IMAGES
    # No image was ever written to any component's private folder (homes, working dirs, temp dirs).
    local = [p for p in (stack.root / "components").rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg")]
    assert local == []
    # An audit hook in every worker process (inherited by the forked task processes) recorded each local image
    # file opened -- none -- and each DAG file parsed, which shows the hook was alive in both workers' tasks.
    opened = stack.opened_images()
    assert all(any(line.endswith(".py") for line in lines) for lines in opened.values()), opened
    assert [line for lines in opened.values() for line in lines if not line.endswith(".py")] == []


def test_task_logs_are_read_back_from_s3(pipeline: Pipeline, client: AirflowClient, stack: CeleryStack) -> None:
    run_id = pipeline.runs[PREP][0]["dag_run_id"]
    deadline = time.monotonic() + 60
    text = ""
    while time.monotonic() < deadline:
        text = client.log(PREP, run_id, "upload_images", 1)
        if "images" in text:
            break
        time.sleep(2)
    assert "images" in text, text[-2000:]
    assert stack.s3.keys(LOG_BUCKET, "airflow/"), "no task log in the S3 log bucket"
