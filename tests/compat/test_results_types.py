"""The typed result shapes (``airflow_provider_bria.results``) against their oracles: Bria's OpenAPI description
for API objects, the code that builds the provider's own return values for the rest."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria import results

OPENAPI = Path(__file__).resolve().parents[3] / "shared" / "reference" / "bria-tailored-generation-openapi.yml"


def _response_properties(path_suffix: str) -> set[str]:
    """Properties of the 200 response of ``GET <path>`` in Bria's OpenAPI (some paths sit at the top level)."""
    yaml = pytest.importorskip("yaml")
    spec: dict[str, Any] = yaml.safe_load(OPENAPI.read_text())
    items = {**spec.get("paths", {}), **{k: v for k, v in spec.items() if k.startswith("/")}}
    (item,) = [v for k, v in items.items() if k.rstrip("/").endswith(path_suffix)]
    schema = item["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    return set(schema.get("properties") or {})


@pytest.mark.skipif(not OPENAPI.is_file(), reason="Bria's OpenAPI file (shared/reference) is not next to the repo")
@pytest.mark.parametrize(("typed", "path"), [(results.Model, "/models/{model_id}"),
                                             (results.Dataset, "/datasets/{dataset_id}")])
def test_api_object_types_name_every_field_of_bria_openapi(typed: Any, path: str) -> None:
    documented = _response_properties(path)
    assert documented, path
    assert documented <= set(typed.__annotations__), documented - set(typed.__annotations__)
    extra = set(typed.__annotations__) - documented
    assert extra <= {"training_version"}, extra  # returned by the API (docs/api-choices.md), not in this schema


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
