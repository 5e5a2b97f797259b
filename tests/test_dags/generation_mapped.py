"""Generation DAG with dynamic task mapping: one mapped task instance per prompt, plus structured prompts.

``dag.test(run_conf={"model_id": ..., "output_path": ...})``. No I/O at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_bria.operators.generation import (
    BriaGenerateImagesOperator,
    BriaGenerateStructuredPromptOperator,
)

MAPPED_PROMPTS = ["a teal kite over a beach", "a paper boat on a puddle", "a fox reading a map"]

with DAG(
    dag_id="generation_mapped",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={"model_id": 0, "output_path": ""},
    tags=["bria", "test"],
) as dag:
    structured = BriaGenerateStructuredPromptOperator(
        task_id="structured",
        model_id="{{ params.model_id }}",
        prompt="a lighthouse at dawn",
        poll_interval=0.1,
    )
    images = BriaGenerateImagesOperator.partial(
        task_id="images",
        model_id="{{ params.model_id }}",
        output_path="{{ params.output_path }}",
        aspect_ratio="3:4",
        poll_interval=0.1,
    ).expand(prompt=MAPPED_PROMPTS)
    from_structured = BriaGenerateImagesOperator(
        task_id="from_structured",
        model_id="{{ params.model_id }}",
        structured_prompt="{{ ti.xcom_pull(task_ids='structured') }}",
        seed=42,
        output_path="{{ params.output_path }}",
        poll_interval=0.1,
    )
    structured >> from_structured
