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

from airflow_provider_bria.devstack.pipelines import prepare_and_train

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
        prepare_and_train(
            project_name="{{ dag_run.conf['project_name'] }}", image_source="{{ dag_run.conf['image_dir'] }}",
            names=("fault dataset", "fault model"), project_version=None, deferrable=True, poll_interval=0.3,
            timeout=300,
            task_ids={"project": "project", "dataset": "dataset", "upload": "upload", "complete": "complete",
                      "model": "model", "train": "train"},
        )
