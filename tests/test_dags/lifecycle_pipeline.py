"""Test DAG of the lifecycle operators: project -> dataset -> visual schema -> images -> complete -> model.

Images are uploaded by a plain task through the hook (the upload operator belongs to another area). Sample
image paths and names come from the run conf, so nothing is read at parse time.
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, chain, task

from airflow_provider_bria.operators.captions import (
    BriaGenerateVisualSchemaOperator,
    BriaRefineStructuredPromptOperator,
    BriaRegenerateCaptionsOperator,
)
from airflow_provider_bria.operators.dataset import (
    BriaCloneDatasetOperator,
    BriaCreateDatasetOperator,
    BriaUpdateDatasetOperator,
)
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator

FAST = {"retry_limit": 2, "retry_delay": 0.0, "retry_max_delay": 0.0}

with DAG(
    dag_id="lifecycle_pipeline",
    schedule=None,
    catchup=False,
    default_args={"hook_params": FAST},
    params={"project_name": "Lifecycle DAG", "samples": [], "uploads": []},
    tags=["test", "lifecycle"],
) as dag:
    project = BriaCreateProjectOperator(
        task_id="create_project",
        project_name="{{ params.project_name }}",
        ip_medium="illustration",
        ip_type="stylized_scene",
        training_version="fibo",
    )
    dataset = BriaCreateDatasetOperator(task_id="create_dataset", project_id=project.output, name="training-set")
    schema = BriaGenerateVisualSchemaOperator(
        task_id="visual_schema",
        images="{{ params.samples }}",
        dataset_id=dataset.output,
        apply_to_dataset=True,
    )
    refined = BriaRefineStructuredPromptOperator(
        task_id="refine_schema",
        dataset_id=dataset.output,
        structured_prompt=schema.output,
        instruction="emphasise the pastel palette",
    )
    apply_refined = BriaUpdateDatasetOperator(
        task_id="apply_refined_schema", dataset_id=dataset.output, visual_schema=refined.output
    )

    @task
    def upload_images(dataset_id: int, **context: Any) -> int:
        """Upload the conf's images straight through the hook."""
        from pathlib import Path

        from airflow_provider_bria.hooks.bria import BriaHook

        hook = BriaHook(**FAST)
        for path in context["params"]["uploads"]:
            hook.upload_image(int(dataset_id), file=Path(path).read_bytes(), image_name=Path(path).name)
        return len(context["params"]["uploads"])

    uploaded = upload_images(dataset.output)
    recaption = BriaRegenerateCaptionsOperator(
        task_id="regenerate_captions", dataset_id=dataset.output, poll_interval=0.2, timeout=60
    )
    complete = BriaUpdateDatasetOperator(task_id="complete_dataset", dataset_id=dataset.output, status="completed")
    model = BriaCreateModelOperator(task_id="create_model", dataset_id=dataset.output, name="brand-model-v1")
    clone = BriaCloneDatasetOperator(task_id="clone_dataset", dataset_id=dataset.output, name="training-set v2")

    chain(schema, refined, apply_refined, uploaded, recaption, complete, [model, clone])
