"""Generation "done when" DAG: 20 prompts x 2 images from a trained model into an object-storage folder.

Run with ``dag.test(run_conf={"model_id": ..., "output_path": "file:///..."})``; a second run into the same
folder must generate nothing new. No I/O at parse time.
"""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG

from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

SUBJECTS = ["mountain lake", "city street", "red bicycle", "lighthouse", "desert dune", "forest cabin", "sailboat",
            "coffee cup", "old library", "snowy village", "market stall", "space station", "garden gate",
            "vintage car", "ice cream cart", "train station", "harbour crane", "night skyline", "tea house",
            "windmill"]
PROMPTS = [f"A {s} in the brand's illustration style" for s in SUBJECTS]

with DAG(
    dag_id="generation_fanout",
    schedule=None,
    start_date=pendulum.datetime(2025, 1, 1, tz="UTC"),
    catchup=False,
    params={"model_id": 0, "output_path": "", "aspect_ratio": "16:9"},
    tags=["bria", "test"],
) as dag:
    BriaGenerateImagesOperator(
        task_id="generate",
        model_id="{{ params.model_id }}",
        prompt=PROMPTS,
        num_images_per_prompt=2,
        aspect_ratio="{{ params.aspect_ratio }}",
        output_path="{{ params.output_path }}",
        max_concurrency=6,
        poll_interval=0.2,
        timeout=120,
    )
