"""The quality gate: format sniffing, resolution, corruption, duplicates, stable names, streaming reads."""

from __future__ import annotations

import hashlib
import io
import os
from pathlib import Path
from typing import Any

import pytest
from upload_helpers import image_bytes

from airflow_provider_bria.operators import _quality_gate as gate_mod
from airflow_provider_bria.operators._image_sources import ImageSource, resolve_sources
from airflow_provider_bria.operators._quality_gate import (
    CHUNK_SIZE,
    SkipCode,
    inspect_image,
    key_from_image_name,
    run_quality_gate,
    safe_stem,
    stable_image_name,
)


def _source(path: Path) -> ImageSource:
    return resolve_sources(str(path)).images[0]


def _write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_valid_png_is_accepted_with_its_hash_and_stable_name(tmp_path: Path, png_1024: list[bytes]) -> None:
    path = _write(tmp_path, "Brand Shot #1.png", png_1024[0])
    checked = inspect_image(_source(path), increase_resolution=False)
    digest = hashlib.sha256(png_1024[0]).hexdigest()
    assert (checked.format, checked.width, checked.height) == ("PNG", 1024, 1024)
    assert checked.sha256 == digest
    assert checked.size == len(png_1024[0])
    assert checked.upload_name == f"Brand_Shot_1-{digest[:12]}.png"
    assert key_from_image_name(checked.upload_name) == digest[:12]


@pytest.mark.parametrize(
    ("fmt", "ext"), [("JPEG", "jpg"), ("WEBP", "webp"), ("PNG", "png")]
)
def test_format_is_sniffed_not_taken_from_the_extension(tmp_path: Path, fmt: str, ext: str) -> None:
    data = image_bytes(3, 1024, fmt)
    checked = inspect_image(_source(_write(tmp_path, "photo.png", data)), increase_resolution=False)
    assert checked.format == fmt
    assert checked.upload_name.endswith(f".{ext}")
    assert checked.sha256 == hashlib.sha256(data).hexdigest()


def test_small_image_needs_increase_resolution(tmp_path: Path) -> None:
    src = _source(_write(tmp_path, "small.png", image_bytes(1, 512)))
    with pytest.raises(gate_mod.ImageRejected) as rej:
        inspect_image(src, increase_resolution=False)
    assert rej.value.code == SkipCode.RESOLUTION
    assert "512x512" in rej.value.reason
    assert "increase_resolution" in rej.value.reason
    assert inspect_image(src, increase_resolution=True).width == 512


def test_tiny_image_fails_even_with_increase_resolution(tmp_path: Path) -> None:
    src = _source(_write(tmp_path, "tiny.png", image_bytes(1, (1024, 200))))
    with pytest.raises(gate_mod.ImageRejected) as rej:
        inspect_image(src, increase_resolution=True)
    assert rej.value.code == SkipCode.RESOLUTION
    assert "1024x200" in rej.value.reason


def test_non_image_named_png(tmp_path: Path) -> None:
    src = _source(_write(tmp_path, "fake.png", b"this is not an image at all" * 10))
    with pytest.raises(gate_mod.ImageRejected) as rej:
        inspect_image(src, increase_resolution=False)
    assert rej.value.code == SkipCode.NOT_AN_IMAGE


