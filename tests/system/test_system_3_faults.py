"""The full pipeline against emulators that fail 20 % of API requests, for three seeds, under the real scheduler.

Each seed has its own emulator (``--fault-rate 0.2 --seed N``: 429s, 5xx before and after the change was
applied, connections dropped mid-response). On each, two runs go concurrently: ``system_fault_pipeline``
(hook retries on) and ``system_fault_pipeline_bare`` (hook retries off, so faults reach the operators and
Airflow's task retries). Every run must succeed, and the emulator must hold each object and each image exactly
once, with exactly one training per model.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from system_pipeline import is_png
from system_rest import AirflowClient
from system_stack import FAULT_SEEDS, AirflowStack

from airflow_provider_bria.demo_images import write_demo_images

pytestmark = pytest.mark.timeout(900)

VARIANTS = ("system_fault_pipeline", "system_fault_pipeline_bare")
IMAGES = 8
PROMPTS = 2
IMAGES_PER_PROMPT = 2
IDEMPOTENT = ("GET", "PUT", "DELETE")


@pytest.fixture(scope="module")
def fault_runs(
    client: AirflowClient, stack: AirflowStack, tmp_path_factory: pytest.TempPathFactory
) -> dict[tuple[int, str], dict[str, Any]]:
    """Trigger 3 seeds x 2 variants at once; wait for all; return ``{(seed, dag_id): info}``."""
    for dag_id in VARIANTS:
        client.set_paused(dag_id, False)
    runs: dict[tuple[int, str], dict[str, Any]] = {}
    for seed in FAULT_SEEDS:
        images = tmp_path_factory.mktemp(f"fault-images-{seed}")
        paths = sorted(write_demo_images(str(images), IMAGES, seed=100 + seed))
        for dag_id in VARIANTS:
            output = tmp_path_factory.mktemp(f"fault-out-{seed}-{dag_id}")
            conf = {
                "conn_id": f"bria_fault_{seed}",
                "project_name": f"fault-{seed}-{dag_id}",
                "image_dir": str(images),
                "schema_images": paths[:5],
                "output_dir": str(output),
            }
            run = client.trigger(dag_id, conf)
            runs[(seed, dag_id)] = {"run_id": run["dag_run_id"], "output": output}
    for (_seed, dag_id), info in runs.items():
        info["run"] = client.wait_for_run(dag_id, info["run_id"], timeout=600, on_poll=stack.check_alive)
        info["tis"] = client.task_instances(dag_id, info["run_id"])
    return runs


def _retries(tis: list[dict[str, Any]]) -> int:
    return sum(max(0, t["try_number"] - 1) for t in tis)


def test_every_faulty_run_succeeds(fault_runs: dict[tuple[int, str], dict[str, Any]]) -> None:
    failed = {
        key: {t["task_id"]: (t["state"], t["try_number"]) for t in info["tis"]}
        for key, info in fault_runs.items()
        if info["run"]["state"] != "success"
    }
    assert not failed, failed
    for info in fault_runs.values():
        assert {t["state"] for t in info["tis"]} == {"success"}


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_no_duplicates_and_every_image_once(
    seed: int,
    fault_runs: dict[tuple[int, str], dict[str, Any]],
    emulators: dict[str, Any],
    client: AirflowClient,
) -> None:
    emulator = emulators[f"bria_fault_{seed}"]
    state = emulator.state()
    counts = state["counts"]
    assert counts["faults_injected"] > 0, "the emulator injected no fault"
    assert state["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}
    runs = len(VARIANTS)
    assert counts["projects"] == runs
    assert counts["datasets"] == runs
    assert counts["models"] == runs
    assert counts["images"] == runs * IMAGES
    assert counts["trainings_started"] == runs
    assert sorted(state["trainings_per_model"].values()) == [1] * runs
    assert state["models_by_status"] == {"Completed": runs}
    for dag_id in VARIANTS:
        info = fault_runs[(seed, dag_id)]
        summary = client.xcom_value(dag_id, info["run_id"], "upload_images", "return_value")
        assert summary["images_in_dataset"] == IMAGES, summary
        assert summary["failed_count"] == 0, summary


@pytest.mark.parametrize("seed", FAULT_SEEDS)
def test_generated_images_landed_once(seed: int, fault_runs: dict[tuple[int, str], dict[str, Any]]) -> None:
    for dag_id in VARIANTS:
        output = Path(fault_runs[(seed, dag_id)]["output"])
        pngs = sorted(output.rglob("*.png"))
        assert len(pngs) == PROMPTS * IMAGES_PER_PROMPT, [p.name for p in pngs]
        for png in pngs:
            is_png(png)


def test_faults_were_healed_by_hook_retries_and_task_retries(
    fault_runs: dict[tuple[int, str], dict[str, Any]], emulators: dict[str, Any]
) -> None:
    # Airflow task retries: without hook retries, faults reach the operators and some tasks need another try.
    bare = sum(_retries(fault_runs[(seed, VARIANTS[1])]["tis"]) for seed in FAULT_SEEDS)
    assert bare > 0, "no Airflow task retry happened in the runs without hook retries"
    # Hook retries: a faulted idempotent request repeated at once (same method and path) and then answered.
    healed = 0
    for seed in FAULT_SEEDS:
        log = emulators[f"bria_fault_{seed}"].requests()
        for index, entry in enumerate(log):
            if not entry.get("fault") or entry["method"] not in IDEMPOTENT:
                continue
            later = log[index + 1:index + 40]
            if any(e["method"] == entry["method"] and e["path"] == entry["path"] and e["status"] < 400
                   and not e.get("fault") and e["t"] - entry["t"] < 2.0 for e in later):
                healed += 1
    assert healed > 0, "no faulted idempotent request was retried by the hook"
