"""Test DAGs: project -> dataset -> images -> completed -> model -> deferrable training, built to survive faults.

Every task has Airflow retries with a short delay; the tests run it against an emulator with ``--fault-rate``
and then check that exactly one of each object (and one training) exists and every image was uploaded once.
``training_fault_pipeline`` uses the hook's own retries (short backoff); ``training_fault_pipeline_bare``
disables them, so every fault reaches the operators and many are only healed by Airflow task retries.
The images are read from the folder given in the run conf (no I/O at parse time). Run with
``dag.test(run_conf={"conn_id": ..., "project_name": ..., "image_dir": ...})``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator, BriaUpdateDatasetOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

#: Short hook backoff: the emulator's faults are instantaneous, so there is no reason to wait long.
HOOK_PARAMS = {"retry_delay": 0.05, "retry_max_delay": 0.5}

for dag_id, hook_params in (
    ("training_fault_pipeline", HOOK_PARAMS),
    ("training_fault_pipeline_bare", {**HOOK_PARAMS, "retry_limit": 0}),
):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["test", "training"],
        default_args={
            "retries": 10,
            "retry_delay": timedelta(seconds=0.2),
            "bria_conn_id": "{{ dag_run.conf.get('conn_id', 'bria_default') }}",
            "hook_params": hook_params,
        },
    ):
        project = BriaCreateProjectOperator(
            task_id="project",
            project_name="{{ dag_run.conf['project_name'] }}",
            ip_medium="illustration",
            ip_type="stylized_scene",
        )
        dataset = BriaCreateDatasetOperator(
            task_id="dataset", project_id=project.output, name="fault dataset", training_version="fibo"
        )
        upload = BriaUploadImagesOperator(
            task_id="upload", dataset_id=dataset.output, source="{{ dag_run.conf['image_dir'] }}", max_concurrency=1
        )
        complete = BriaUpdateDatasetOperator(  # a FIBO dataset needs a visual_schema to complete (Bria's spec)
            task_id="complete",
            dataset_id=dataset.output,
            visual_schema={"style_medium": "illustration"},
            status="completed",
        )
        model = BriaCreateModelOperator(
            task_id="model", dataset_id=dataset.output, name="fault model", training_version="fibo"
        )
        train = BriaStartTrainingOperator(
            task_id="train", model_id=model.output, deferrable=True, poll_interval=0.3, timeout=300
        )
        upload >> complete >> model
