"""Resolution of upload sources: folders, globs, lists, local paths and object-storage URIs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from airflow_provider_bria.exceptions import BriaInputError
from airflow_provider_bria.operators._image_sources import display_uri, filesystem_for, resolve_sources


def _touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    for name in ("b.png", "a.jpg", "c.webp", ".DS_Store", "a.txt", "sub/d.png", "sub/deeper/e.png"):
        _touch(root / name, name.encode())
    return root


def test_folder_is_listed_non_recursively_sorted_without_hidden_files(tree: Path) -> None:
    resolved = resolve_sources(str(tree))
    assert [s.name for s in resolved.images] == ["a.jpg", "b.png", "c.webp"]
    assert all(Path(s.uri).parent == tree for s in resolved.images)
    # the .txt file is a caption side-car of a.jpg, not an image
    caption = resolved.caption_for(resolved.images[0])
    assert caption is not None
    assert caption.name == "a.txt"
    assert resolved.caption_for(resolved.images[1]) is None


def test_glob_with_double_star_recurses(tree: Path) -> None:
    resolved = resolve_sources(f"{tree}/**/*.png")
    assert sorted(s.name for s in resolved.images) == ["b.png", "d.png", "e.png"]


def test_list_of_paths_is_deduplicated_in_order(tree: Path) -> None:
    resolved = resolve_sources([str(tree / "c.webp"), str(tree), Path(tree / "sub" / "d.png")])
    assert [s.name for s in resolved.images] == ["c.webp", "a.jpg", "b.png", "d.png"]


def test_sizes_come_from_the_listing(tree: Path) -> None:
    resolved = resolve_sources(str(tree / "a.jpg"))
    assert resolved.images[0].size == len(b"a.jpg")
    with resolved.images[0].open() as fh:
        assert fh.read() == b"a.jpg"


def test_file_uri(tree: Path) -> None:
    resolved = resolve_sources(f"file://{tree}")
    assert [s.name for s in resolved.images] == ["a.jpg", "b.png", "c.webp"]
    assert resolved.images[0].uri == str(tree / "a.jpg")


def test_object_storage_path_object(tree: Path) -> None:
    from airflow.sdk import ObjectStoragePath

    resolved = resolve_sources(ObjectStoragePath(f"file://{tree}/sub"))
    assert [s.name for s in resolved.images] == ["d.png"]


def test_memory_uri_folder_and_glob(memory_fs: Any) -> None:
    for name in ("x/1.png", "x/2.png", "x/notes.txt", "x/y/3.png"):
        with memory_fs.open(f"/bucket/{name}", "wb") as fh:
            fh.write(name.encode())
    resolved = resolve_sources("memory://bucket/x")
    assert [s.uri for s in resolved.images] == ["memory://bucket/x/1.png", "memory://bucket/x/2.png"]
    assert set(k[1] for k in resolved.captions) == {"notes"}
    globbed = resolve_sources("memory://bucket/x/**/*.png")
    assert [s.name for s in globbed.images] == ["1.png", "2.png", "3.png"]
    with globbed.images[2].open() as fh:
        assert fh.read() == b"x/y/3.png"


def test_object_storage_path_on_a_protocol_airflow_does_not_register(memory_fs: Any) -> None:
    from airflow.sdk import ObjectStoragePath

    memory_fs.pipe("/osp/a.png", b"a")
    resolved = resolve_sources([ObjectStoragePath("memory://osp/")])
    assert [s.uri for s in resolved.images] == ["memory://osp/a.png"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("/definitely/not/here", "does not exist"),
        ("https://example.com/a.png", "cannot be listed"),
        ("nosuchproto://bucket/key", "no filesystem"),
        ("", "empty"),
    ],
)
def test_bad_sources_raise_input_errors(source: str, message: str) -> None:
    with pytest.raises(BriaInputError, match=message):
        resolve_sources(source)


def test_glob_matching_nothing_raises(tmp_path: Path) -> None:
    with pytest.raises(BriaInputError, match="matched no files"):
        resolve_sources(f"{tmp_path}/*.png")


def test_bytes_are_rejected() -> None:
    with pytest.raises(BriaInputError, match="not bytes"):
        resolve_sources([b"/tmp/a.png"])


def test_credentials_never_reach_messages() -> None:
    with pytest.raises(BriaInputError) as err:
        resolve_sources("https://user:s3cret@example.com/a.png")
    assert "s3cret" not in str(err.value)


def test_filesystem_for_local_path_is_absolute(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    fs, path, protocol = filesystem_for("relative/dir")
    assert protocol == "file"
    assert path == str(tmp_path / "relative" / "dir")
    assert display_uri("s3", "bucket/key.png") == "s3://bucket/key.png"
    assert display_uri("memory", "/bucket/key.png") == "memory://bucket/key.png"
