"""The "weekly campaign" DAG of issue 15, written only against the documented API (docs/ and the reference).

bootstrap project -> clone the last completed dataset -> upload this week's new photos (``min_new_images``
guard) -> complete -> create the model -> train (deferred) -> 2 prompts x 4 images, a structured prompt and an
image-to-video of the first image. Every name is derived from the run's logical date, so a re-run of the same
week finds what the first run made and pays for nothing (tests/dags/test_weekly_campaign.py runs it twice).
"""

from __future__ import annotations

from typing import Any

from airflow.sdk import DAG, Param, chain, task

from airflow_provider_bria.operators.dataset import BriaCloneDatasetOperator, BriaUpdateDatasetOperator
from airflow_provider_bria.operators.generation import (
    BriaGenerateImagesOperator,
    BriaGenerateStructuredPromptOperator,
    BriaGenerateVideoOperator,
)
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

WEEK = "week-{{ ds_nodash }}"
PROMPTS = ["a red kite over the beach", "a picnic in the park"]

with DAG(
    dag_id="weekly_campaign",
    schedule="@weekly",
    catchup=False,
    default_args={"retries": 2},
    params={
        "project_name": Param("Weekly campaign", type="string"),
        "photos": Param("", type="string", description="Folder, glob or object-storage prefix of new photos."),
        "images_per_prompt": Param(4, type="integer", minimum=1, maximum=10),
        "output": Param("", type="string", description="Output folder URI."),
        "poll_interval": Param(60, type="number"),
    },
    tags=["bria", "test"],
) as dag:
    project = BriaCreateProjectOperator(
        task_id="bootstrap_project",
        project_name="{{ params.project_name }}",
        ip_medium="illustration",
        ip_type="stylized_scene",
        training_version="fibo",
    )

    @task
    def last_completed_dataset(project_id: int, **context: Any) -> int:
        """The newest completed dataset of the project other than this week's own clone."""
        from airflow_provider_bria.hooks.bria import BriaHook

        this_week = f"week-{context['ds_nodash']}"
        done = [d for d in BriaHook().list_project_datasets(project_id)
                if d["status"] == "completed" and d["name"] != this_week]
        if not done:
            raise ValueError(f"project {project_id} has no completed dataset to clone")
        return max(done, key=lambda d: (d["created_at"], d["id"]))["id"]

    source = last_completed_dataset(project.output)
    clone = BriaCloneDatasetOperator(task_id="clone_dataset", dataset_id=source, name=WEEK)
    upload = BriaUploadImagesOperator(
        task_id="upload_photos", dataset_id=clone.output, source="{{ params.photos }}", min_new_images=1,
    )
    complete = BriaUpdateDatasetOperator(task_id="complete_dataset", dataset_id=clone.output, status="completed")
    model = BriaCreateModelOperator(task_id="create_model", dataset_id=clone.output, name=WEEK,
                                    training_version="fibo")
    train = BriaStartTrainingOperator(task_id="train", model_id=model.output, deferrable=True,
                                      poll_interval="{{ params.poll_interval }}", timeout=3600)
    images = BriaGenerateImagesOperator(
        task_id="generate_images", model_id=model.output, prompt=PROMPTS,
        num_images_per_prompt="{{ params.images_per_prompt }}", seed=7,
        output_path="{{ params.output }}/images", poll_interval=0.2,
    )
    structured = BriaGenerateStructuredPromptOperator(
        task_id="structured_prompt", model_id=model.output, prompt="a kite festival at dusk", seed=7,
        output_path="{{ params.output }}/structured", poll_interval=0.2,
    )
    video = BriaGenerateVideoOperator(
        task_id="image_to_video", model_id=model.output, seed=7,
        image="{{ ti.xcom_pull(task_ids='generate_images')[0]['uri'] }}",
        output_path="{{ params.output }}/video", poll_interval=0.2,
    )
    chain(upload, complete, model, train, [images, structured])
    chain(images, video)
