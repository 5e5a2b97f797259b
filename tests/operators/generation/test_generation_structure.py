"""The generation base owns ``execute``/``execute_complete``; shared input helpers exist once."""

from __future__ import annotations

import ast
import base64
from pathlib import Path

import pytest

from airflow_provider_bria.exceptions import BriaInputError

PACKAGE = Path(__file__).resolve().parents[3] / "airflow_provider_bria"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 24


def test_operators_inherit_execute_and_execute_complete_from_the_base() -> None:
    from airflow_provider_bria.operators import generation
    from airflow_provider_bria.operators._generation_base import GenerationBase

    for name in generation.__all__:
        cls = getattr(generation, name)
        if not isinstance(cls, type):
            continue
        assert issubclass(cls, GenerationBase)
        assert "execute" not in vars(cls), f"{name} writes its own execute"
        assert "execute_complete" not in vars(cls), f"{name} writes its own execute_complete"
        assert cls.execute is GenerationBase.execute


@pytest.mark.parametrize("function", ["optional_bool", "sniff_image_format", "strip_data_uri"])
def test_shared_helpers_are_defined_once(function: str) -> None:
    places = [str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py") if "emulator" not in path.parts
              for node in ast.walk(ast.parse(path.read_text()))
              if isinstance(node, ast.FunctionDef) and node.name.lstrip("_") == function]
    assert places == ["hooks/_inputs.py"]


@pytest.mark.parametrize("header", ["data:image/png;base64,", "DATA:image/png;BASE64,",
                                    "data:image/png;charset=x;base64,"])
def test_data_uris_are_stripped_the_same_way_by_hook_and_operators(header: str) -> None:
    from airflow_provider_bria.hooks._inputs import image_ref
    from airflow_provider_bria.operators._image_inputs import encode_image

    payload = base64.b64encode(PNG).decode()
    assert image_ref(header + payload, "image") == payload
    assert encode_image(header + payload) == payload


def test_a_data_uri_without_base64_is_refused_by_the_operators() -> None:
    from airflow_provider_bria.hooks._inputs import strip_data_uri
    from airflow_provider_bria.operators._image_inputs import encode_image

    assert strip_data_uri("data:image/png,abc") == "data:image/png,abc"
    with pytest.raises(BriaInputError, match="base64-encoded"):
        encode_image("data:image/png,abc")


def test_generation_flags_are_checked_by_the_shared_optional_bool() -> None:
    from airflow_provider_bria.operators.generation import BriaGenerateLegacyImagesOperator

    with pytest.raises(BriaInputError, match="fast must be True, False or None"):
        BriaGenerateLegacyImagesOperator(task_id="t", model_id=1, prompt="p", fast="yes")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", ["BriaGenerateStructuredPromptOperator", "BriaGenerateLegacyImagesOperator"])
def test_operators_without_deferral_still_refuse_deferrable(name: str) -> None:
    from airflow_provider_bria.operators import generation

    with pytest.raises(TypeError, match="deferrable"):
        getattr(generation, name)(task_id="t", model_id=1, prompt="p", deferrable=True)
    assert getattr(generation, name)(task_id="t", model_id=1, prompt="p").deferrable is False
