"""
### Bria example 2/4: train a tailored model

Runs when ``bria_dataset_preparation`` publishes ``bria://datasets/bria-demo/demo-dataset`` (or by hand):
resolve the completed dataset → create the model (found by name first, so a retry never makes a second one)
→ start training and wait **deferred** (no worker slot is held for the hours a real training takes) → on
``Completed`` the training task emits ``bria://models/bria-demo/demo-model`` with the model id in the event's
extra, which schedules ``bria_scheduled_generation``.

Which dataset is trained: the ``dataset_id`` Param if set, else the dataset named by the asset event that
triggered the run, else the latest event of that asset (a manual run trains the latest prepared dataset).

A retried training task reattaches to the running (or finished) training instead of starting another one;
a timed-out wait stops the remote training. The wait polls every ``training_poll_interval`` seconds and gives
up after ``training_timeout_hours``: the Params if set, else the Airflow Variables ``bria_example_poll_interval``
and ``bria_example_training_timeout_hours`` (the emulator demo sets the first to 1), else 60 s and 8 hours.
Both are templates, rendered when the task runs (nothing is read when the file is parsed).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk import DAG, Asset, Param, chain, task

from airflow_provider_bria.assets import bria_model_asset
from airflow_provider_bria.contract import TrainingMode
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.training import BriaStartTrainingOperator

PROJECT = "bria-demo"
DATASET = "demo-dataset"
MODEL = "demo-model"
DATASET_ASSET = Asset(uri=f"bria://datasets/{PROJECT}/{DATASET}", name=f"bria://datasets/{PROJECT}/{DATASET}")
#: ``bria://models/bria-demo/demo-model``: static at parse time; the event extra carries the real model id/name.
MODEL_ASSET = bria_model_asset(PROJECT, MODEL)
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
    dag_id="bria_training",
    description="Create a model on the prepared dataset, train it (deferred), publish the model asset",
    schedule=DATASET_ASSET,
    catchup=False,
    max_active_runs=1,
    default_args=default_args,
    tags=["bria", "example"],
    doc_md=__doc__,
    params={
        "dataset_id": Param(
            None, type=["null", "integer"], description="Dataset to train. Empty: from the dataset asset event."
        ),
        "model_name": Param(MODEL, type="string", minLength=1, description="Model name within the dataset."),
        "training_mode": Param(TrainingMode.FULLY_AUTOMATED.value, enum=[m.value for m in TrainingMode]),
        "training_parameters": Param(
            {},
            type="object",
            description='Expert parameters (training_mode=expert only), e.g. {"total_training_steps": 1000}.',
        ),
        "model_description": Param("", type="string"),
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

    @task(multiple_outputs=True, inlets=[DATASET_ASSET])
    def resolve_dataset(**context: Any) -> dict[str, Any]:
        """Pick the dataset (Param, triggering event, latest event) and check it is completed."""
        from airflow_provider_bria.exceptions import BriaInputError
        from airflow_provider_bria.hooks.bria import BriaHook

        params = context["params"]
        dataset_id, origin = params["dataset_id"], "the dataset_id Param"
        if dataset_id is None:
            events = context["triggering_asset_events"].get(DATASET_ASSET) or []
            origin = "the asset event that triggered this run"
            if not events:
                events = list(context["inlet_events"][DATASET_ASSET].ascending(False).limit(1))
                origin = f"the latest event of {DATASET_ASSET.uri}"
            extras = [e.extra for e in events if (e.extra or {}).get("dataset_id") is not None]
            if not extras:
                raise BriaInputError(
                    "No dataset to train: set the dataset_id Param, or run bria_dataset_preparation first "
                    f"(it publishes {DATASET_ASSET.uri})"
                )
            dataset_id = extras[-1]["dataset_id"]
        dataset = BriaHook(CONN_ID).get_dataset(int(dataset_id), max_images=1)
        if dataset.get("status") != "completed":
            raise BriaInputError(
                f"Dataset {dataset_id} (from {origin}) is {dataset.get('status')!r}; only a completed dataset "
                "can be trained"
            )
        training_parameters = dict(params["training_parameters"] or {}) or None
        print(f"Training dataset {dataset_id} ({dataset.get('name')!r}) chosen from {origin}")
        return {
            "dataset_id": int(dataset_id),
            "project_id": dataset.get("project_id"),
            "training_parameters": training_parameters,
            "model_description": params["model_description"] or None,
        }

    target = resolve_dataset()

    create_model = BriaCreateModelOperator(
        task_id="create_model",
        dataset_id=target["dataset_id"],
        name="{{ params.model_name }}",
        training_mode="{{ params.training_mode }}",
        description=target["model_description"],
    )

    train = BriaStartTrainingOperator(
        task_id="train_model",
        model_id=create_model.output,
        training_parameters=target["training_parameters"],
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        timeout=TRAINING_TIMEOUT,
        outlets=[MODEL_ASSET],
    )

    chain(target, create_model, train)
