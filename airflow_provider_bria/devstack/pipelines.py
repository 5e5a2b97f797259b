"""Building blocks of the deployment tests' DAGs (``tests/system/dags``, ``tests/celery/dags``, ``tests/test_dags``).

:func:`prepare_and_train` is the chain those DAGs share: project -> dataset -> upload -> completed dataset ->
model -> training (FIBO, illustration / stylized scene). :func:`kill_pipeline` is the DAG the kill tests run
(a one-at-a-time upload and a training a worker or task process is killed in the middle of).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from airflow.sdk import DAG

from airflow_provider_bria.operators.dataset import BriaCreateDatasetOperator, BriaUpdateDatasetOperator
from airflow_provider_bria.operators.model import BriaCreateModelOperator
from airflow_provider_bria.operators.project import BriaCreateProjectOperator
from airflow_provider_bria.operators.training import BriaStartTrainingOperator
from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

#: Task ids of :func:`prepare_and_train` (a DAG may rename them).
TASK_IDS: dict[str, str] = {
    "project": "create_project",
    "dataset": "create_dataset",
    "upload": "upload_images",
    "complete": "complete_dataset",
    "model": "create_model",
    "train": "train_model",
}
#: A FIBO dataset needs a visual_schema to complete (Bria's spec): the one the pipelines set.
VISUAL_SCHEMA = {"style_medium": "illustration"}


@dataclass
class Prepared:
    """The tasks :func:`prepare_and_train` added."""

    project: BriaCreateProjectOperator
    dataset: BriaCreateDatasetOperator
    upload: BriaUploadImagesOperator
    complete: BriaUpdateDatasetOperator
    model: BriaCreateModelOperator
    train: BriaStartTrainingOperator


def _output(task: Any) -> Any:
    """``task.output``: its return value as an XComArg (the operators' argument types name the rendered value)."""
    return task.output


def prepare_and_train(
    *,
    project_name: str,
    image_source: str,
    names: tuple[str, str],
    deferrable: bool,
    poll_interval: float,
    timeout: float,
    upload_concurrency: int = 1,
    visual_schema: Mapping[str, Any] | None = VISUAL_SCHEMA,
    project_version: str | None = "fibo",
    task_ids: Mapping[str, str] | None = None,
) -> Prepared:
    """Add project -> dataset -> upload -> complete -> model -> train to the DAG being defined.

    The upload, completion, model and training run in that order; the project and dataset come first through
    their XComs. Call it inside a ``with DAG(...)`` block.

    :param project_name: the project's name (templated).
    :param image_source: the upload's ``source`` (templated).
    :param names: the dataset's and the model's names.
    :param deferrable: the training waits in the triggerer.
    :param poll_interval: seconds between training polls.
    :param timeout: seconds the training may take.
    :param upload_concurrency: the upload's ``max_concurrency``.
    :param visual_schema: set when completing the dataset (``None``: the DAG sets it another way).
    :param project_version: the project's ``training_version`` (``None``: not given).
    :param task_ids: task ids replacing those of :data:`TASK_IDS`.
    """
    ids = {**TASK_IDS, **(task_ids or {})}
    version = {"training_version": project_version} if project_version else {}
    project = BriaCreateProjectOperator(task_id=ids["project"], project_name=project_name,
                                        ip_medium="illustration", ip_type="stylized_scene", **version)
    dataset = BriaCreateDatasetOperator(task_id=ids["dataset"], project_id=_output(project), name=names[0],
                                        training_version="fibo")
    upload = BriaUploadImagesOperator(task_id=ids["upload"], dataset_id=_output(dataset), source=image_source,
                                      max_concurrency=upload_concurrency)
    schema: dict[str, Any] = {"visual_schema": dict(visual_schema)} if visual_schema is not None else {}
    complete = BriaUpdateDatasetOperator(task_id=ids["complete"], dataset_id=_output(dataset), status="completed",
                                         **schema)
    model = BriaCreateModelOperator(task_id=ids["model"], dataset_id=_output(dataset), name=names[1],
                                    training_version="fibo")
    train = BriaStartTrainingOperator(task_id=ids["train"], model_id=_output(model), deferrable=deferrable,
                                      poll_interval=poll_interval, timeout=timeout)
    upload >> complete >> model >> train
    return Prepared(project, dataset, upload, complete, model, train)


def kill_pipeline(dag_id: str, *, conn_id: str, image_source: str, deferrable: bool, poll_interval: float,
                  tags: list[str]) -> tuple[DAG, Prepared]:
    """The kill tests' DAG: :func:`prepare_and_train` with a one-at-a-time upload, two retries a second apart.

    The project name comes from the run conf (``project_name``); the dataset and model are ``kill-dataset`` and
    ``kill-model``. The caller may add tasks after ``train`` inside ``with dag:``.

    :param dag_id: the DAG id.
    :param conn_id: the Bria connection (templated).
    :param image_source: the upload's ``source`` (templated).
    :param deferrable: the training waits in the triggerer (else in the task process, which a test kills).
    :param poll_interval: seconds between training polls.
    :param tags: the DAG's tags.
    """
    with DAG(dag_id=dag_id, schedule=None, start_date=datetime(2026, 1, 1), catchup=False, max_active_runs=1,
             tags=tags, default_args={"retries": 2, "retry_delay": timedelta(seconds=1), "bria_conn_id": conn_id},
             ) as dag:
        tasks = prepare_and_train(project_name="{{ dag_run.conf['project_name'] }}", image_source=image_source,
                                  names=("kill-dataset", "kill-model"), deferrable=deferrable,
                                  poll_interval=poll_interval, timeout=600)
    return dag, tasks
