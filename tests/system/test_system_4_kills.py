"""SIGKILL the task process mid-upload and mid-synchronous-training-wait; the Airflow retry must finish the job.

``system_kill_pipeline`` uploads 120 images one at a time, then trains with ``deferrable=False`` (the task
process polls the model). The test kills the task process (the PID the task instance reports; it must be a
descendant of this deployment's scheduler) once the emulator holds a few of the images, and again while the
model is ``InProgress``. The supervisor reports each killed try as failed, the scheduler retries it, and the
retries must leave exactly one project, dataset and model, every image exactly once, and exactly one
``start_training`` call.
"""

from __future__ import annotations

import os
import signal
import time
from typing import Any

import pytest
from system_pipeline import pid_alive, wait_until
from system_rest import AirflowClient
from system_stack import AirflowStack

from airflow_provider_bria.demo_images import write_demo_images

pytestmark = pytest.mark.timeout(900)

DAG = "system_kill_pipeline"
IMAGES = 120


def _ppid(pid: int) -> int:
    with open(f"/proc/{pid}/stat") as handle:
        return int(handle.read().rsplit(")", 1)[1].split()[1])


def _descends_from(pid: int, ancestor: int) -> bool:
    current = pid
    for _ in range(20):
        if current == ancestor:
            return True
        if current <= 1:
            return False
        try:
            current = _ppid(current)
        except (OSError, ValueError, IndexError):
            return False
    return False


def _kill_task_process(stack: AirflowStack, ti: dict[str, Any]) -> int:
    """SIGKILL the task instance's process after checking it is one of this deployment's task processes."""
    pid = int(ti["pid"])
    scheduler = stack.procs["scheduler"].pid
    assert pid_alive(pid), f"task process {pid} is not running"
    assert _descends_from(pid, scheduler), f"pid {pid} is not a task process of this deployment's scheduler"
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), timeout=10, what=f"process {pid} to die")
    return pid


def _running_ti(client: AirflowClient, run_id: str, task_id: str) -> dict[str, Any] | None:
    ti = client.task_instance(DAG, run_id, task_id)
    if ti["state"] == "running" and ti.get("pid") and ti["try_number"] == 1 and pid_alive(ti["pid"]):
        return ti
    return None


@pytest.fixture(scope="module")
def kill_run(
    client: AirflowClient,
    stack: AirflowStack,
    emulators: dict[str, Any],
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, Any]:
    """Run the kill pipeline, SIGKILL the upload then the training wait, wait for the run; return observations."""
    emulator = emulators["bria_kill"]
    folder = tmp_path_factory.mktemp("kill-images")
    write_demo_images(str(folder), IMAGES, seed=21)
    client.set_paused(DAG, False)
    run_id = client.trigger(DAG, {"conn_id": "bria_kill", "project_name": "kill-project",
                                  "image_dir": str(folder)})["dag_run_id"]
    obs: dict[str, Any] = {"run_id": run_id}

    # 1. In the middle of the upload: some, not all, images are in the dataset.
    upload = wait_until(lambda: _running_ti(client, run_id, "upload_images"), timeout=240, interval=0.1,
                        what="upload_images to run")
    wait_until(lambda: emulator.state()["counts"]["images"] >= 3, timeout=120, interval=0.02,
               what="the first images to arrive")
    obs["upload_pid"] = _kill_task_process(stack, upload)
    obs["images_at_kill"] = emulator.state()["counts"]["images"]

    # 2. In the middle of the synchronous training wait: the model is InProgress, the task process polls it.
    def training() -> dict[str, Any] | None:
        ti = _running_ti(client, run_id, "train_model")
        if ti and emulator.state()["models_by_status"].get("InProgress"):
            return ti
        return None

    train = wait_until(training, timeout=240, interval=0.1, what="train_model to wait on an InProgress model")
    time.sleep(1.0)  # well inside the wait: at least one poll happened
    obs["model_status_at_kill"] = emulator.state()["models_by_status"]
    obs["train_pid"] = _kill_task_process(stack, train)

    obs["run"] = client.wait_for_run(DAG, run_id, timeout=300, on_poll=stack.check_alive)
    obs["upload_tries"] = client.tries(DAG, run_id, "upload_images")
    obs["train_tries"] = client.tries(DAG, run_id, "train_model")
    obs["state"] = emulator.state()
    obs["start_training_calls"] = [
        r for r in emulator.requests("/v1/tailored-gen/models/") if r["path"].endswith("/start_training")
    ]
    return obs


def test_run_succeeds_after_both_kills(kill_run: dict[str, Any], client: AirflowClient) -> None:
    assert kill_run["run"]["state"] == "success", {
        t["task_id"]: (t["state"], t["try_number"]) for t in client.task_instances(DAG, kill_run["run_id"])
    }


def test_killed_upload_retry_adds_each_image_exactly_once(kill_run: dict[str, Any], client: AirflowClient) -> None:
    assert 0 < kill_run["images_at_kill"] < IMAGES, "the kill did not land in the middle of the upload"
    tries = kill_run["upload_tries"]
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert tries[0]["pid"] == kill_run["upload_pid"]
    state = kill_run["state"]
    assert state["counts"]["images"] == IMAGES
    assert state["duplicates"] == {"projects": [], "datasets": [], "models": [], "images": []}
    assert (state["counts"]["projects"], state["counts"]["datasets"], state["counts"]["models"]) == (1, 1, 1)
    summary = client.xcom_value(DAG, kill_run["run_id"], "upload_images", "return_value")
    # The retry found what the killed try had sent and only sent the rest.
    assert summary["already_present"] >= kill_run["images_at_kill"]
    assert summary["uploaded"] + summary["already_present"] == IMAGES
    assert summary["images_in_dataset"] == IMAGES


def test_killed_training_wait_retry_reattaches_without_second_training(
    kill_run: dict[str, Any], client: AirflowClient
) -> None:
    assert kill_run["model_status_at_kill"].get("InProgress") == 1
    tries = kill_run["train_tries"]
    assert [(t["try_number"], t["state"]) for t in tries] == [(1, "failed"), (2, "success")]
    assert tries[0]["pid"] == kill_run["train_pid"]
    state = kill_run["state"]
    assert state["counts"]["trainings_started"] == 1
    assert list(state["trainings_per_model"].values()) == [1]
    assert len(kill_run["start_training_calls"]) == 1, kill_run["start_training_calls"]
    assert state["models_by_status"] == {"Completed": 1}
    result = client.xcom_value(DAG, kill_run["run_id"], "train_model", "return_value")
    assert result["status"] == "Completed"
    assert str(result["model_id"]) in state["trainings_per_model"]
