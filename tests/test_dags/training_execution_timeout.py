"""Test DAG: execution_timeout on a synchronous and on a deferrable training wait (no I/O at parse time).

Both tasks have a 2-second ``execution_timeout`` and a long wait ``timeout``; each must stop its own training
when the execution timeout fires. Run with
``dag.test(run_conf={"sync_model_id": ..., "deferred_model_id": ..., "conn_id": ...})``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_bria.operators.training import BriaStartTrainingOperator

with DAG(
    dag_id="training_execution_timeout",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["test", "training"],
    default_args={
        "retries": 0,
        "execution_timeout": timedelta(seconds=2),
        "bria_conn_id": "{{ dag_run.conf.get('conn_id', 'bria_default') }}",
    },
):
    for task_id, deferrable in (("sync", False), ("deferred", True)):
        BriaStartTrainingOperator(
            task_id=task_id,
            model_id="{{ dag_run.conf['" + task_id + "_model_id'] }}",
            deferrable=deferrable,
            poll_interval=0.3,
            timeout=300,
        )
