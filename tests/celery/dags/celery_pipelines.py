"""DAGs of the Celery deployment tests (``tests/celery``): a kill pipeline and a rate-limit fan-out.

``celery_kill_pipeline`` (connection ``bria_kill``): project -> dataset -> upload of 80 images from S3, one at a
time (a worker is killed in the middle) -> complete -> model -> deferred training -> one generation batch of 12
images into S3 (a worker is killed in the middle). ``celery_rate_limit`` (connection ``bria_rate``): 4 mapped
generation tasks of 4 images each, each at the plan's own rate; the account-wide limit of the connection must
hold across both workers. Everything comes from the run's conf: no local path anywhere.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from airflow.sdk import DAG

from airflow_provider_bria.devstack.pipelines import kill_pipeline
from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

KILL_PROMPTS = [f"a lighthouse at dusk, variation {i}" for i in range(6)]
#: The plan's limit given to every rate-limit task as its own requests_per_minute (the per-task knob).
RATE_PLAN = 10
RATE_BATCHES = [[f"a quiet lake, batch {b}, prompt {p}" for p in range(2)] for b in range(4)]

kill_dag, kill = kill_pipeline("celery_kill_pipeline", conn_id="bria_kill",
                               image_source="{{ dag_run.conf['image_source'] }}", deferrable=True, poll_interval=1,
                               tags=["celery-test"])
with kill_dag:
    generate = BriaGenerateImagesOperator(
        task_id="generate_images", model_id=kill.model.output, prompt=KILL_PROMPTS,
        num_images_per_prompt=2, seed=3, max_concurrency=2, poll_interval=0.5,
        output_path="{{ dag_run.conf['output_path'] }}",
    )
    kill.train >> generate


def fanout_dag(dag_id: str, conn_id: str, batches: list[list[str]], images: int, **generation: Any) -> DAG:
    """One mapped generation task per batch, outputs in ``<conf output_path>/<map index>``.

    :param dag_id: DAG id.
    :param conn_id: Bria connection.
    :param batches: prompts of each mapped task.
    :param images: images per prompt.
    :param generation: more operator arguments.
    """
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
             tags=["celery-test"], default_args={"retries": 0, "bria_conn_id": conn_id}) as dag:
        BriaGenerateImagesOperator.partial(
            task_id="generate_images", model_id="{{ dag_run.conf['model_id'] }}", num_images_per_prompt=images,
            max_concurrency=2, poll_interval=0.5,
            output_path="{{ dag_run.conf['output_path'] }}/{{ ti.map_index }}", **generation,
        ).expand(prompt=batches)
    return dag


rate_limit_dag = fanout_dag("celery_rate_limit", "bria_rate", RATE_BATCHES, 2, seed=5, requests_per_minute=RATE_PLAN)

#: ``make bench`` (tests/benchmarks/test_bench_celery_workers.py): the same generation workload on two workers,
#: then on one. Connection ``bria_bench``, no rate limit; the output folder changes per run.
THROUGHPUT_BATCHES = [[f"a product shot, batch {b}, prompt {p}" for p in range(2)] for b in range(8)]
throughput_dag = fanout_dag("celery_throughput", "bria_bench", THROUGHPUT_BATCHES, 1, seed=9)