def test_truncated_png_is_corrupt(tmp_path: Path) -> None:
    noise = _noise_png(512)
    src = _source(_write(tmp_path, "broken.png", noise[: len(noise) // 2]))
    with pytest.raises(gate_mod.ImageRejected) as rej:
        inspect_image(src, increase_resolution=True)
    assert rej.value.code == SkipCode.CORRUPT


def test_png_with_a_bad_crc_is_corrupt(tmp_path: Path, png_1024: list[bytes]) -> None:
    data = bytearray(png_1024[0])
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # flip a byte of compressed data: the chunk CRC no longer matches
    src = _source(_write(tmp_path, "crc.png", bytes(data)))
    with pytest.raises(gate_mod.ImageRejected) as rej:
        inspect_image(src, increase_resolution=False)
    assert rej.value.code == SkipCode.CORRUPT


def test_gif_is_unsupported(tmp_path: Path) -> None:
    src = _source(_write(tmp_path, "anim.gif", image_bytes(2, 1024, "GIF")))
    with pytest.raises(gate_mod.ImageRejected) as rej:
        inspect_image(src, increase_resolution=False)
    assert rej.value.code == SkipCode.UNSUPPORTED_FORMAT
    assert "GIF" in rej.value.reason


def test_gate_reports_every_problem_and_drops_duplicates(tmp_path: Path, png_1024: list[bytes]) -> None:
    _write(tmp_path, "a.png", png_1024[0])
    _write(tmp_path, "b.png", png_1024[1])
    _write(tmp_path, "c-copy-of-a.png", png_1024[0])
    _write(tmp_path, "d.gif", image_bytes(4, 1024, "GIF"))
    _write(tmp_path, "e.png", image_bytes(5, 300))
    _write(tmp_path, "f.png", b"nope")
    result = run_quality_gate(resolve_sources(str(tmp_path)).images, increase_resolution=False, max_workers=3)
    assert [c.source.name for c in result.accepted] == ["a.png", "b.png"]
    codes = {Path(s["source"]).name: s["code"] for s in result.skipped}
    assert codes == {
        "c-copy-of-a.png": SkipCode.DUPLICATE,
        "d.gif": SkipCode.UNSUPPORTED_FORMAT,
        "e.png": SkipCode.RESOLUTION,
        "f.png": SkipCode.NOT_AN_IMAGE,
    }
    dup = next(s for s in result.skipped if s["code"] == SkipCode.DUPLICATE)
    assert dup["reason"].endswith("a.png")
    text = result.problems_text()
    assert "d.gif" in text
    assert "f.png" in text


def test_trailing_bytes_after_the_image_are_hashed(tmp_path: Path, png_1024: list[bytes]) -> None:
    data = png_1024[2] + b"trailing-garbage" * 1000
    checked = inspect_image(_source(_write(tmp_path, "t.png", data)), increase_resolution=False)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()
    assert checked.size == len(data)


class _RecordingSource(ImageSource):
    """An ImageSource whose reads are recorded."""

    reads: list[int]

    def open(self) -> Any:
        raw = super().open()
        reads = self.reads

        class _Wrapper(io.RawIOBase):
            def read(self, size: int = -1) -> bytes:
                data = raw.read(size)
                reads.append(len(data))
                return data

            def seek(self, offset: int, whence: int = 0) -> int:
                return raw.seek(offset, whence)

            def tell(self) -> int:
                return raw.tell()

            def seekable(self) -> bool:
                return True

            def readable(self) -> bool:
                return True

            def close(self) -> None:
                raw.close()
                super().close()

        return _Wrapper()


def _noise_png(side: int) -> bytes:
    from PIL import Image

    img = Image.frombytes("RGB", (side, side), os.urandom(side * side * 3))
    buf = io.BytesIO()
    img.save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_files_are_streamed_in_bounded_reads(tmp_path: Path) -> None:
    data = _noise_png(1024)  # about 3 MB: several read buffers
    assert len(data) > 2 * CHUNK_SIZE
    path = _write(tmp_path, "noise.png", data)
    base = _source(path)
    src = _RecordingSource(uri=base.uri, name=base.name, path=base.path, fs=base.fs, size=base.size)
    object.__setattr__(src, "reads", [])
    checked = inspect_image(src, increase_resolution=False)
    assert checked.sha256 == hashlib.sha256(data).hexdigest()
    assert max(src.reads) <= CHUNK_SIZE
    assert sum(src.reads) <= len(data) + 64 * 1024  # each byte read about once, never the whole file at once


@pytest.mark.parametrize(
    ("stem", "expected"),
    [("../../etc/passwd", "etc_passwd"), ("...", "image"), ("ok-Name_1.v2", "ok-Name_1.v2"), ("a" * 100, "a" * 60)],
)
def test_safe_stem(stem: str, expected: str) -> None:
    assert safe_stem(stem) == expected


def test_key_from_image_name() -> None:
    sha = hashlib.sha256(b"x").hexdigest()
    assert key_from_image_name(stable_image_name("cat", sha, "jpg")) == sha[:12]
    assert key_from_image_name(f"cat-{sha[:12]}") == sha[:12]
    assert key_from_image_name("cat.png") is None
    assert key_from_image_name(None) is None


def test_text_file_with_an_image_extension_is_skipped_not_crashing(tmp_path: Path) -> None:
    """Pillow's text-header plugins call readline() on the hashing reader: it must exist and hash correctly."""
    text = b"Just some text pretending to be an image.\n" * 10
    _write(tmp_path, "notes.png", text)
    _write(tmp_path, "icon.png", b"/* XPM */\n" + text)
    result = run_quality_gate(resolve_sources(str(tmp_path)).images, increase_resolution=False)
    assert result.accepted == []
    assert sorted(s["code"] for s in result.skipped) == [SkipCode.NOT_AN_IMAGE, SkipCode.NOT_AN_IMAGE]


def test_hashing_reader_hashes_readline_bytes_once() -> None:
    data = b"line one\nline two\n" + bytes(range(256)) * 50
    reader = gate_mod._HashingReader(io.BytesIO(data))
    assert reader.readline() == b"line one\n"
    reader.seek(0)
    assert reader.readline() == b"line one\n"  # re-read after a seek is not hashed twice
    assert reader.read(5) == b"line "
    digest, size = reader.finish()
    assert (digest, size) == (hashlib.sha256(data).hexdigest(), len(data))


class _RemoteFs:
    """Stands in for a remote fsspec filesystem: only ``protocol`` is read by ``gate_workers``."""

    protocol = ("s3", "s3a")


def _sources(fs: Any, sizes: list[int | None]) -> list[ImageSource]:
    return [ImageSource(uri=f"x/{i}.png", name=f"{i}.png", path=f"x/{i}.png", fs=fs, size=size)
            for i, size in enumerate(sizes)]


def test_small_files_of_an_in_process_store_are_checked_in_one_thread() -> None:
    import fsspec

    small, large = gate_mod.PARALLEL_GATE_MIN_MEAN_BYTES // 4, gate_mod.PARALLEL_GATE_MIN_MEAN_BYTES * 2
    for protocol in ("file", "memory"):
        fs = fsspec.filesystem(protocol)
        assert gate_mod.gate_workers(_sources(fs, [small] * 10), 4) == 1
        assert gate_mod.gate_workers(_sources(fs, [large] * 10), 4) == 4  # reading and hashing release the GIL
        assert gate_mod.gate_workers(_sources(fs, [small] * 9 + [None]), 4) == 4  # a size unknown: as before
        assert gate_mod.gate_workers(_sources(fs, [large, small]), 4) == 2  # at most one thread per file
    assert gate_mod.gate_workers(_sources(_RemoteFs(), [small] * 10), 4) == 4  # latency to hide
    assert gate_mod.gate_workers(_sources(_RemoteFs(), [small] * 10), 1) == 1


def test_the_gate_of_small_local_files_starts_no_thread(tmp_path: Path, png_1024: list[bytes],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    for i, data in enumerate(png_1024[:3]):
        _write(tmp_path, f"f{i}.png", data)
    threads: list[str] = []
    real = gate_mod.inspect_image

    def recording(src: ImageSource, **kwargs: Any) -> Any:
        threads.append(threading.current_thread().name)
        return real(src, **kwargs)

    monkeypatch.setattr(gate_mod, "inspect_image", recording)
    sources = resolve_sources(str(tmp_path)).images
    assert all(s.size is not None and s.size < gate_mod.PARALLEL_GATE_MIN_MEAN_BYTES for s in sources)
    result = run_quality_gate(sources, increase_resolution=False, max_workers=4)
    assert [c.source.name for c in result.accepted] == ["f0.png", "f1.png", "f2.png"]
    assert threads == [threading.current_thread().name] * 3
    monkeypatch.setattr(gate_mod, "PARALLEL_GATE_MIN_MEAN_BYTES", 1)  # the same files count as large: threads
    threads.clear()
    run_quality_gate(sources, increase_resolution=False, max_workers=4)
    assert len(threads) == 3
    assert all(name.startswith("bria-gate") for name in threads)
