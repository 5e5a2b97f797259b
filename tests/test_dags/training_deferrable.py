"""Test DAGs: one deferrable training task that emits a Bria model asset event (no I/O at parse time).

``training_deferrable`` has the model's asset as outlet (the model must belong to the project ``Training DAG``
and be named ``dag model``); ``training_deferrable_alias`` has an asset alias instead, so the operator names the
asset from the model itself. ``poll_interval`` and ``timeout`` are templates (rendered from the run conf). Run with
``dag.test(run_conf={"model_id": ..., "conn_id": ..., "poll_interval": ..., "timeout": ...})``.
"""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, AssetAlias

from airflow_provider_bria.assets import bria_model_asset
from airflow_provider_bria.operators.training import BriaStartTrainingOperator

PROJECT_NAME = "Training DAG"
MODEL_NAME = "dag model"
MODEL_ASSET = bria_model_asset(PROJECT_NAME, MODEL_NAME)
MODEL_ALIAS = AssetAlias("bria-trained-models")

for dag_id, outlet in (("training_deferrable", MODEL_ASSET), ("training_deferrable_alias", MODEL_ALIAS)):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["test", "training"],
    ):
        BriaStartTrainingOperator(
            task_id="train",
            model_id="{{ dag_run.conf['model_id'] }}",
            bria_conn_id="{{ dag_run.conf.get('conn_id', 'bria_default') }}",
            deferrable=True,
            poll_interval="{{ dag_run.conf.get('poll_interval', 0.3) }}",
            timeout="{{ dag_run.conf.get('timeout', 120) }}",
            retries=0,
            outlets=[outlet],
        )
