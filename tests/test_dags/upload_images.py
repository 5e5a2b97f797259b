"""Test DAG of the upload operator: upload a folder (from the run conf) into a dataset, then report.

No I/O at parse time: the dataset id and the source come from the run's conf at run time.
"""

from __future__ import annotations

from typing import Any

import pendulum
from airflow.sdk import DAG, task

from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

with DAG(
    dag_id="upload_images_test",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"dataset_id": 0, "source": "", "max_concurrency": 2},
    tags=["test", "bria"],
) as dag:
    upload = BriaUploadImagesOperator(
        task_id="upload_images",
        dataset_id="{{ params.dataset_id }}",
        source="{{ params.source }}",
        max_concurrency=2,
        hook_params={"retry_limit": 2, "retry_delay": 0.0},
    )

    @task
    def report(summary: dict[str, Any]) -> int:
        """Fail unless the upload reported every image as present."""
        if summary["failed_count"] or summary["uploaded"] + summary["already_present"] == 0:
            raise ValueError(f"unexpected upload summary: {summary}")
        return summary["uploaded"] + summary["already_present"]

    report(upload.output)


with DAG(
    dag_id="upload_bulk_deferrable_test",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    params={"dataset_id": 0, "source": "", "staging_path": "", "staging_url": ""},
    tags=["test", "bria"],
) as bulk_dag:
    BriaUploadImagesOperator(
        task_id="bulk_upload",
        dataset_id="{{ params.dataset_id }}",
        source="{{ params.source }}",
        staging_path="{{ params.staging_path }}",
        staging_url="{{ params.staging_url }}",
        deferrable=True,
        poll_interval=0.2,
        timeout=120,
        hook_params={"retry_limit": 2, "retry_delay": 0.0},
    )
