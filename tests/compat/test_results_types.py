"""The typed result shapes of the provider's own return values against the code that builds them (the API object
shapes are checked against Bria's OpenAPI extract in tests/test_reference.py)."""

from __future__ import annotations

import re

from airflow_provider_bria import results


def test_job_outcome_names_what_v2_responses_store() -> None:
    from airflow_provider_bria.responses import V2Response

    stored = V2Response.from_json({"status": "COMPLETED", "request_id": "r", "status_url": None, "result": {},
                                   "error": None, "raw": {}}).to_json()
    assert set(stored) == set(results.JobOutcome.__annotations__)


def test_training_summary_names_what_the_operator_returns() -> None:
    from airflow_provider_bria.operators.training import training_summary

    model = {"id": 5, "name": "m", "status": "Completed", "project_id": 1, "dataset_id": 2,
             "training_mode": "fully_automated", "training_version": "fibo", "active_model_version": 1,
             "checkpoint_steps": [100]}
    summary = training_summary(model, "https://console.test")
    assert set(summary) == set(results.TrainingSummary.__annotations__)
    assert re.match(r"https://console\.test/", summary["model_url"])
