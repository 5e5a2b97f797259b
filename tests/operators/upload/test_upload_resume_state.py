"""The bulk upload's typed, versioned resume state (``_upload_bulk.BulkResumeState``).

The oracle for old layouts is the golden copy release 0.1.0 wrote (``tests/compat/golden``), not this code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria._state import STATE_VERSION_KEY, STATE_VERSIONS, StateVersionError
from airflow_provider_bria.operators._upload_bulk import BulkResumeState

GOLDEN = Path(__file__).resolve().parents[2] / "compat" / "golden"


def golden_state(name: str) -> dict[str, Any]:
    record = json.loads((GOLDEN / f"{name}.json").read_text())
    return record["kwargs"]["state"] if "kwargs" in record else record["state"]


@pytest.mark.parametrize("name", ["upload_trigger", "upload_trigger_event"])
def test_the_0_1_0_blobs_load_as_the_current_version(name: str) -> None:
    blob = golden_state(name)
    assert STATE_VERSION_KEY not in blob  # unversioned, as 0.1.0 wrote it
    state = BulkResumeState.from_record(blob)
    assert state.version == STATE_VERSIONS["upload_resume_state"]
    assert (state.total, state.skipped, state.skipped_count, state.already, state.staged_name) == (
        blob["total"], blob["skipped"], blob["skipped_count"], blob["already"], blob["staged_name"])


def test_a_state_round_trips_through_its_json_record() -> None:
    state = BulkResumeState(total=7, skipped=[{"source": "a.png", "code": "too_small", "reason": "small"}],
                            skipped_count=3, already=2, staged_name="bria-dataset-9-abc.zip")
    record = json.loads(json.dumps(state.to_record()))
    assert record[STATE_VERSION_KEY] == STATE_VERSIONS["upload_resume_state"]
    assert BulkResumeState.from_record(record) == state


def test_the_record_keeps_the_0_1_0_keys() -> None:
    """An older triggerer or worker still running 0.1.0 code during a rolling upgrade reads the same keys."""
    record = BulkResumeState().to_record()
    assert set(record) - {STATE_VERSION_KEY} == set(golden_state("upload_trigger"))


def test_a_state_from_a_newer_provider_is_refused() -> None:
    record = {**BulkResumeState().to_record(), STATE_VERSION_KEY: STATE_VERSIONS["upload_resume_state"] + 1}
    with pytest.raises(StateVersionError, match="newer airflow-provider-bria"):
        BulkResumeState.from_record(record)


def test_no_state_gives_empty_counts() -> None:
    state = BulkResumeState.from_record(None)
    assert (state.total, state.skipped, state.already, state.staged_name) == (0, [], 0, None)
