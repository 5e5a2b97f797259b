"""Run the example DAGs through the real scheduler and record what production would show.

:func:`run_example_pipeline` unpauses ``bria_dataset_preparation``, ``bria_training`` and
``bria_scheduled_generation`` through the REST API, triggers the preparation, and follows the chain the assets
drive: the dataset asset schedules the training, the model asset schedules the generation. While the training
runs it samples, twice a second, the training task instance (state, trigger, triggerer, pid), the default
pool's slot counts and the model's status in the emulator, so the tests can prove the task was *deferred*
(no worker slot held, no task process alive) while the model was really training.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from system_rest import AirflowClient
from system_stack import AirflowStack

PREP, TRAIN, GEN = "bria_dataset_preparation", "bria_training", "bria_scheduled_generation"
TRAIN_TASK = "train_model"


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this id exists (and is not a zombie).

    :param pid: process id.
    """
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except (OSError, IndexError):
        return False


@dataclass
class Sample:
    """One observation of the training task while its run was active."""

    t: float
    state: str | None
    try_number: int
    pid: int | None
    pid_alive: bool
    trigger_classpath: str | None
    triggerer_id: int | None
    pool_running: int
    pool_deferred: int
    running_tis: int
    model_statuses: dict[str, int]


@dataclass
class PipelineResult:
    """What the example chain did, for the assertions of several tests."""

    prep_run: dict[str, Any]
    train_run: dict[str, Any]
    gen_run: dict[str, Any]
    prep_tis: list[dict[str, Any]]
    train_tis: list[dict[str, Any]]
    gen_tis: list[dict[str, Any]]
    samples: list[Sample] = field(default_factory=list)
    data_dir: str = ""

    @property
    def train_states(self) -> list[str | None]:
        """Distinct states of the training task, in the order they were first seen."""
        seen: list[str | None] = []
        for sample in self.samples:
            if sample.state not in seen:
                seen.append(sample.state)
        return seen


def _running_ti_count(client: AirflowClient) -> int:
    body = client.get("/api/v2/dags/~/dagRuns/~/taskInstances", params={"state": "running", "limit": 100})
    return int(body["total_entries"])


def run_example_pipeline(client: AirflowClient, stack: AirflowStack, emulator: Any) -> PipelineResult:
    """Trigger the preparation and follow the asset-driven chain to the generated images.

    :param client: REST client.
    :param stack: the running deployment (checked for dead components while waiting).
    :param emulator: the ``bria_default`` emulator.
    """
    for dag_id in (PREP, TRAIN, GEN):
        assert client.set_paused(dag_id, False)["is_paused"] is False
    known_train = {r["dag_run_id"] for r in client.dag_runs(TRAIN)}
    known_gen = {r["dag_run_id"] for r in client.dag_runs(GEN)}

    prep = client.trigger(PREP, {"num_demo_images": 6, "human_review": False})
    prep_run = client.wait_for_run(PREP, prep["dag_run_id"], timeout=420, on_poll=stack.check_alive)
    prep_tis = client.task_instances(PREP, prep["dag_run_id"])
    assert prep_run["state"] == "success", {t["task_id"]: t["state"] for t in prep_tis}

    train = client.wait_for_new_run(TRAIN, run_type="asset_triggered", known=known_train, timeout=120,
                                    on_poll=stack.check_alive)
    samples: list[Sample] = []
    started = time.monotonic()

    def observe() -> None:
        stack.check_alive()
        try:
            ti = client.task_instance(TRAIN, train["dag_run_id"], TRAIN_TASK)
        except AssertionError:
            return  # not created yet
        pool = client.pool()
        trigger = ti.get("trigger") or {}
        job = ti.get("triggerer_job") or {}
        samples.append(
            Sample(
                t=round(time.monotonic() - started, 2),
                state=ti["state"],
                try_number=ti["try_number"],
                pid=ti.get("pid"),
                pid_alive=pid_alive(ti.get("pid")),
                trigger_classpath=trigger.get("classpath"),
                triggerer_id=trigger.get("triggerer_id") or job.get("id"),
                pool_running=int(pool.get("running_slots", -1)),
                pool_deferred=int(pool.get("deferred_slots", -1)),
                running_tis=_running_ti_count(client),
                model_statuses=dict(emulator.state().get("models_by_status", {})),
            )
        )

    train_run = client.wait_for_run(TRAIN, train["dag_run_id"], timeout=300, interval=0.5, on_poll=observe)
    observe()  # the task's final state, in case it and the run ended within one sample
    train_tis = client.task_instances(TRAIN, train["dag_run_id"])
    assert train_run["state"] == "success", {t["task_id"]: t["state"] for t in train_tis}

    gen = client.wait_for_new_run(GEN, run_type="asset_triggered", known=known_gen, timeout=300,
                                  on_poll=stack.check_alive)
    gen_run = client.wait_for_run(GEN, gen["dag_run_id"], timeout=300, on_poll=stack.check_alive)
    gen_tis = client.task_instances(GEN, gen["dag_run_id"])
    return PipelineResult(
        prep_run=prep_run,
        train_run=train_run,
        gen_run=gen_run,
        prep_tis=prep_tis,
        train_tis=train_tis,
        gen_tis=gen_tis,
        samples=samples,
        data_dir=stack.env["BRIA_EXAMPLES_DATA"],
    )


def wait_until(predicate: Any, *, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Poll ``predicate()`` until it returns a truthy value; return that value.

    :param predicate: callable returning a value.
    :param timeout: seconds.
    :param interval: seconds between polls.
    :param what: description for the error message.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")


def is_png(path: str | os.PathLike[str]) -> tuple[int, int]:
    """Open a file as a PNG (fully decoded) and return its size; raise if it is not a valid PNG.

    :param path: file path.
    """
    from PIL import Image

    with Image.open(path) as img:
        assert img.format == "PNG", f"{path} is {img.format}"
        img.load()
        return img.size
