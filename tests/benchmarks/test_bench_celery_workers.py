"""8. Celery scale-out: the same generation workload on two Celery workers, then on one, as a ratio.

A :class:`~airflow_provider_bria.devstack.celery_stack.CeleryStack` (PostgreSQL, Redis, S3, two workers with 2
slots each) runs ``celery_throughput`` (8 mapped generation tasks of 2 images each, emulator jobs of 6 s, outputs
in S3) once to warm up, once on both workers, then once more after worker-2 was stopped. The figure is the
one-worker run's duration divided by the two-worker run's (from the DAG runs' start and end dates): ~2 means the
second worker doubled throughput; on a small shared machine task start-up CPU limits it. Not a pass/fail test.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import benchlib
import pytest
from benchlib import record

REPO = benchlib.REPO
sys.path.insert(0, str(REPO / "tests" / "system"))
sys.path.insert(0, str(REPO / "tests" / "emulator"))

SECTION = "8. Celery scale-out"
DAG = "celery_throughput"
ITEMS = 16
#: Emulator job time: long enough that waiting on Bria, not task start-up CPU, dominates (as with the real API).
JOB_SECONDS = 6


def _conn(emulator: Any) -> str:
    import json

    return json.dumps({"conn_type": "bria", "host": emulator.url, "password": emulator.token})


@pytest.fixture(scope="module")
def celery_bench(tmp_path_factory: pytest.TempPathFactory, start_emulator: Any) -> Iterator[dict[str, Any]]:
    """A running two-worker deployment, a REST client and a trained model on the bench emulator."""
    from emulator_helpers import Api, make_image
    from system_rest import AirflowClient

    from airflow_provider_bria.devstack.celery_stack import ADMIN_USER, CeleryStack

    emulator = start_emulator(job_seconds=JOB_SECONDS, training_seconds=1)
    model = Api(emulator.url, emulator.token).trained_model(
        [make_image(c) for c in ("red", "blue", "green", "purple", "orange")]
    )
    stack = CeleryStack(tmp_path_factory.mktemp("celery-bench"), connections={"bria_bench": _conn(emulator)},
                        dag_folders={"celery": REPO / "tests" / "celery" / "dags"})
    try:
        stack.start()
        client = AirflowClient(stack.base_url, ADMIN_USER, stack.password)
        client.wait_for_dags([DAG], timeout=180)
        client.set_paused(DAG, False)
        yield {"stack": stack, "client": client, "model_id": model["id"]}
    finally:
        stack.stop()


def _run(bench: dict[str, Any], tag: str) -> float:
    """Trigger one run with its own output folder; return its duration in seconds (scheduler's dates)."""
    stack, client = bench["stack"], bench["client"]
    conf = {"model_id": bench["model_id"], "output_path": stack.s3_uri("bench", tag)}
    run_id = client.trigger(DAG, conf)["dag_run_id"]
    run = client.wait_for_run(DAG, run_id, timeout=900, on_poll=stack.check_alive)
    assert run["state"] == "success", client.task_instances(DAG, run_id)
    start, end = (datetime.fromisoformat(run[k].replace("Z", "+00:00")) for k in ("start_date", "end_date"))
    return (end - start).total_seconds()


def test_two_workers_vs_one(celery_bench: dict[str, Any]) -> None:
    from airflow_provider_bria.devstack.celery_stack import node_name

    stack = celery_bench["stack"]
    _run(celery_bench, f"warmup-{time.time_ns()}")
    two = _run(celery_bench, f"two-{time.time_ns()}")
    stack.stop_worker("worker-2")
    deadline = time.monotonic() + 60
    while node_name("worker-2") in stack.ping_workers() and time.monotonic() < deadline:
        time.sleep(1)
    one = _run(celery_bench, f"one-{time.time_ns()}")
    record(SECTION, f"{ITEMS} images in 8 tasks: one worker's run time / two workers' run time", one / two,
           "{:.2f}×", notes=f"two workers (2 slots each): {two:.1f} s; one worker: {one:.1f} s; emulator jobs take "
                            f"{JOB_SECONDS} s; outputs in S3 (moto); Redis broker, PostgreSQL metadata database")
