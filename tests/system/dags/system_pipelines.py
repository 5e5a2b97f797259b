"""System-test DAGs (run by the real scheduler in ``tests/system``; never by ``dag.test()``).

``system_fault_pipeline``: the whole provider flow -- project, dataset, visual schema, upload, completed
dataset, model, deferred training, v2 generation -- against a Bria connection named in the run conf. The
system tests point it at emulators started with ``--fault-rate 0.2``; faults are healed by the hook's retries
and by Airflow task retries. ``system_fault_pipeline_bare`` is the same with the hook's retries off, so every
fault reaches the operators (their reconciliation, then Airflow's task retries, must cope).

``system_kill_pipeline``: the same preparation with a long, one-at-a-time upload and a *synchronous* training
wait (``deferrable=False``), so that the tests can SIGKILL the task process in the middle of the upload and in
the middle of the training wait and check the Airflow retry neither duplicates nor loses anything.

Run conf (both): ``conn_id``, ``project_name``, ``image_dir`` (folder of images); the fault pipeline also
``schema_images`` (5-10 of those files) and ``output_dir`` (folder for generated images). Nothing is read at
parse time.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from airflow.sdk import DAG

from airflow_provider_bria.devstack.pipelines import kill_pipeline, prepare_and_train
from airflow_provider_bria.operators.captions import BriaGenerateVisualSchemaOperator
from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

CONN = "{{ dag_run.conf['conn_id'] }}"
#: The hook's own retries, with a short backoff (the emulator's faults are instantaneous).
HOOK_RETRIES = {"retry_limit": 3, "retry_delay": 0.05, "retry_max_delay": 0.3}
#: No hook retries: every fault reaches the operators, and what they cannot reconcile is healed by Airflow's
#: task retries.
NO_HOOK_RETRIES = {"retry_limit": 0}
PROMPTS = ["a red kite over the dunes", "a teapot on a window sill"]

for dag_id, hook_params in (
    ("system_fault_pipeline", HOOK_RETRIES),
    ("system_fault_pipeline_bare", NO_HOOK_RETRIES),
):
    with DAG(
        dag_id=dag_id,
        schedule=None,
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=4,
        tags=["system-test"],
        default_args={
            "retries": 12,
            "retry_delay": timedelta(seconds=1),
            "bria_conn_id": CONN,
            "hook_params": hook_params,
        },
    ):
        fault = prepare_and_train(
            project_name="{{ dag_run.conf['project_name'] }}", image_source="{{ dag_run.conf['image_dir'] }}",
            names=("fault-dataset", "fault-model"), upload_concurrency=2, visual_schema=None,
            deferrable=True, poll_interval=0.5, timeout=600,
        )
        schema = BriaGenerateVisualSchemaOperator(
            task_id="generate_visual_schema",
            images="{{ dag_run.conf['schema_images'] }}",
            dataset_id=fault.dataset.output,
            apply_to_dataset=True,
        )
        generate = BriaGenerateImagesOperator(
            task_id="generate_images",
            model_id=fault.model.output,
            prompt=PROMPTS,
            num_images_per_prompt=2,
            seed=7,
            output_path="{{ dag_run.conf['output_dir'] }}",
        )
        schema >> fault.upload
        fault.train >> generate


kill_dag, _ = kill_pipeline("system_kill_pipeline", conn_id=CONN, image_source="{{ dag_run.conf['image_dir'] }}",
                            deferrable=False, poll_interval=0.5, tags=["system-test"])
