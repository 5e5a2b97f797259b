"""Deferrable generation DAG: images and an image-to-video job wait in the (inline) triggerer.

``dag.test(run_conf={"model_id": ..., "output_path": ...})``. No I/O at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator, BriaGenerateVideoOperator

with DAG(
    dag_id="generation_deferrable",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={"model_id": 0, "output_path": ""},
    tags=["bria", "test"],
) as dag:
    images = BriaGenerateImagesOperator(
        task_id="images",
        model_id="{{ params.model_id }}",
        prompt=["a stone bridge", "a glass greenhouse"],
        aspect_ratio="9:16",
        output_path="{{ params.output_path }}",
        deferrable=True,
        poll_interval=0.2,
        timeout=120,
    )
    video = BriaGenerateVideoOperator(
        task_id="video",
        model_id="{{ params.model_id }}",
        image="{{ ti.xcom_pull(task_ids='images')[0]['uri'] }}",
        seed=3,
        output_path="{{ params.output_path }}",
        deferrable=True,
        poll_interval=0.2,
        timeout=120,
    )
    images >> video
