"""The bytes a basic upload sends are the bytes the quality gate checked (hashed while read for the upload)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from upload_helpers import image_bytes

from airflow_provider_bria.operators._image_sources import resolve_sources
from airflow_provider_bria.operators._quality_gate import CheckedImage, inspect_image
from airflow_provider_bria.operators._upload_basic import BasicUploader, _read_checked


def checked(path: Path) -> CheckedImage:
    (src,) = resolve_sources(str(path)).images
    return inspect_image(src, increase_resolution=False)


class RecordingHook:
    """A hook recording what upload_image was given."""

    def __init__(self, sent: list[tuple[str, bytes]]) -> None:
        self.sent = sent

    def get_conn(self) -> None:
        return None

    def close(self) -> None:
        return None

    def upload_image(self, dataset_id: int, *, file: bytes, image_name: str, **_: Any) -> dict[str, Any]:
        self.sent.append((image_name, file))
        return {"id": len(self.sent), "image_name": image_name}


def upload(images: list[CheckedImage]) -> tuple[Any, list[tuple[str, bytes]]]:
    sent: list[tuple[str, bytes]] = []
    uploader = BasicUploader(hook_factory=lambda: RecordingHook(sent), dataset_id=5,  # type: ignore[arg-type,return-value]
                             increase_resolution=False, content_moderation=None, encoding="json", max_concurrency=2,
                             image_retries=0)
    return uploader.run(images), sent


def test_unchanged_files_are_sent_byte_for_byte(tmp_path: Path) -> None:
    paths = [tmp_path / f"img-{i}.png" for i in range(3)]
    for i, path in enumerate(paths):
        path.write_bytes(image_bytes(i))
    outcome, sent = upload([checked(p) for p in paths])
    assert not outcome.failed
    assert sorted(data for _, data in sent) == sorted(p.read_bytes() for p in paths)


def same_size_other_byte(data: bytes) -> bytes:
    changed = bytearray(data)
    changed[-20] ^= 0xFF
    return bytes(changed)


@pytest.mark.parametrize(("change", "how"), [
    (same_size_other_byte, "rewritten with the same size"),
    (lambda data: data + b"\0" * (3 * 1024 * 1024), "grown by more than a read chunk"),
    (lambda data: data[:-1], "shrunk by one byte"),
])
def test_a_file_changed_after_the_gate_is_never_sent(tmp_path: Path, change: Any, how: str) -> None:
    path = tmp_path / "img.png"
    data = image_bytes(1)
    path.write_bytes(data)
    img = checked(path)
    path.write_bytes(change(data))  # changed between the gate and the upload
    outcome, sent = upload([img])
    assert sent == [], how
    assert len(outcome.failed) == 1
    assert "changed since the quality gate" in outcome.failed[0]["reason"]
    with pytest.raises(Exception, match="changed since the quality gate"):
        _read_checked(img)
