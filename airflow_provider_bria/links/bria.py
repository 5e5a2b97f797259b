"""Extra links to the Bria console, and the helpers that build and publish console URLs.

The console URL format is inferred from the Bria platform (it is not part of the documented API):
``{console_url}/tailored-generation/projects/{project_id}`` and, below it, ``/datasets/{dataset_id}`` and
``/models/{model_id}``. ``console_url`` comes from the connection extra ``console_url`` (default
:data:`airflow_provider_bria.contract.DEFAULT_CONSOLE_URL`) and is exposed by the hook as ``hook.console_url``.

Operators push the URLs to XCom under the keys ``project_url``, ``dataset_url`` and ``model_url`` right after
they know the object's id; the links read those keys back. In Airflow 3 ``get_link`` runs on the worker when
the task finishes and the result is stored for the UI, so a link shows for every task that pushed its URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperatorLink

from airflow_provider_bria.contract import DEFAULT_CONSOLE_URL

if TYPE_CHECKING:
    from airflow.sdk import BaseOperator
    from airflow.sdk.types import TaskInstanceKey

XCOM_PROJECT_ID = "project_id"
XCOM_PROJECT_URL = "project_url"
XCOM_DATASET_ID = "dataset_id"
XCOM_DATASET_URL = "dataset_url"
XCOM_MODEL_ID = "model_id"
XCOM_MODEL_URL = "model_url"


def _base(console_url: str | None) -> str:
    return (str(console_url).strip() if console_url else DEFAULT_CONSOLE_URL).rstrip("/")


def project_console_url(base: str | None, project_id: int | str) -> str:
    """Console page of a project.

    :param base: console base URL (``None`` or empty means the default console).
    :param project_id: the project id.
    """
    return f"{_base(base)}/tailored-generation/projects/{project_id}"


def dataset_console_url(base: str | None, project_id: int | str, dataset_id: int | str) -> str:
    """Console page of a dataset.

    :param base: console base URL (``None`` or empty means the default console).
    :param project_id: the dataset's project id.
    :param dataset_id: the dataset id.
    """
    return f"{project_console_url(base, project_id)}/datasets/{dataset_id}"


def model_console_url(base: str | None, project_id: int | str, model_id: int | str) -> str:
    """Console page of a model.

    :param base: console base URL (``None`` or empty means the default console).
    :param project_id: the model's project id.
    :param model_id: the model id.
    """
    return f"{project_console_url(base, project_id)}/models/{model_id}"


def push_console_xcoms(
    context: Any,
    console_url: str | None,
    *,
    project_id: int | None,
    dataset_id: int | None = None,
    model_id: int | None = None,
) -> dict[str, Any]:
    """Push the ids and console URLs of a project (and optionally a dataset or a model) to XCom.

    Keys pushed: ``project_id``/``project_url`` when ``project_id`` is known, ``dataset_id``/``dataset_url``
    when ``dataset_id`` is given, ``model_id``/``model_url`` when ``model_id`` is given (URLs need the
    project id: without it only the ids are pushed).

    :param context: the task context (needs ``context["ti"].xcom_push``).
    :param console_url: the console base URL (``hook.console_url``).
    :param project_id: the project id, or ``None`` when unknown.
    :param dataset_id: a dataset id to publish.
    :param model_id: a model id to publish.
    :return: the pushed key/value pairs.
    """
    values: dict[str, Any] = {}
    if project_id is not None:
        values[XCOM_PROJECT_ID] = project_id
        values[XCOM_PROJECT_URL] = project_console_url(console_url, project_id)
    if dataset_id is not None:
        values[XCOM_DATASET_ID] = dataset_id
        if project_id is not None:
            values[XCOM_DATASET_URL] = dataset_console_url(console_url, project_id, dataset_id)
    if model_id is not None:
        values[XCOM_MODEL_ID] = model_id
        if project_id is not None:
            values[XCOM_MODEL_URL] = model_console_url(console_url, project_id, model_id)
    ti = context["ti"]
    for key, value in values.items():
        ti.xcom_push(key=key, value=value)
    return values


class _BriaConsoleLink(BaseOperatorLink):
    """A link whose URL an operator pushed to XCom under :attr:`url_key`."""

    name = "Bria console"
    url_key = XCOM_PROJECT_URL

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        """Return the URL the task pushed, or ``""`` when it pushed none.

        :param operator: the operator (unused: the URL depends on the run, not on the operator).
        :param ti_key: the task instance whose XCom holds the URL.
        """
        from airflow.sdk.execution_time.xcom import XCom

        value = XCom.get_value(ti_key=ti_key, key=self.url_key)
        return str(value) if value else ""


class BriaProjectLink(_BriaConsoleLink):
    """Link to the project's page in the Bria console (XCom key ``project_url``)."""

    name = "Bria Project"
    url_key = XCOM_PROJECT_URL


class BriaDatasetLink(_BriaConsoleLink):
    """Link to the dataset's page in the Bria console (XCom key ``dataset_url``)."""

    name = "Bria Dataset"
    url_key = XCOM_DATASET_URL


class BriaModelLink(_BriaConsoleLink):
    """Link to the model's page in the Bria console (XCom key ``model_url``)."""

    name = "Bria Model"
    url_key = XCOM_MODEL_URL
