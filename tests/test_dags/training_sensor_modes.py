"""Test DAGs: the training sensor in poke, reschedule and deferrable mode (no I/O at parse time).

``training_sensor_modes_ok`` gives each sensor a generous timeout; ``training_sensor_modes_timeout`` gives each
a 2-second timeout and a retry (which a sensor timeout must not use). Run with
``dag.test(run_conf={"model_id": ..., "conn_id": ...})``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_bria.sensors.training import BriaTrainingSensor

for dag_id, timeout in (("training_sensor_modes_ok", 60), ("training_sensor_modes_timeout", 2)):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        tags=["test", "training"],
        default_args={"retries": 1, "retry_delay": timedelta(seconds=1)},
    ):
        for mode, deferrable in (("poke", False), ("reschedule", False), ("poke", True)):
            BriaTrainingSensor(
                task_id="deferrable" if deferrable else mode,
                model_id="{{ dag_run.conf['model_id'] }}",
                bria_conn_id="{{ dag_run.conf.get('conn_id', 'bria_default') }}",
                mode=mode,
                deferrable=deferrable,
                poke_interval=0.5,
                timeout=timeout,
            )
