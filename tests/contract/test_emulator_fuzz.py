"""Schema-driven fuzzing of the emulator from Bria's spec extract (schemathesis), bounded in count and time.

Checks, per generated request: no 5xx (``not_a_server_error``), every response body matches the spec's
schema for its status (``response_schema_conformance``), and requests schemathesis made invalid on purpose
are refused with a 4xx (``negative_data_rejection``). Bounds: ``FUZZ_EXAMPLES`` per operation and the
``--fuzz-seconds`` wall-clock budget below; the whole module stays well under 3 minutes on 2 cores.

Two adjustments to the document, both test set-up rather than spec changes: the ``api_token`` header
parameter is removed (the token is sent out of band, so fuzzing explores bodies and paths instead of 401s),
and ``oneOf`` is read as ``anyOf`` (Bria's alternatives overlap; :mod:`spec_oracle` does the same).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import hypothesis
import pytest
import schemathesis
import spec_oracle as spec
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import negative_data_rejection, response_schema_conformance

FUZZ_EXAMPLES = 12
FUZZ_SECONDS = 120.0
_STARTED: list[float] = []


def _fuzz_document() -> dict[str, Any]:
    document = copy.deepcopy(spec.load_extract())

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if "oneOf" in node:
                node["anyOf"] = node.pop("oneOf")
            if isinstance(node.get("parameters"), list):
                node["parameters"] = [p for p in node["parameters"] if p.get("name") != "api_token"]
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        return node

    return walk(document)


SCHEMA = schemathesis.openapi.from_dict(
    _fuzz_document(),
    config=schemathesis.config.SchemathesisConfig.from_dict(
        {
            "checks": {"response_schema_conformance": {"validate-formats": False}},  # Bria's naive timestamps
            "generation": {"max-examples": FUZZ_EXAMPLES},
            "phases": {"stateful": {"enabled": False}},
        }
    ),
)


@pytest.fixture(scope="module")
def fuzz_target(start_emulator: Any) -> Iterator[Any]:
    process = start_emulator(training_seconds=0.2, job_seconds=0.1)
    yield process
    process.stop()


@SCHEMA.parametrize()
@hypothesis.settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(hypothesis.HealthCheck),
)
def test_fuzz_emulator_from_the_spec(case: Any, fuzz_target: Any) -> None:
    if not _STARTED:
        _STARTED.append(time.monotonic())
    if time.monotonic() - _STARTED[0] > FUZZ_SECONDS:
        pytest.skip("fuzzing time budget used up")
    case.call_and_validate(
        base_url=fuzz_target.url,
        headers={"api_token": fuzz_target.token},
        checks=[not_a_server_error, response_schema_conformance, negative_data_rejection],
        timeout=30,
    )
