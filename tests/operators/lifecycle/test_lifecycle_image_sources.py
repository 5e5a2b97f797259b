"""One way to name images (issue 15 item 5): the visual-schema and caption-prefix operators take the upload
operator's sources (files, folders, globs, object-storage prefixes, XCom lists) and apply its quality gate."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from kit import FAST_HOOK
from lifecycle_helpers import png_bytes

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._image_inputs import gate_images
from airflow_provider_bria.operators.captions import (
    BriaGenerateCaptionPrefixOperator,
    BriaGenerateVisualSchemaOperator,
)


def _folder(tmp_path: Path, good: int, bad: int = 0, name: str = "samples") -> Path:
    folder = tmp_path / name
    folder.mkdir()
    for i in range(good):
        (folder / f"s-{i}.png").write_bytes(png_bytes(i))
    for i in range(bad):
        (folder / f"broken-{i}.png").write_bytes(b"not an image at all")
    return folder


@pytest.mark.parametrize("form", ["folder", "glob", "file-uri-prefix", "list-of-folder-and-file", "xcom-text"])
def test_schema_operator_takes_upload_sources(
    form: str, bria_conn: Any, make_context: Any, tmp_path: Path
) -> None:
    folder = _folder(tmp_path, good=5)
    extra = tmp_path / "extra.png"
    extra.write_bytes(png_bytes(9))
    images: Any = {
        "folder": str(folder),
        "glob": str(folder / "*.png"),
        "file-uri-prefix": folder.as_uri() + "/",
        "list-of-folder-and-file": [str(folder), str(extra)],
        "xcom-text": json.dumps([str(p) for p in sorted(folder.glob("*.png"))]),  # a list rendered from XCom
    }[form]
    schema = BriaGenerateVisualSchemaOperator(task_id="s", images=images, hook_params=FAST_HOOK).execute(
        make_context())
    assert json.loads(schema)


def test_the_quality_gate_skips_broken_files_with_a_warning(tmp_path: Path) -> None:
    class Log:
        def __init__(self) -> None:
            self.lines: list[str] = []

        def warning(self, msg: str, *args: Any) -> None:
            self.lines.append(msg % args)

    log = Log()
    payload = gate_images(str(_folder(tmp_path, good=5, bad=2)), "images", minimum=5, maximum=10,
                          what="generate_visual_schema", log=log)
    assert len(payload) == 5
    assert len(log.lines) == 1
    assert "2 of 7 source files were skipped by the quality gate" in log.lines[0]


def test_too_few_valid_images_names_the_skipped_files(bria_conn: Any, tmp_path: Path) -> None:
    with pytest.raises(BriaInputError, match=r"needs 5-10 images, got 3 valid ones in images; skipped: .*broken-0"):
        BriaGenerateVisualSchemaOperator(task_id="s", images=str(_folder(tmp_path, good=3, bad=2)),
                                         hook_params=FAST_HOOK).execute({})
    assert bria_conn.requests(path_prefix="/v1/tailored-gen/generate_visual_schema") == []


def test_a_big_folder_gives_its_first_ten(tmp_path: Path) -> None:
    lines: list[str] = []

    class Log:
        def warning(self, msg: str, *args: Any) -> None:
            lines.append(msg % args)

    payload = gate_images(str(_folder(tmp_path, good=12)), "images", minimum=5, maximum=10,
                          what="generate_visual_schema", log=Log())
    assert len(payload) == 10
    assert "12 valid images found" in lines[0]
    with pytest.raises(BriaInputError, match="needs 5-10 images, got 11"):
        gate_images([str(tmp_path / "x.png")] * 11, "images", minimum=5, maximum=10, what="generate_visual_schema")


def test_caption_prefix_operator_takes_a_folder(bria_conn: Any, make_context: Any, tmp_path: Path) -> None:
    prefix = BriaGenerateCaptionPrefixOperator(
        task_id="p", ip_type="stylized_scene", ip_medium="illustration", images=str(_folder(tmp_path, good=3)),
        hook_params=FAST_HOOK,
    ).execute(make_context())
    assert prefix
