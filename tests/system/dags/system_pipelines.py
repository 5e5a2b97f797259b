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

from airflow_provider_bria.operators.captions import BriaGenerateVisualSchemaOperator
from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator, BriaUpdateDatasetOperator
from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

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
        project = BriaCreateProjectOperator(
            task_id="create_project",
            project_name="{{ dag_run.conf['project_name'] }}",
            ip_medium="illustration",
            ip_type="stylized_scene",
            training_version="fibo",
        )
        dataset = BriaCreateDatasetOperator(
            task_id="create_dataset", project_id=project.output, name="fault-dataset", training_version="fibo"
        )
        schema = BriaGenerateVisualSchemaOperator(
            task_id="generate_visual_schema",
            images="{{ dag_run.conf['schema_images'] }}",
            dataset_id=dataset.output,
            apply_to_dataset=True,
        )
        upload = BriaUploadImagesOperator(
            task_id="upload_images", dataset_id=dataset.output, source="{{ dag_run.conf['image_dir'] }}",
            max_concurrency=2,
        )
        complete = BriaUpdateDatasetOperator(
            task_id="complete_dataset", dataset_id=dataset.output, status="completed"
        )
        model = BriaCreateModelOperator(
            task_id="create_model", dataset_id=dataset.output, name="fault-model", training_version="fibo"
        )
        train = BriaStartTrainingOperator(
            task_id="train_model", model_id=model.output, deferrable=True, poll_interval=0.5, timeout=600
        )
        generate = BriaGenerateImagesOperator(
            task_id="generate_images",
            model_id=model.output,
            prompt=PROMPTS,
            num_images_per_prompt=2,
            seed=7,
            output_path="{{ dag_run.conf['output_dir'] }}",
        )
        schema >> upload >> complete >> model >> train >> generate


with DAG(
    dag_id="system_kill_pipeline",
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    tags=["system-test"],
    default_args={"retries": 2, "retry_delay": timedelta(seconds=1), "bria_conn_id": CONN},
):
    project = BriaCreateProjectOperator(
        task_id="create_project",
        project_name="{{ dag_run.conf['project_name'] }}",
        ip_medium="illustration",
        ip_type="stylized_scene",
        training_version="fibo",
    )
    dataset = BriaCreateDatasetOperator(
        task_id="create_dataset", project_id=project.output, name="kill-dataset", training_version="fibo"
    )
    upload = BriaUploadImagesOperator(
        task_id="upload_images", dataset_id=dataset.output, source="{{ dag_run.conf['image_dir'] }}",
        max_concurrency=1,
    )
    complete = BriaUpdateDatasetOperator(  # a FIBO dataset needs a visual_schema to complete (Bria's spec)
        task_id="complete_dataset",
        dataset_id=dataset.output,
        visual_schema={"style_medium": "illustration"},
        status="completed",
    )
    model = BriaCreateModelOperator(
        task_id="create_model", dataset_id=dataset.output, name="kill-model", training_version="fibo"
    )
    train = BriaStartTrainingOperator(
        task_id="train_model", model_id=model.output, deferrable=False, poll_interval=0.5, timeout=600
    )
    upload >> complete >> model >> train
