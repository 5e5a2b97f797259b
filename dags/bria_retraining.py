"""
### Bria example 4/4: retrain when new images land

Runs every Monday at 03:00 UTC **and** whenever ``bria://new-images/bria-demo/demo-dataset`` gets an event
(emit it from your ingestion pipeline, e.g. ``POST /api/v2/assets/events`` with ``extra: {"source": "s3://..."}``):
clone the dataset of the current model as a draft → add the new images (quality gate, duplicates skipped) →
complete the clone → create and train a new model (deferred) → publish it on ``bria://models/bria-demo/demo-model``,
the asset ``bria_scheduled_generation`` follows, so the next generation run uses the new model.

Inputs: the dataset to clone is the ``source_dataset_id`` Param, else the dataset of the model in the latest
model asset event not published by this run itself (so each retraining builds on the previous one, and a
re-run of a finished run builds on the same model again). New images come from the
``new_images_source`` Param, else the ``source`` in the triggering event's extra, else
``$BRIA_EXAMPLES_DATA/new-images``; with ``generate_demo_images`` an empty folder is filled with new demo images.
The run is skipped when there is nothing new: no image in the source folder, or none the clone did not
already have (the upload task's ``min_new_images=1`` guard).

Retry-safe: the clone and the model are named after the run (``<name>-<YYYYMMDDTHHMMSS>`` of the run's
``run_after``), so a retry finds the objects it already created; uploads skip images already present.

The training wait polls every ``training_poll_interval`` seconds and gives up after ``training_timeout_hours``:
the Params if set, else the Airflow Variables ``bria_example_poll_interval`` and
``bria_example_training_timeout_hours``, else 60 s and 8 hours (templates rendered when the task runs).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, chain, task

from airflow_provider_bria._compat import (
    AssetOrTimeSchedule,
    CronTriggerTimetable,
    latest_asset_events,
    multiple_outputs,
)
from airflow_provider_bria.assets import bria_model_asset
from airflow_provider_bria.contract import TrainingMode
from airflow_provider_bria.operators.dataset import BriaCloneDatasetOperator, BriaUpdateDatasetOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

PROJECT = "bria-demo"
DATASET = "demo-dataset"
MODEL = "demo-model"
MODEL_ASSET = bria_model_asset(PROJECT, MODEL)
NEW_IMAGES_ASSET = Asset(uri=f"bria://new-images/{PROJECT}/{DATASET}", name=f"bria://new-images/{PROJECT}/{DATASET}")
#: Training wait settings, rendered when the task runs: the run's Param, else a deployment-wide Airflow Variable
#: (e.g. ``AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL=1`` against the emulator), else the default.
POLL_INTERVAL = "{{ params.training_poll_interval or var.value.get('bria_example_poll_interval', 60) }}"
TRAINING_TIMEOUT = (
    "{{ (params.training_timeout_hours or var.value.get('bria_example_training_timeout_hours', 8)) | float * 3600 }}"
)

#: The Bria connection every task uses (operators get it through default_args).
CONN_ID = "bria_default"

default_args: dict[str, Any] = {
    "owner": "bria-examples",
    "bria_conn_id": CONN_ID,
    "retries": 3,
    "retry_delay": timedelta(seconds=10),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=5),
}

with DAG(
    dag_id="bria_retraining",
    description="Clone the dataset as draft, add new images, complete, train a new model, publish it",
    schedule=AssetOrTimeSchedule(
        # run_immediately=timedelta(0): unpausing just after '0 3 * * 1' waits for the next time instead of
        # starting a "just missed" run at once (False would still run within 10% of the interval).
        timetable=CronTriggerTimetable("0 3 * * 1", timezone="UTC", run_immediately=timedelta(0)),
        assets=NEW_IMAGES_ASSET,
    ),
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["bria", "example"],
    doc_md=__doc__,
    params={
        "source_dataset_id": Param(
            None, type=["null", "integer"], description="Dataset to clone. Empty: the current model's dataset."
        ),
        "dataset_name": Param(DATASET, type="string", minLength=1, description="Base name of the cloned dataset."),
        "model_name": Param(MODEL, type="string", minLength=1, description="Base name of the new model."),
        "new_images_source": Param(
            "", type="string", description="Folder, glob or object-storage URI holding only the new images."
        ),
        "generate_demo_images": Param(True, type="boolean", description="Draw new demo images if it is empty."),
        "num_demo_images": Param(3, type="integer", minimum=1, maximum=50),
        "demo_seed": Param(None, type=["null", "integer"], description="Empty: derived from the run."),
        "training_mode": Param(TrainingMode.FULLY_AUTOMATED.value, enum=[m.value for m in TrainingMode]),
        "training_parameters": Param({}, type="object", description="Expert parameters (expert mode only)."),
        "training_poll_interval": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            description="Seconds between training polls. Empty: Variable bria_example_poll_interval, else 60.",
        ),
        "training_timeout_hours": Param(
            None,
            type=["null", "number"],
            exclusiveMinimum=0,
            description="Training wait budget in hours (stopped after it). Empty: Variable "
            "bria_example_training_timeout_hours, else 8.",
        ),
    },
) as dag:

    @task(multiple_outputs=True, inlets=[MODEL_ASSET])
    def plan(**context: Any) -> dict[str, Any]:
        """Choose the dataset to clone, the new images and this run's object names."""
        from airflow_provider_bria.demo_images import examples_data_root
        from airflow_provider_bria.exceptions import BriaInputError

        params = context["params"]
        source_id, origin = params["source_dataset_id"], "the source_dataset_id Param"
        if source_id is None:
            # The newest model this run did not publish itself: a re-run builds on the same model again.
            run = context["dag_run"]
            this = (getattr(run, "dag_id", None), getattr(run, "run_id", None))
            recent = latest_asset_events(context["inlet_events"][MODEL_ASSET], limit=10)
            latest = [e for e in recent if this[1] is None
                      or (getattr(e, "source_dag_id", None), getattr(e, "source_run_id", None)) != this]
            extra = dict(latest[0].extra or {}) if latest else {}
            source_id, origin = extra.get("dataset_id"), f"the dataset of model {extra.get('model_id')}"
        if source_id is None:
            raise BriaInputError(
                "No dataset to clone: set source_dataset_id, or train a model first (bria_training publishes "
                f"{MODEL_ASSET.uri})"
            )
        new_source = (params["new_images_source"] or "").strip()
        if not new_source:
            events = context["triggering_asset_events"].get(NEW_IMAGES_ASSET) or []
            sources = [e.extra["source"] for e in events if (e.extra or {}).get("source")]
            new_source = sources[-1] if sources else f"{examples_data_root()}/new-images"
        run_after = context["dag_run"].run_after
        tag = run_after.strftime("%Y%m%dT%H%M%S")
        seed = params["demo_seed"] if params["demo_seed"] is not None else int(run_after.strftime("%y%m%d%H%M%S"))
        print(f"Cloning dataset {source_id} (from {origin}); new images from {new_source}; version {tag}")
        return multiple_outputs({
            "source_dataset_id": int(source_id),
            "dataset_name": f"{params['dataset_name']}-{tag}",
            "model_name": f"{params['model_name']}-{tag}",
            "new_images_source": new_source,
            "demo_seed": int(seed),
            "training_parameters": dict(params["training_parameters"] or {}) or None,
        })

    @task.short_circuit
    def prepare_new_images(source: str, seed: int, **context: Any) -> str | bool:
        """Return the new images' source, or ``False`` (skip the rest of the run) when there are none."""
        from airflow_provider_bria.demo_images import ensure_demo_images

        params = context["params"]
        found = ensure_demo_images(
            source, int(params["num_demo_images"]), seed=seed, generate=bool(params["generate_demo_images"])
        )
        print(f"{len(found)} new images in {source}")
        return source if found else False

    p = plan()
    new_images = prepare_new_images(p["new_images_source"], p["demo_seed"])

    clone = BriaCloneDatasetOperator(
        task_id="clone_dataset",
        dataset_id=p["source_dataset_id"],
        name=p["dataset_name"],
    )

    # min_new_images: no new image in the clone (e.g. the folder only held images the source already had)
    # skips this task and everything after it, so no training is paid for.
    upload = BriaUploadImagesOperator(
        task_id="upload_new_images",
        dataset_id=clone.output,
        source=new_images,
        min_new_images=1,
    )

    complete = BriaUpdateDatasetOperator(
        task_id="complete_dataset",
        dataset_id=clone.output,
        status="completed",
    )

    create_model = BriaCreateModelOperator(
        task_id="create_model",
        dataset_id=clone.output,
        name=p["model_name"],
        training_mode="{{ params.training_mode }}",
    )

    train = BriaStartTrainingOperator(
        task_id="train_model",
        model_id=create_model.output,
        training_parameters=p["training_parameters"],
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=TRAINING_TIMEOUT,
        outlets=[MODEL_ASSET],
    )

    chain(new_images, clone, upload, complete, create_model, train)
