"""The public API surface (import paths, ``__init__`` signatures, template fields, trigger classpaths, provider
metadata) equals the committed ``tests/api_surface.txt``.

A refactor must not change what DAG authors import or pass. When a change is intended, regenerate the file with
``python -m tests.api_surface --write`` and say so in CHANGELOG.md.
"""

from __future__ import annotations

import inspect

import pytest

from tests import api_surface


@pytest.fixture(scope="module")
def golden() -> list[str]:
    return api_surface.read_golden()


def test_golden_file_pins_the_provider(golden: list[str]) -> None:
    """The golden file is not empty and holds what users import most (a guard against an empty rewrite)."""
    pinned = api_surface.pinned_paths(golden)
    for path in ("airflow_provider_bria.hooks.bria.BriaHook",
                 "airflow_provider_bria.operators.upload.BriaUploadImagesOperator",
                 "airflow_provider_bria.operators.generation.BriaGenerateImagesOperator",
                 "airflow_provider_bria.sensors.training.BriaTrainingSensor",
                 "airflow_provider_bria.triggers.training.BriaTrainingTrigger",
                 "airflow_provider_bria.assets.bria_model_asset"):
        assert path in pinned


def test_public_api_surface_unchanged(golden: list[str]) -> None:
    live = api_surface.surface(api_surface.pinned_paths(golden))
    text = api_surface.diff(golden, live)
    assert not text, (
        "The public API surface changed ('-' pinned, '+' now). If intended, run "
        "`python -m tests.api_surface --write` and add a CHANGELOG.md line.\n" + text
    )


def test_a_changed_default_is_reported(golden: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Changing one ``__init__`` default on the live class makes the comparison report it as a -/+ pair."""
    from airflow_provider_bria.operators.upload import BriaUploadImagesOperator

    init = inspect.unwrap(BriaUploadImagesOperator.__init__)
    monkeypatch.setattr(init, "__kwdefaults__", {**init.__kwdefaults__, "max_concurrency": 8})
    text = api_surface.diff(golden, api_surface.surface(api_surface.pinned_paths(golden)))
    line = ("airflow_provider_bria.operators.upload.BriaUploadImagesOperator"
            " | __init__ param max_concurrency: KEYWORD_ONLY")
    assert f"-{line} = 4" in text
    assert f"+{line} = 8" in text


def test_a_removed_class_is_reported(golden: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A pinned class no longer importable from its public path is reported as missing."""
    from airflow_provider_bria.operators import model

    monkeypatch.delattr(model, "BriaDeleteModelOperator")
    text = api_surface.diff(golden, api_surface.surface(api_surface.pinned_paths(golden)))
    assert "+airflow_provider_bria.operators.model.BriaDeleteModelOperator | MISSING" in text
