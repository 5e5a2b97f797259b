"""Output location problems are found before any request (issue 11 item 4): a probe object is written and
deleted first, and every problem is a BriaInputError naming ``output_path``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from securitylib import Recorder, context

from airflow_provider_bria.exceptions import BriaInputError


def _bad_locations(tmp_path: Path) -> dict[str, tuple[str, str]]:
    afile = tmp_path / "a-file.txt"
    afile.write_text("not a folder")
    return {
        "existing-file": (str(afile), "is a file, not a folder"),
        "under-a-file": (str(afile / "sub"), "is not writable"),
        "unknown-protocol": ("nosuchproto://bucket/out", "cannot be used as an output folder"),
        "http": ("http://example.com/out", "cannot be used as an output folder"),
        "not-creatable": ("/proc/bria-cannot-create/out", "is not writable"),
    }


@pytest.mark.parametrize("case", ["existing-file", "under-a-file", "unknown-protocol", "http", "not-creatable"])
@pytest.mark.parametrize("operator", ["images", "video", "legacy", "structured"])
def test_bad_output_path_fails_before_any_request(case: str, operator: str, hook: Any, server: Recorder,
                                                  tmp_path: Path) -> None:
    from airflow_provider_bria.operators import generation as g

    location, message = _bad_locations(tmp_path)[case]
    common = {"task_id": "t", "model_id": 1, "output_path": location, "hook_params": {"retry_limit": 0}}
    op = {
        "images": lambda: g.BriaGenerateImagesOperator(prompt="a kite", **common),
        "video": lambda: g.BriaGenerateVideoOperator(image="https://img.example/a.png", **common),
        "legacy": lambda: g.BriaGenerateLegacyImagesOperator(prompt="a kite", **common),
        "structured": lambda: g.BriaGenerateStructuredPromptOperator(prompt="a kite", **common),
    }[operator]()
    with pytest.raises(BriaInputError, match="output_path") as info:
        op.execute(context())
    assert message in str(info.value)
    assert server.seen == []  # not even the model check: nothing was asked, nothing paid


def test_probe_leaves_nothing_behind(tmp_path: Path) -> None:
    from airflow_provider_bria.operators._outputs import OutputFolder

    folder = OutputFolder(str(tmp_path / "new" / "deep"))
    folder.probe()
    assert (tmp_path / "new" / "deep").is_dir()
    assert list((tmp_path / "new" / "deep").iterdir()) == []
