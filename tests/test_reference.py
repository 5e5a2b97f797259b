"""docs/reference.md (issue 15 item 7): generated from the code, complete, and true to Bria's OpenAPI.

- the committed page is exactly what ``airflow_provider_bria._reference`` generates (it cannot go stale);
- every operator documents its return value, and every required argument is marked, there and in the
  argument tables of docs/operators.md;
- the typed results of the hook's read methods have exactly the fields of Bria's documented responses (the
  OpenAPI file in the shared reference folder: an oracle we did not write).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from airflow_provider_bria import _reference, results
from airflow_provider_bria.hooks.bria import BriaHook

REPO = Path(__file__).resolve().parents[1]
ORACLE = REPO / "tests" / "contract" / "spec_oracle.py"

#: Typed result -> the documented GET whose 200 answer it describes.
RESPONSES = {
    results.ProjectResult: "/v1/tailored-gen/projects/{project_id}",
    results.DatasetResult: "/v1/tailored-gen/datasets/{dataset_id}",
    results.ImageResult: "/v1/tailored-gen/datasets/{dataset_id}/images/{image_id}",
    results.ModelResult: "/v1/tailored-gen/models/{model_id}",
    results.BulkUploadStatusResult: "/v1/tailored-gen/datasets/{dataset_id}/images/bulk-upload/status",
}


def test_reference_page_is_generated_from_the_code() -> None:
    committed = (REPO / "docs" / "reference.md").read_text()
    assert committed == _reference.render(), (
        "docs/reference.md is stale: run `python -m airflow_provider_bria._reference > docs/reference.md`"
    )


@pytest.mark.parametrize("cls", list(_reference.public_operators()), ids=lambda c: c.__name__)
def test_every_operator_documents_its_return_value_and_required_arguments(cls: type) -> None:
    assert _reference.returns_sentence(cls).startswith("Return"), f"{cls.__name__} does not say what it returns"
    page = (REPO / "docs" / "reference.md").read_text()
    section = page.split(f"### `{cls.__name__}`", 1)[1].split("\n### ", 1)[0]
    for name, required, _default, _templated, meaning in _reference.arguments(cls):
        row = next(line for line in section.splitlines() if line.startswith(f"| `{name}` |"))
        assert ("**required**" in row) is required, row
        assert meaning, f"{cls.__name__}({name}=...) has no :param: text"


def test_required_arguments_are_marked_in_operators_md() -> None:
    text = (REPO / "docs" / "operators.md").read_text()
    ops = {c.__name__: c for c in _reference.public_operators()}
    checked = 0
    for name, body in re.findall(r"(?m)^### `(\w+)`[^\n]*\n(.*?)(?=^### |\Z)", text, re.S):
        if name not in ops:
            continue
        rows = dict(re.findall(r"(?m)^\| `(\w+)` \| (.*?) \|$", body))
        for arg, required, *_ in _reference.arguments(ops[name]):
            if arg in rows:
                assert rows[arg].startswith("**Required.**") is required, (name, arg, rows[arg])
                checked += required
    assert checked >= 10  # ip_medium, ip_type, project_name, project_id, dataset_id...


def test_hook_read_methods_exist() -> None:
    for method in results.HOOK_READ_METHODS:
        assert callable(getattr(BriaHook, method)), method


@pytest.mark.parametrize("shape", list(RESPONSES), ids=lambda s: s.__name__)
def test_typed_results_match_bria_openapi(shape: type) -> None:
    """The fields of each typed result are exactly those of Bria's documented 200 answer."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("bria_spec_oracle", ORACLE)
    assert spec is not None
    assert spec.loader is not None
    oracle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(oracle)
    schema = oracle.response_schema("GET", RESPONSES[shape], "200")
    if schema.get("type") == "array" or "items" in schema:
        schema = schema["items"]
    documented = set(schema.get("properties") or {})
    assert documented, RESPONSES[shape]
    assert {field for field, _, _ in _reference.result_fields(shape)} == documented
