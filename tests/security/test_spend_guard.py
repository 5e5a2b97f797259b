"""The spend guard (issue 11 item 5): ``max_requests`` paid requests per task, checked before any request."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from securitylib import Recorder, context

from airflow_provider_bria.exceptions import BriaInputError


def _run(op: Any) -> Any:
    return op.execute(context())


@pytest.fixture(scope="module")
def huge_prompts(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("prompts") / "prompts.txt"
    path.write_text("".join(f"a kite number {i}\n" for i in range(200_000)))
    return str(path)


@pytest.mark.parametrize(("operator", "expected"), [("images", 800_000), ("legacy", 200_000),
                                                    ("structured", 200_000)])
def test_a_huge_prompts_file_is_refused_with_its_cost(operator: str, expected: int, huge_prompts: str, hook: Any,
                                                      server: Recorder, tmp_path: Path) -> None:
    from airflow_provider_bria.operators import generation as g

    common = {"task_id": "t", "model_id": 1, "prompts_file": huge_prompts, "output_path": str(tmp_path)}
    op = {
        "images": lambda: g.BriaGenerateImagesOperator(num_images_per_prompt=4, **common),
        "legacy": lambda: g.BriaGenerateLegacyImagesOperator(**common),
        "structured": lambda: g.BriaGenerateStructuredPromptOperator(**common),
    }[operator]()
    with pytest.raises(BriaInputError, match=f"would cost {expected} paid generation requests") as info:
        _run(op)
    assert "max_requests=1000" in str(info.value)
    assert server.seen == []
    assert list(tmp_path.iterdir()) == []


def test_max_requests_is_a_templatable_knob(hook: Any, server: Recorder, tmp_path: Path) -> None:
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

    op = BriaGenerateImagesOperator(task_id="t", model_id=1, prompt=["a", "b", "c"], output_path=str(tmp_path),
                                    max_requests="{{ params.budget }}")
    assert "max_requests" in op.template_fields
    op.max_requests = "2"  # as rendered
    with pytest.raises(BriaInputError, match=r"would cost 3 paid generation requests \(3 prompt\(s\) x 1 image"):
        _run(op)
    assert server.seen == []


@pytest.mark.parametrize("value", [0, -1, "many", True])
def test_max_requests_is_validated(value: Any) -> None:
    from airflow_provider_bria.operators.generation import BriaGenerateImagesOperator

    with pytest.raises(BriaInputError, match="max_requests"):
        BriaGenerateImagesOperator(task_id="t", model_id=1, prompt="a", max_requests=value)
