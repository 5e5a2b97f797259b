"""The one event validator and the one ``hook_params`` rule, against release 0.1.0's golden events."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaInputError, BriaTriggerEventError
from airflow_provider_bria.waiting.events import (
    BULK_UPLOAD_EVENTS,
    FAILURE_STATUSES,
    JOB_EVENTS,
    SUCCESS_STATUSES,
    TRAINING_EVENTS,
    WAIT_ENDED_STATUSES,
    EventStatus,
    check_hook_params,
    validate_event,
)

GOLDEN = Path(__file__).resolve().parents[1] / "compat" / "golden"
CONTRACTS = {"training_trigger": TRAINING_EVENTS, "upload_trigger": BULK_UPLOAD_EVENTS, "job_trigger": JOB_EVENTS}


def test_terminal_sets_partition_the_enum() -> None:
    sets = [SUCCESS_STATUSES, FAILURE_STATUSES, WAIT_ENDED_STATUSES]
    assert set().union(*sets) == set(EventStatus)
    assert sum(len(s) for s in sets) == len(EventStatus)


@pytest.mark.parametrize("name", sorted(CONTRACTS))
def test_events_fired_by_release_0_1_0_still_validate(name: str) -> None:
    old = json.loads((GOLDEN / f"{name}_event.json").read_text())
    event = validate_event(old, CONTRACTS[name])
    assert event["status"] == old["status"]


@pytest.mark.parametrize("contract", list(CONTRACTS.values()))
@pytest.mark.parametrize("event", [None, "success", ["status"], {"status": "weird"}, {}])
def test_malformed_events_are_refused(contract: Any, event: Any) -> None:
    with pytest.raises(BriaTriggerEventError, match="Unexpected"):
        validate_event(event, contract)


@pytest.mark.parametrize(
    ("contract", "event", "match"),
    [
        (TRAINING_EVENTS, {"status": "success", "model_id": "5"}, "model_id"),
        (TRAINING_EVENTS, {"status": "success", "model_id": True}, "model_id"),
        (BULK_UPLOAD_EVENTS, {"status": "done"}, "without a dataset_id"),
        (JOB_EVENTS, {"status": "success", "context": None}, "resume state"),
        (JOB_EVENTS, {"status": "success", "context": {"pending": "x"}}, "resume state"),
        (TRAINING_EVENTS, {"status": "done", "model_id": 5}, "Unexpected"),  # another kind's status
    ],
)
def test_missing_or_malformed_fields_are_named(contract: Any, event: dict[str, Any], match: str) -> None:
    with pytest.raises(BriaTriggerEventError, match=match):
        validate_event(event, contract)


def test_fields_are_converted() -> None:
    assert validate_event({"status": "done", "dataset_id": "7"}, BULK_UPLOAD_EVENTS)["dataset_id"] == 7
    old_context = {"pending": [], "records": {}}  # an unversioned (0.1.0) resume state is migrated
    assert validate_event({"status": "success", "context": old_context}, JOB_EVENTS)["context"] == old_context


def test_hook_params_rule() -> None:
    ok = {"timeout": 5, "retry_limit": 2, "headers": {"x": "y"}, "none": None}
    assert check_hook_params(ok) == ok
    assert check_hook_params(None) == {}
    for bad in ({"timeout": timedelta(seconds=5)}, {"f": print}, {"o": object()}):
        with pytest.raises(BriaInputError, match="hook_params"):
            check_hook_params(bad)
        assert check_hook_params({**bad, "timeout2": 1}, drop_invalid=True) == {"timeout2": 1}
    with pytest.raises(BriaInputError, match="hook_params must be a dict"):
        check_hook_params([("timeout", 5)])
