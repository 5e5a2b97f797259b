"""What the Bria pages read from Airflow's metadata database: task instances, their XComs, model asset events.

Read-only queries through Airflow's own models (the API server's database session). The generation operators
push the XCom ``output_path`` (their output folder URI) before writing anything and, when items fail, the
XCom ``failures``; the training operator emits events on ``bria://models/...`` assets with the model id in the
event's extra (:mod:`airflow_provider_bria.assets`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from airflow_provider_bria.assets import MODEL_ASSET_PREFIX

#: Bound on the asset events read for the overview.
MAX_ASSET_EVENTS = 500
#: Bound on the task instances of one run shown in a run gallery.
MAX_TASKS = 500


@dataclass
class TaskOutput:
    """One task instance of a run and where its files went.

    :param task_id: the task id.
    :param map_index: the map index (``-1`` when not mapped).
    :param state: the task instance state (``None`` when not yet scheduled).
    :param output_path: the output folder URI (XCom ``output_path``), if the task pushed one.
    :param failures: the XCom ``failures`` (items that failed), if any.
    :param operator: the operator's class name.
    :param produced: names of the files the task returned (XCom ``return_value`` or ``outputs`` records);
        ``None`` when it returned none (then the whole folder is its output).
    """

    task_id: str
    map_index: int
    state: str | None
    output_path: str | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)
    operator: str | None = None
    produced: set[str] | None = None


def produced_names(*values: Any) -> set[str] | None:
    """File names in generation records (``{"uri": ...}`` dicts, or lists of them); ``None`` when there are none.

    :param values: XCom values (``return_value``, ``outputs``).
    """
    names: set[str] = set()
    found = False
    for value in values:
        records = value if isinstance(value, list) else [value]
        for record in records:
            if isinstance(record, dict) and isinstance(record.get("uri"), str):
                found = True
                names.add(record["uri"].rstrip("/").rsplit("/", 1)[-1])
    return names if found else None


def _state(value: Any) -> str | None:
    return None if value is None else str(getattr(value, "value", value))


def _xcoms(session: Any, dag_id: str, run_id: str, key: str, task_id: str | None = None,
           map_index: int | None = None) -> dict[tuple[str, int], Any]:
    from airflow.models.xcom import XComModel

    stmt = XComModel.get_many(run_id=run_id, dag_ids=dag_id, key=key, task_ids=task_id, map_indexes=map_index,
                              limit=MAX_TASKS)
    return {(row.task_id, row.map_index): XComModel.deserialize_value(row) for row in session.scalars(stmt)}


def task_outputs(dag_id: str, run_id: str, *, task_id: str | None = None,
                 map_index: int | None = None) -> list[TaskOutput] | None:
    """The task instances of a run (or one of them) with their output folders; ``None`` if the run is unknown.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param task_id: only this task.
    :param map_index: only this map index (with ``task_id``).
    """
    from airflow.models.dagrun import DagRun
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalar(select(DagRun.id).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
        if run is None:
            return None
        stmt = select(TaskInstance.task_id, TaskInstance.map_index, TaskInstance.state, TaskInstance.operator).where(
            TaskInstance.dag_id == dag_id, TaskInstance.run_id == run_id
        )
        if task_id is not None:
            stmt = stmt.where(TaskInstance.task_id == task_id)
        if map_index is not None:
            stmt = stmt.where(TaskInstance.map_index == map_index)
        rows = session.execute(stmt.order_by(TaskInstance.task_id, TaskInstance.map_index).limit(MAX_TASKS)).all()
        paths = _xcoms(session, dag_id, run_id, "output_path", task_id, map_index)
        failures = _xcoms(session, dag_id, run_id, "failures", task_id, map_index)
        returned = _xcoms(session, dag_id, run_id, "return_value", task_id, map_index) if paths else {}
        kept = _xcoms(session, dag_id, run_id, "outputs", task_id, map_index) if paths else {}
    out = []
    for row in rows:
        key = (row.task_id, row.map_index)
        path = paths.get(key)
        fails = failures.get(key)
        out.append(TaskOutput(task_id=row.task_id, map_index=row.map_index, state=_state(row.state),
                              output_path=str(path) if isinstance(path, str) and path else None,
                              failures=[f for f in fails if isinstance(f, dict)] if isinstance(fails, list) else [],
                              operator=row.operator, produced=produced_names(returned.get(key), kept.get(key))))
    return out


def output_path(dag_id: str, run_id: str, task_id: str, map_index: int) -> str | None:
    """A task instance's output folder (its XCom ``output_path``), or ``None``.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param task_id: the task id.
    :param map_index: the map index.
    """
    from airflow.utils.session import create_session

    with create_session() as session:
        value = _xcoms(session, dag_id, run_id, "output_path", task_id, map_index).get((task_id, map_index))
    return value if isinstance(value, str) and value else None


def review_images(dag_id: str, run_id: str, task_id: str) -> tuple[str, set[str]] | None:
    """The images a review task offered (its XCom ``review_images``): ``(folder URI, names)``, or ``None``.

    :param dag_id: the DAG id.
    :param run_id: the run id.
    :param task_id: the review task.
    """
    from airflow.utils.session import create_session

    with create_session() as session:
        value = _xcoms(session, dag_id, run_id, "review_images", task_id, -1).get((task_id, -1))
    if not isinstance(value, dict) or not isinstance(value.get("folder"), str):
        return None
    names = value.get("names")
    return value["folder"], {str(n) for n in names} if isinstance(names, list) else set()


@dataclass
class ModelEvent:
    """An event on a ``bria://models/...`` asset.

    :param uri: the asset URI.
    :param timestamp: when it was emitted.
    :param extra: the event's extra (model id, status...).
    :param dag_id: the producing DAG, if a task emitted it.
    :param run_id: the producing run.
    :param task_id: the producing task.
    :param task_start: when the producing task instance started (training started).
    """

    uri: str
    timestamp: datetime | None
    extra: dict[str, Any]
    dag_id: str | None
    run_id: str | None
    task_id: str | None
    task_start: datetime | None = None


def model_events() -> dict[int, list[ModelEvent]]:
    """Events of every Bria model asset, by model id (newest first), with the producing task's start time."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.models.taskinstance import TaskInstance
    from airflow.utils.session import create_session
    from sqlalchemy import and_, select

    stmt = (
        select(AssetEvent, AssetModel.uri, TaskInstance.start_date)
        .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
        .outerjoin(TaskInstance, and_(TaskInstance.dag_id == AssetEvent.source_dag_id,
                                      TaskInstance.run_id == AssetEvent.source_run_id,
                                      TaskInstance.task_id == AssetEvent.source_task_id,
                                      TaskInstance.map_index == AssetEvent.source_map_index))
        .where(AssetModel.uri.startswith(MODEL_ASSET_PREFIX))
        .order_by(AssetEvent.timestamp.desc(), AssetEvent.id.desc())
        .limit(MAX_ASSET_EVENTS)
    )
    out: dict[int, list[ModelEvent]] = {}
    with create_session() as session:
        for event, uri, start in session.execute(stmt).all():
            extra = dict(event.extra or {})
            try:
                model_id = int(extra.get("model_id"))
            except (TypeError, ValueError):
                continue
            out.setdefault(model_id, []).append(ModelEvent(
                uri=uri, timestamp=event.timestamp, extra=extra, dag_id=event.source_dag_id,
                run_id=event.source_run_id, task_id=event.source_task_id, task_start=start,
            ))
    return out
