"""Fixtures for the example-DAG tests: the parsed ``dags/`` folder and a runner for ``dag.test()``."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
EXAMPLE_DAG_IDS = ("bria_dataset_preparation", "bria_training", "bria_scheduled_generation", "bria_retraining")
#: Airflow Variables (as environment variables) the example DAGs' training tasks render their wait settings from
#: when no Param is given (fast polling against the emulator).
PARSE_ENV = {
    "AIRFLOW_VAR_BRIA_EXAMPLE_POLL_INTERVAL": "0.5",
    "AIRFLOW_VAR_BRIA_EXAMPLE_TRAINING_TIMEOUT_HOURS": "0.1",
}


@pytest.fixture(scope="session")
def example_dags() -> dict[str, Any]:
    """The example DAGs parsed from ``dags/`` (with fast training polls), keyed by dag_id."""
    from airflow_provider_bria._compat import DagBag

    with pytest.MonkeyPatch.context() as mp:
        for key, value in PARSE_ENV.items():
            mp.setenv(key, value)
        bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    return dict(bag.dags)


@dataclass
class Run:
    """What one ``dag.test()`` produced."""

    dag_id: str
    run_id: str
    state: str
    tasks: dict[str, str] = field(default_factory=dict)
    tries: dict[str, int] = field(default_factory=dict)

    def xcom(self, task_id: str, key: str = "return_value", map_index: int = -1) -> Any:
        """Read one XCom of this run from the metadata database."""
        from airflow.models.xcom import XComModel
        from airflow.utils.session import create_session

        with create_session() as session:
            rows = session.scalars(
                XComModel.get_many(
                    run_id=self.run_id, dag_ids=self.dag_id, task_ids=task_id, key=key, map_indexes=map_index
                )
            ).all()
            assert rows, f"no XCom {key!r} for {self.dag_id}.{task_id}[{map_index}]"
            return XComModel.deserialize_value(rows[0])


def _run_dag(dag: Any, conf: dict[str, Any] | None = None, *, logical_date: Any = None) -> Run:
    """``dag.test(run_conf=conf)``; return the run's state and every task instance's state.

    With ``logical_date``, the run is that logical run (run after = logical date): a second call with the same
    date clears its task instances and runs it again, as "Clear" in the UI does (a re-run).
    """
    from airflow.utils.session import create_session

    if logical_date is None:
        dr = dag.test(run_conf=conf or {})
    else:
        dr = dag.test(run_conf=conf or {}, logical_date=logical_date, run_after=logical_date)
    run = Run(dag.dag_id, dr.run_id, str(getattr(dr.state, "value", dr.state)))
    with create_session() as session:
        for ti in dr.get_task_instances(session=session):
            key = ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]"
            run.tasks[key] = str(getattr(ti.state, "value", ti.state))
            run.tries[key] = ti.try_number
    return run


def _latest_asset_event(uri: str) -> Any:
    """The newest asset event recorded for ``uri`` (``None`` when there is none)."""
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        stmt = (
            select(AssetEvent)
            .join(AssetModel, AssetEvent.asset_id == AssetModel.id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.timestamp.desc(), AssetEvent.id.desc())
            .limit(1)
        )
        event = session.scalars(stmt).first()
        if event is not None:
            session.expunge(event)
        return event


@pytest.fixture
def examples_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``BRIA_EXAMPLES_DATA`` in a temporary folder (where the DAGs draw inputs and write outputs)."""
    data = tmp_path / "bria_examples"
    monkeypatch.setenv("BRIA_EXAMPLES_DATA", str(data))
    for key, value in PARSE_ENV.items():
        monkeypatch.setenv(key, value)
    return data


@pytest.fixture
def run_dag(airflow_db: Path) -> Callable[..., Run]:
    """``run_dag(dag, conf)``: run a DAG with ``dag.test()`` on the session's metadata database."""
    return _run_dag


@pytest.fixture
def latest_asset_event(airflow_db: Path) -> Callable[[str], Any]:
    """``latest_asset_event(uri)``: the newest asset event of an asset URI, or ``None``."""
    return _latest_asset_event
