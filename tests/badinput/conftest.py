"""Fixtures of the bad-input table: a hook on the shared emulator and builders of the objects a case needs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from badinput_helpers import World


@pytest.fixture
def world(bria_conn: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> World:
    """A :class:`World` on the reset shared emulator (``bria_default`` points at it)."""
    return World(emulator=bria_conn, monkeypatch=monkeypatch, tmp=tmp_path)


@pytest.fixture(scope="session")
def example_dags() -> dict[str, Any]:
    """The example DAGs, serialized and deserialized as the API server sees them (params included)."""
    from badinput_helpers import REPO

    from airflow_provider_bria._compat import DagBag, DagSerialization

    bag = DagBag(dag_folder=str(REPO / "dags"))
    assert not bag.import_errors, bag.import_errors
    return {dag_id: DagSerialization.from_dict(DagSerialization.to_dict(dag)) for dag_id, dag in bag.dags.items()}
