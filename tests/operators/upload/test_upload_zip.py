"""The streaming bulk zip writer: safe names, content, determinism, size limit."""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._bulk_zip import (
    ZipEntry,
    check_zip_size,
    safe_entry_name,
    write_zip,
    zip_object_name,
)
from airflow_provider_bria.operators._image_sources import filesystem_for, resolve_sources


@pytest.mark.parametrize("name", ["../evil.png", "a/b.png", ".hidden.png", "a\\b.png", "", "x..png", "a b.png",
                                  "/abs.png", "C:evil.png"])
def test_unsafe_entry_names_are_rejected(name: str) -> None:
    with pytest.raises(BriaInputError, match="Unsafe zip entry name"):
        safe_entry_name(name)


def test_safe_entry_name_accepts_stable_names() -> None:
    assert safe_entry_name("brand_shot-0123456789ab.png") == "brand_shot-0123456789ab.png"


def _entries(folder: Path, files: dict[str, bytes]) -> list[ZipEntry]:
    for name, data in files.items():
        (folder / name).write_bytes(data)
    resolved = resolve_sources(str(folder))
    all_files = resolved.images + list(resolved.captions.values())
    return [ZipEntry(name=s.name, source=s, size=s.size) for s in sorted(all_files, key=lambda s: s.name)]


def test_zip_holds_the_files_stored_and_is_deterministic(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    files = {"a-000000000001.png": b"A" * 5000, "a-000000000001.txt": b"caption a", "b-000000000002.jpg": b"B" * 7}
    entries = _entries(src, files)
    fs, folder, _ = filesystem_for(str(tmp_path / "out"))
    stats1 = write_zip(entries, fs, f"{folder}/one.zip")
    stats2 = write_zip(entries, fs, f"{folder}/two.zip")
    one = (tmp_path / "out" / "one.zip").read_bytes()
    assert hashlib.sha256(one).digest() == hashlib.sha256((tmp_path / "out" / "two.zip").read_bytes()).digest()
    assert stats1 == stats2
    assert stats1.entries == 3
    assert stats1.payload_bytes == sum(len(v) for v in files.values())
    assert stats1.zip_bytes == len(one)
    with zipfile.ZipFile(io.BytesIO(one)) as zf:
        assert zf.testzip() is None
        assert sorted(zf.namelist()) == sorted(files)
        for info in zf.infolist():
            assert info.compress_type == zipfile.ZIP_STORED
            assert zf.read(info) == files[info.filename]


def test_zip_to_memory_filesystem(tmp_path: Path, memory_fs: Any) -> None:
    src = tmp_path / "src"
    src.mkdir()
    entries = _entries(src, {"x-000000000003.png": b"png-bytes"})
    fs, folder, protocol = filesystem_for("memory://staging/zips")
    assert protocol == "memory"
    write_zip(entries, fs, f"{folder}/x.zip")
    with zipfile.ZipFile(io.BytesIO(memory_fs.cat(f"{folder}/x.zip"))) as zf:
        assert zf.read("x-000000000003.png") == b"png-bytes"


def test_repeated_or_unsafe_entries_are_rejected_before_writing(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    entries = _entries(src, {"a.png": b"1"})
    fs, folder, _ = filesystem_for(str(tmp_path / "out"))
    with pytest.raises(BriaInputError, match="appears twice"):
        write_zip(entries + entries, fs, f"{folder}/dup.zip")
    bad = [ZipEntry(name="../a.png", source=entries[0].source)]
    with pytest.raises(BriaInputError, match="Unsafe"):
        write_zip(bad, fs, f"{folder}/bad.zip")
    assert not (tmp_path / "out" / "dup.zip").exists()
    assert not (tmp_path / "out" / "bad.zip").exists()


def test_zip_size_limit(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    entries = _entries(src, {"a.png": b"1" * 1000})
    assert check_zip_size(entries, limit=10_000) > 1000
    with pytest.raises(BriaInputError, match="above the"):
        check_zip_size(entries, limit=500)


def test_zip_object_name_is_stable_and_order_independent() -> None:
    a = zip_object_name(7, ["b.png", "a.png"])
    assert a == zip_object_name(7, ["a.png", "b.png"])
    assert a != zip_object_name(8, ["a.png", "b.png"])
    assert a != zip_object_name(7, ["a.png"])
    assert a.startswith("bria-dataset-7-")
    assert a.endswith(".zip")


def test_stage_zip_uses_a_presigned_url_when_the_store_can_sign(
    tmp_path: Path, memory_fs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fsspec.implementations.memory import MemoryFileSystem

    from airflow_provider_bria.operators._upload_bulk import SIGNED_URL_EXPIRATION, stage_zip

    calls: list[tuple[str, int]] = []

    def sign(self: Any, path: str, expiration: int = 100, **kwargs: Any) -> str:
        calls.append((path, expiration))
        return f"https://signed.test{path}?sig=abc"

    monkeypatch.setattr(MemoryFileSystem, "sign", sign, raising=False)
    src = tmp_path / "src"
    src.mkdir()
    entries = _entries(src, {"a-000000000001.png": b"png"})
    staged = stage_zip(entries, dataset_id=4, staging_path="memory://stage/bria", staging_url=None)
    assert staged.public_url.startswith("https://signed.test/stage/bria/bria-dataset-4-")
    assert calls == [(staged.public_url.split("?")[0].replace("https://signed.test", ""), SIGNED_URL_EXPIRATION)]
    assert staged.uri.startswith("memory://stage/bria/bria-dataset-4-")
    assert memory_fs.exists(calls[0][0])


def test_stage_zip_refuses_a_store_that_cannot_sign_before_writing(tmp_path: Path) -> None:
    from airflow_provider_bria.operators._upload_bulk import stage_zip

    src = tmp_path / "src"
    src.mkdir()
    entries = _entries(src, {"a-000000000001.png": b"png"})
    with pytest.raises(BriaInputError, match="staging_url"):
        stage_zip(entries, dataset_id=4, staging_path=str(tmp_path / "stage"), staging_url=None)
    assert not (tmp_path / "stage").exists()
