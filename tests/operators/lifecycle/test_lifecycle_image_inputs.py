"""Reading sample images from paths, object-storage URIs, URLs, data URIs and bytes."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from lifecycle_helpers import png_bytes

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._image_inputs import (
    as_image_list,
    encode_image,
    encode_images,
    is_url,
    sniff_image_format,
)


def test_urls_pass_through_unchanged() -> None:
    assert is_url("https://cdn.example/a.png")
    assert encode_image(" https://cdn.example/a.png ") == "https://cdn.example/a.png"
    assert encode_image("HTTP://cdn.example/a") == "HTTP://cdn.example/a"


def test_local_path_str_pathlike_file_uri_and_bytes(tmp_path: Path) -> None:
    data = png_bytes(1)
    path = tmp_path / "a.png"
    path.write_bytes(data)
    expected = base64.b64encode(data).decode()
    assert encode_image(str(path)) == expected
    assert encode_image(path) == expected
    assert encode_image(f"file://{path}") == expected  # read through ObjectStoragePath
    assert encode_image(data) == expected


def test_object_storage_path_object(tmp_path: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    data = png_bytes(2)
    (tmp_path / "noext").write_bytes(data)  # no extension: the format is sniffed from the bytes
    assert encode_image(ObjectStoragePath(f"file://{tmp_path / 'noext'}")) == base64.b64encode(data).decode()


def test_data_uri_prefix_is_stripped() -> None:
    payload = base64.b64encode(png_bytes(3)).decode()
    assert encode_image(f"data:image/png;base64,{payload}") == payload
    with pytest.raises(BriaInputError, match="base64"):
        encode_image("data:image/png,rawtext")


def test_errors_are_specific(tmp_path: Path) -> None:
    with pytest.raises(BriaInputError, match="Image not found"):
        encode_image(str(tmp_path / "missing.png"))
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(BriaInputError, match="Not a JPEG, PNG or WEBP"):
        encode_image(tmp_path / "notes.txt")
    with pytest.raises(BriaInputError, match="directory"):
        encode_image(str(tmp_path))
    with pytest.raises(BriaInputError, match="empty"):
        encode_image("  ")


def test_sniff_formats() -> None:
    assert sniff_image_format(png_bytes(0)) == "png"
    assert sniff_image_format(b"\xff\xd8\xff\xe0rest") == "jpeg"
    assert sniff_image_format(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "webp"
    assert sniff_image_format(b"GIF89a") is None


def test_count_is_checked_before_reading(tmp_path: Path) -> None:
    missing = [str(tmp_path / f"missing-{i}.png") for i in range(4)]
    with pytest.raises(BriaInputError, match="needs 5-10 images, got 4"):
        encode_images(missing, minimum=5, maximum=10, what="generate_visual_schema")


def test_templated_list_strings_are_parsed() -> None:
    assert as_image_list("['a.png', 'b.png']", "images") == ["a.png", "b.png"]
    assert as_image_list('["a.png"]', "images") == ["a.png"]
    assert as_image_list("a.png", "images") == ["a.png"]
    assert as_image_list(None, "images") == []
    with pytest.raises(BriaInputError, match="could not be parsed"):
        as_image_list("[not a list", "images")
    with pytest.raises(BriaInputError, match="must be a list"):
        as_image_list(42, "images")
